"""``torch.export`` -> Relax, with unsupported operators named before the importer trips on them."""

import torch

from ..errors import UnsupportedOpError


def fold_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """A copy with every eval-mode BatchNorm folded into the conv before it: one fused
    conv+bias+activation kernel per layer in TVM instead of a conv plus a separate BN pass."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(module.eval())
    except Exception:  # not fx-traceable: import it unfolded, BN stays a separate (correct) op
        return module


def export_program(module: torch.nn.Module, example_input: torch.Tensor, model_name: str):
    try:
        ep = torch.export.export(fold_batchnorm(module), (example_input,))
    except Exception as e:  # torch raises many kinds here; all mean "this model does not export"
        raise UnsupportedOpError(f"{model_name}: torch.export failed: {type(e).__name__}: {e}") from e
    # The importer works on the core-ATen form; decompose here so the op check sees what it sees.
    return ep.run_decompositions()


def unsupported_ops(ep, custom_convert_map=None) -> list:
    from tvm.relax.frontend.torch.exported_program_translator import ExportedProgramImporter

    known = set(ExportedProgramImporter().create_convert_map()) | set(custom_convert_map or {})
    return sorted({
        node.target.__name__ for node in ep.graph.nodes
        if node.op == "call_function" and node.target.__name__ not in known
    })


def import_torch(module: torch.nn.Module, example_input: torch.Tensor, model_name: str,
                 custom_convert_map=None):
    """A Relax IRModule whose ``main`` takes the input tensor and returns the head maps tuple."""
    from tvm.relax.frontend.torch import from_exported_program

    ep = export_program(module, example_input, model_name)
    missing = unsupported_ops(ep, custom_convert_map)
    if missing:
        raise UnsupportedOpError(
            f"{model_name}: TVM's PyTorch importer has no converter for: {', '.join(missing)}")
    return from_exported_program(ep, keep_params_as_input=False, custom_convert_map=custom_convert_map,
                                 run_ep_decomposition=False)
