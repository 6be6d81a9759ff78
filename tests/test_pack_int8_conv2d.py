"""PackInt8Conv2d: u8 x i8 NHWC convs on packed constant weights compute the same integers."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from pipeline.frontend import import_onnx  # noqa: E402
from pipeline.passes import lower_int8  # noqa: E402
from pipeline.passes.integer_conv2d import integer_conv2d  # noqa: E402
from pipeline.passes.leaky_relu_as_maximum import leaky_relu_as_maximum  # noqa: E402
from pipeline.passes.pack_int8_conv2d import pack_int8_conv2d, pack_weight  # noqa: E402
from pipeline.passes.pad_through_permute import pad_through_permute  # noqa: E402

from .qdq import quantized_onnx, tvm_run  # noqa: E402
from .test_integer_conv2d import conv_dtypes  # noqa: E402
from .test_per_tensor_qdq_as_arithmetic import calls  # noqa: E402

SHAPE = (1, 3, 20, 20)


def convs():
    """3-channel input, strided, 1x1 to 21 outputs, dilated convs that pack; a grouped one that does not."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(32, 21, 1), nn.ReLU(),
        nn.Conv2d(21, 16, 3, padding=2, dilation=2), nn.LeakyReLU(0.1),
        nn.Conv2d(16, 16, 3, padding=1, groups=4),
    )


def nhwc_integer(path):
    mod = integer_conv2d(import_onnx(path, "convs", SHAPE))
    return relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]})(mod)


def test_pack_weight_puts_lanes_by_group_blocks_contiguous():
    ohwi = np.arange(16 * 3 * 3 * 7).reshape(16, 3, 3, 7)
    packed = pack_weight(ohwi, lanes=8, group=4)
    assert packed.shape == (2, 3, 3, 2, 8, 4)
    assert (packed[1, 2, 0, 0] == ohwi[8:16, 2, 0, 0:4]).all()
    assert (packed[1, 2, 0, 1, :, :3] == ohwi[8:16, 2, 0, 4:7]).all() and not packed[:, :, :, 1, :, 3].any()


def test_packed_convs_compute_the_same_integers(tmp_path):
    path = quantized_onnx(convs(), SHAPE, tmp_path / "convs.onnx")
    nhwc = nhwc_integer(path)
    packed = pack_int8_conv2d(lanes=8, group=4)(nhwc)
    packed_funcs = [g.name_hint for g, f in packed.functions_items() if "u8i8_packed" in g.name_hint]
    assert len(packed_funcs) == 4
    assert len(conv_dtypes(packed)) == 1  # the grouped conv stays a relax conv
    x = np.random.default_rng(2).random(SHAPE, dtype=np.float32)
    assert np.array_equal(tvm_run(packed, x), tvm_run(nhwc, x))


def test_zero_point_pads_move_inside_the_packed_convs(tmp_path):
    path = quantized_onnx(convs(), SHAPE, tmp_path / "convs.onnx")
    # as tuning puts an int8 graph of revision 2 together: pads on NHWC activations, no transposes
    nhwc = tvm.transform.Sequential([leaky_relu_as_maximum, relax.transform.ConvertLayout(
        {"relax.nn.conv2d": ["NHWC", "OHWI"]}), pad_through_permute])(lower_int8(import_onnx(path, "convs", SHAPE)))
    outside, inside = (pack_int8_conv2d(lanes=8, group=4, pads_inside=flag)(nhwc) for flag in (False, True))
    # the strided and the dilated conv take their pads in; the RGB input's (padded before its
    # transpose) and the grouped conv's stay
    assert len(calls(outside, "relax.nn.pad")) - len(calls(inside, "relax.nn.pad")) == 2
    x = np.random.default_rng(3).random(SHAPE, dtype=np.float32)
    np.testing.assert_array_equal(tvm_run(inside, x), tvm_run(outside, x))
