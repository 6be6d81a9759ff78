"""ONNX -> Relax, with unsupported operators named before the importer trips on them."""

from pathlib import Path

from ..errors import InputError, UnsupportedOpError


def unsupported_ops(model) -> list:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = set(_get_convert_map()) | {"Constant", "If"}
    return sorted({node.op_type for node in model.graph.node if node.op_type not in known})


def import_onnx(path_or_model, model_name: str | None = None, input_shape=None):
    """A Relax IRModule from an ONNX file or ``onnx.ModelProto``; ``input_shape`` fixes the
    first input's shape (dynamic dimensions cannot be tuned)."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    if isinstance(path_or_model, (str, Path)):
        path = Path(path_or_model)
        model_name = model_name or path.stem
        try:
            model = onnx.load(str(path))
        except FileNotFoundError:
            raise InputError(f"ONNX file not found: {path}") from None
        except Exception as e:
            raise InputError(f"cannot read ONNX file {path}: {e}") from None
    else:
        model, model_name = path_or_model, model_name or "onnx-model"
    missing = unsupported_ops(model)
    if missing:
        raise UnsupportedOpError(f"{model_name}: TVM's ONNX importer has no converter for: {', '.join(missing)}")
    shape_dict = None
    if input_shape is not None:
        shape_dict = {model.graph.input[0].name: list(input_shape)}
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)
    return from_onnx(model, shape_dict=shape_dict, opset=opset, keep_params_in_input=False)
