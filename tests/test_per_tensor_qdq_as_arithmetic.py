"""PerTensorQdqAsArithmetic: activations' quantize/dequantize become element-wise arithmetic with
the same numbers, per-channel (weight) ones stay ops, and channels-last graphs lose their transposes."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes.integer_conv2d import integer_conv2d  # noqa: E402
from pipeline.passes.leaky_relu_as_maximum import leaky_relu_as_maximum  # noqa: E402
from pipeline.passes.per_tensor_qdq_as_arithmetic import per_tensor_qdq_as_arithmetic  # noqa: E402

from .qdq import quantized_onnx, tvm_run  # noqa: E402

SHAPE = (1, 3, 16, 16)


def calls(mod, name) -> list:
    found = []
    relax.analysis.post_order_visit(mod["main"], lambda e: isinstance(e, relax.Call) and isinstance(
        e.op, tvm.ir.Op) and e.op.name == name and found.append(e))
    return found


def scales(call) -> int:
    return int(np.prod([int(d) for d in call.args[1].ty.shape]))


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.Conv2d(8, 16, 1), nn.ReLU())
    path = quantized_onnx(model, SHAPE, tmp_path_factory.mktemp("qdq") / "m.onnx")
    return import_onnx(path, "m", SHAPE)


def test_only_per_tensor_quantize_and_dequantize_are_rewritten(imported):
    assert all(scales(q) == 1 for q in calls(imported, "relax.quantize"))
    rewritten = per_tensor_qdq_as_arithmetic(imported)
    assert calls(rewritten, "relax.quantize") == []
    assert any(scales(dq) == 1 for dq in calls(imported, "relax.dequantize"))
    # what is left are the weights' and biases' per-channel dequantizes
    assert sorted({scales(dq) for dq in calls(rewritten, "relax.dequantize")}) == [8, 16]


def test_the_same_numbers_come_out(imported):
    x = np.random.default_rng(3).random(SHAPE, dtype=np.float32)
    for mod in (imported, integer_conv2d(imported)):
        np.testing.assert_array_equal(tvm_run(per_tensor_qdq_as_arithmetic(mod), x), tvm_run(mod, x))


def test_channels_last_conversion_no_longer_transposes_activations(imported):
    # as the tuning pipeline does it (leakyrelu has no layout rule either)
    to_nhwc = tvm.transform.Sequential([leaky_relu_as_maximum,
                                        relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]})])

    def activation_transposes(mod):
        return [t for t in calls(to_nhwc(mod), "relax.permute_dims") if not isinstance(t.args[0], tvm.ir.Constant)]

    lowered = integer_conv2d(imported)
    assert len(activation_transposes(lowered)) > 2
    assert len(activation_transposes(per_tensor_qdq_as_arithmetic(lowered))) == 2  # the input's and the output's
