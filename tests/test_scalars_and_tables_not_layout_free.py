"""ScalarsAndTablesNotLayoutFree: one-element constants and lookup tables leave a kernel's layout-free buffers, weights stay."""

import math

import pytest

tvm = pytest.importorskip("tvm")

from tvm import tirx  # noqa: E402

from pipeline import targets  # noqa: E402
from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes import lower_int8  # noqa: E402
from pipeline.passes.scalar_operands_as_tensors import scalar_operands_as_tensors  # noqa: E402
from pipeline.passes.scalars_and_tables_not_layout_free import ATTR, scalars_and_tables_not_layout_free  # noqa: E402
from pipeline.tuning.tasks import GraphForm, fuse_for_tuning  # noqa: E402

from .qdq import quantized_onnx  # noqa: E402
from .test_int8_dot import SHAPE, convs  # noqa: E402


def layout_free_sizes(mod) -> dict:
    """Element counts of each kernel's layout-free arguments."""
    return {gvar.name_hint: sorted(math.prod(int(d) for d in func.params[int(i)].ty.shape) for i in func.attrs[ATTR])
            for gvar, func in mod.functions_items()
            if isinstance(func, tirx.PrimFunc) and func.attrs and ATTR in func.attrs}


def test_only_one_element_constants_are_taken_out(tmp_path):
    mod = scalar_operands_as_tensors(lower_int8(import_onnx(quantized_onnx(convs(), SHAPE, tmp_path / "c.onnx"),
                                                            "c", SHAPE)))
    # revision 1's passes (which do not take scalars out), so that the layout-free marks are TVM's own
    fused = fuse_for_tuning(mod, tvm.target.Target(targets.target_json(targets.PRESETS["x86-avx2"])),
                            GraphForm("NHWC", "avx2-8x4", 1))
    before, after = layout_free_sizes(fused), layout_free_sizes(scalars_and_tables_not_layout_free(fused))
    assert any(1 in sizes for sizes in before.values())
    for name, sizes in before.items():
        assert after.get(name, []) == [n for n in sizes if n > 1]
