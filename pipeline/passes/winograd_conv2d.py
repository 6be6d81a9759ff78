"""Rewrite fp32 3x3 stride-1 NHWC convolutions with constant weights into Winograd F(m x m, 3 x 3).

Winograd computes an m x m output tile from an (m+2) x (m+2) input tile with (m+2)^2 multiplies
per input/output channel pair instead of 9 m^2: F(4x4, 3x3) needs 4x fewer in its batched GEMM,
the stage that holds the time. The input and output transforms cost memory passes, not
multiplies. Measured on one 80x80 64->64 conv (yolov8n's largest), 64 MetaSchedule trials each,
quiet machine: direct 3.97 ms, Winograd 6.73 ms. At equal trials it loses (its search space is
larger and its builds slower: 589 s of tuning against 79 s). On a busy machine the order was
reversed (7.8 against 11.8 ms): measure it quiet. It is an option of the graph form, not a
default.

The kernel transform ``G w G^T`` is done here in numpy, once: the packed kernel is a constant.
The data-pack and inverse stages carry the ``schedule_rule`` names of MetaSchedule's own Winograd
rules, as TOPI's Winograd (which transforms the kernel on every call) does. Runs after ConvertLayout
(NHWC/OHWI); every other conv stays as it is.
"""

import numpy as np
import tvm
from tvm import relax, te
from tvm.topi.utils import const_matrix

from .rewrite import mutate_functions, nhwc_conv_with_constant_weight

# MetaSchedule's kOutEWiseFusable: elementwise consumers (bias, activation) fuse into the output stage.
OUT_ELEMWISE_FUSABLE = 4


def transform_matrices(tile: int) -> tuple:
    """(A, B, G) of F(tile x tile, 3 x 3) as float64 numpy (Cook-Toom, TOPI's interpolation points)."""
    from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

    return _cook_toom_convolution(_interpolation_points(tile + 1), tile, 3)


def transform_kernel(ohwi: np.ndarray, tile: int) -> np.ndarray:
    """``[alpha, alpha, O, I]`` = G w G^T per channel pair (alpha = tile + 2)."""
    _, _, g = transform_matrices(tile)
    return np.einsum("ek,okwi,nw->enoi", g, ohwi.astype(np.float64), g).astype(np.float32)


def _winograd(data, kernel, pads, tile: int):
    """NHWC output of the 3x3 conv of ``data`` (padded by top, left, bottom, right) with a kernel
    ``transform_kernel`` made."""
    n, height, width, channels = (int(d) for d in data.shape)
    alpha, _, out_channels, _ = (int(d) for d in kernel.shape)
    top, left, bottom, right = pads
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    tiles_h, tiles_w = -(-out_h // tile), -(-out_w // tile)
    tiles = n * tiles_h * tiles_w
    a_np, b_np, _ = transform_matrices(tile)
    a, b = const_matrix(a_np.astype("float32"), "A"), const_matrix(b_np.astype("float32"), "B")

    # zero-padded to whole tiles: a stage of its own, the producer MetaSchedule's data-pack rule expects
    padded_h, padded_w = (tiles_h - 1) * tile + alpha, (tiles_w - 1) * tile + alpha
    data_pad = te.compute((n, padded_h, padded_w, channels), lambda b_, h, w, c: te.if_then_else(
        te.all(h >= top, h < height + top, w >= left, w < width + left), data[b_, h - top, w - left, c],
        te.const(0.0, "float32")), name="data_pad", attrs={"schedule_rule": "None"})
    input_tile = te.compute((alpha, alpha, tiles, channels), lambda eps, nu, p, c: data_pad[
        p // (tiles_h * tiles_w), p // tiles_w % tiles_h * tile + eps, p % tiles_w * tile + nu, c],
        name="input_tile", attrs={"schedule_rule": "None"})
    ra, rb = te.reduce_axis((0, alpha), "ra"), te.reduce_axis((0, alpha), "rb")
    data_pack = te.compute((alpha, alpha, tiles, channels), lambda eps, nu, p, c: te.sum(
        input_tile[ra, rb, p, c] * b[ra, eps] * b[rb, nu], axis=[ra, rb]), name="data_pack",
        attrs={"schedule_rule": "conv2d_nhwc_winograd_data_pack"})
    rc = te.reduce_axis((0, channels), "rc")
    bgemm = te.compute((alpha, alpha, tiles, out_channels), lambda eps, nu, p, o: te.sum(
        data_pack[eps, nu, p, rc] * kernel[eps, nu, o, rc], axis=[rc]), name="bgemm",
        attrs={"meta_schedule.write_cache_level": [2]})
    ra, rb = te.reduce_axis((0, alpha), "ra"), te.reduce_axis((0, alpha), "rb")
    inverse = te.compute((tile, tile, tiles, out_channels), lambda vh, vw, p, o: te.sum(
        bgemm[ra, rb, p, o] * a[ra, vh] * a[rb, vw], axis=[ra, rb]), name="inverse",
        attrs={"schedule_rule": "conv2d_nhwc_winograd_inverse"})
    return te.compute((n, out_h, out_w, out_channels), lambda b_, h, w, o: inverse[
        h % tile, w % tile, b_ * tiles_h * tiles_w + h // tile * tiles_w + w // tile, o], name="conv2d_winograd")


@relax.expr_functor.mutator
class _Winograd(relax.PyExprMutator):
    def __init__(self, mod, tile: int):
        super().__init__(mod)
        self.tile = tile

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        conv = nhwc_conv_with_constant_weight(self, call, "float32", "float32")
        if conv is None:
            return call
        attrs, data, ohwi = conv
        if (ohwi.shape[1:3] != (3, 3) or attrs.out_dtype not in ("float32", "")
                or any(int(s) != 1 for s in (*attrs.strides, *attrs.dilation))):
            return call
        kernel = relax.const(transform_kernel(ohwi, self.tile))
        # the transformed kernel is a constant (MetaSchedule may lay it out as it likes), and
        # elementwise consumers fuse into the output stage
        return self.builder_.call_te(_winograd, data, kernel, [int(p) for p in attrs.padding], self.tile,
                                     primfunc_name_hint="conv2d_nhwc_winograd",
                                     primfunc_attrs={"op_pattern": OUT_ELEMWISE_FUSABLE, "layout_free_buffers": [1]})


def winograd_conv2d(tile: int = 4):
    """The pass computing each eligible conv as F(tile x tile, 3 x 3)."""

    @tvm.transform.module_pass(opt_level=0, name="WinogradConv2d")
    def transform(mod, _ctx):
        return mutate_functions(_Winograd(mod, tile), mod)

    return transform
