"""LookupTablesElementwise: a table lookup fuses into the kernel that computes its index, and
only with this pass (TVM's own analysis calls the lookup opaque)."""

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax, tirx  # noqa: E402
from tvm.relax import transform as T  # noqa: E402

from pipeline.passes.lookup_tables_elementwise import lookup_tables_elementwise  # noqa: E402
from pipeline.passes.quantized_activation_as_table import lookup_func  # noqa: E402

SHAPE = (1, 8, 8, 16)
TABLE = np.arange(256)[::-1].astype("uint8")


def quantize_then_look_up():
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(SHAPE, "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            lookup = builder.add_func(lookup_func(SHAPE, "uint8", "uint8"), "lookup_table")
            index = builder.emit(relax.op.astype(builder.normalize(relax.op.multiply(x, relax.const(2.0))), "uint8"))
            out = builder.emit_output(relax.call_tir(lookup, [relax.const(TABLE), index],
                                                     relax.TensorType(SHAPE, "uint8")))
        builder.emit_func_output(out)
    return builder.get()


def kernels(mod, marked: bool) -> list:
    passes = [T.LegalizeOps(), T.AnnotateTIROpPattern(), *([lookup_tables_elementwise] if marked else []),
              T.FoldConstant(), T.FuseOps(), T.FuseTIR()]
    fused = tvm.transform.Sequential(passes)(mod)
    return fused, sorted(g.name_hint for g, f in fused.functions_items() if isinstance(f, tirx.PrimFunc))


def test_the_lookup_fuses_only_when_marked_element_wise():
    mod = quantize_then_look_up()
    assert len(kernels(mod, marked=False)[1]) == 2
    fused, names = kernels(mod, marked=True)
    assert len(names) == 1 and "lookup" in names[0]
    vm = relax.VirtualMachine(tvm.compile(fused, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    x = np.random.default_rng(0).uniform(0, 127, SHAPE).astype("float32")
    np.testing.assert_array_equal(vm["main"](tvm.runtime.tensor(x)).numpy(), TABLE[(x * 2).astype("uint8")])
