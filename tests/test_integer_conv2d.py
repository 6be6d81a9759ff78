"""IntegerConv2d: convolutions of a Q/DQ graph run u8 x i8 -> i32 and keep ONNX Runtime's numbers."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes.integer_conv2d import integer_conv2d  # noqa: E402

from .qdq import ort_run, output_step, quantized_onnx, tvm_run  # noqa: E402

SHAPE = (1, 3, 24, 24)


def convs():
    """Padded, strided, depthwise (groups = channels), grouped and bias-free convolutions."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=4), nn.LeakyReLU(0.1),
        nn.Conv2d(32, 24, 1, bias=False),
    )


def conv_dtypes(mod) -> list:
    found = []
    tvm.relax.analysis.post_order_visit(mod["main"], lambda e: isinstance(e, tvm.relax.Call) and isinstance(
        e.op, tvm.ir.Op) and e.op.name == "relax.nn.conv2d" and found.append(
            (str(e.args[0].ty.dtype), str(e.args[1].ty.dtype), str(e.ty.dtype))))
    return found


@pytest.fixture(scope="module")
def qdq_path(tmp_path_factory):
    return quantized_onnx(convs(), SHAPE, tmp_path_factory.mktemp("qdq") / "convs.onnx")


def test_every_conv_becomes_integer(qdq_path):
    mod = import_onnx(qdq_path, "convs", SHAPE)
    assert {d[2] for d in conv_dtypes(mod)} == {"float32"}
    lowered = integer_conv2d(mod)
    assert conv_dtypes(lowered) == [("uint8", "int8", "int32")] * 4


def test_integer_convs_match_onnx_runtime_within_one_step(qdq_path):
    x = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    got = tvm_run(integer_conv2d(import_onnx(qdq_path, "convs", SHAPE)), x)
    want = ort_run(qdq_path, x)[0]
    step = output_step(qdq_path)
    assert step > 0
    assert np.abs(got - want).max() <= step * 1.001
    assert np.mean(got == want) > 0.99  # the same integers, not merely close floats


def test_asymmetric_weights_are_left_in_float(tmp_path):
    from onnx import numpy_helper
    import onnx

    path = quantized_onnx(nn.Sequential(nn.Conv2d(3, 8, 3)), SHAPE, tmp_path / "c.onnx")
    model = onnx.load(str(path))
    for init in model.graph.initializer:  # give the weights a zero point: the algebra no longer holds
        if init.name.endswith("weight_zero_point"):
            init.CopyFrom(numpy_helper.from_array(np.ones_like(numpy_helper.to_array(init)), init.name))
    onnx.save(model, str(path))
    lowered = integer_conv2d(import_onnx(path, "c", SHAPE))
    assert [d[2] for d in conv_dtypes(lowered)] == ["float32"]
