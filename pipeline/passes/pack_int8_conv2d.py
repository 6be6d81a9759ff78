"""Rewrite u8 x i8 -> i32 NHWC convolutions with constant weights into a conv on packed weights.

Integer dot-product instructions multiply a few input channels by a block of output channels at
once; the tensor intrinsic that wraps one reads its weights as one contiguous vector. This pass
repacks each constant OHWI weight into ``[O/lanes, KH, KW, I/group, lanes, group]`` (numpy, at
compile time) and replaces the conv2d with a TIR conv that reads it so, which MetaSchedule can
tensorize (see ``tuning/int8_dot.py``). Channels are zero-padded to whole blocks. Runs after
ConvertLayout (NHWC); grouped convs, implicit padding and signed data stay as they are.

With ``pads_inside``, a spatial ``nn.pad`` feeding the conv (the zero-point pad
``integer_conv2d`` writes) becomes a stage of the packed conv's own kernel, its value a
one-element tensor argument: no separate pad kernel or tuning task, and convs that differ only in
their input's zero point share one kernel.
"""

import numpy as np
import tvm
from tvm import relax, te

from .rewrite import mutate_functions, nhwc_conv_with_constant_weight


PAD_STAGE = "pad"  # the name of the padding stage in a packed conv's kernel (tuning/int8_dot.py)


def _padded(data, pad_value, pads):
    """``data`` padded by (top, bottom, left, right) with ``pad_value[0]``, as a stage of the kernel."""
    n, height, width, channels = data.shape
    top, bottom, left, right = pads
    return te.compute((n, height + top + bottom, width + left + right, channels), lambda b, h, w, c: te.if_then_else(
        te.all(h >= top, h < height + top, w >= left, w < width + left), data[b, h - top, w - left, c],
        pad_value[0]), name=PAD_STAGE)


def _conv(data, weight, strides, dilation, out_channels: int, lanes: int, group: int, pad_value=None, pads=None):
    if pad_value is not None:
        data = _padded(data, pad_value, pads)
    n, height, width, channels = data.shape
    _, kh, kw, _, _, _ = weight.shape
    (sh, sw), (dh, dw) = strides, dilation
    out_h = (height - (kh - 1) * dh - 1) // sh + 1
    out_w = (width - (kw - 1) * dw - 1) // sw + 1
    rh, rw, rc = te.reduce_axis((0, kh), "rh"), te.reduce_axis((0, kw), "rw"), te.reduce_axis((0, channels), "rc")
    return te.compute((n, out_h, out_w, out_channels), lambda b, h, w, o: te.sum(
        data[b, h * sh + rh * dh, w * sw + rw * dw, rc].astype("int32")
        * weight[o // lanes, rh, rw, rc // group, o % lanes, rc % group].astype("int32"), axis=[rh, rw, rc]),
        name="conv2d_nhwc_packed")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pack_weight(ohwi: np.ndarray, lanes: int, group: int) -> np.ndarray:
    """``[O/lanes, KH, KW, I/group, lanes, group]``, channels zero-padded to whole blocks."""
    out_channels, kh, kw, channels = ohwi.shape
    o, i = _round_up(out_channels, lanes), _round_up(channels, group)
    padded = np.pad(ohwi, [(0, o - out_channels), (0, 0), (0, 0), (0, i - channels)])
    return np.ascontiguousarray(padded.reshape(o // lanes, lanes, kh, kw, i // group, group).transpose(0, 2, 3, 4, 1, 5))


@relax.expr_functor.mutator
class _Packer(relax.PyExprMutator):
    def __init__(self, mod, lanes: int, group: int, pads_inside: bool):
        super().__init__(mod)
        self.lanes, self.group, self.pads_inside = lanes, group, pads_inside

    def _spatial_pad(self, data):
        """(unpadded data, [top, bottom, left, right], value) when ``data`` is a constant pad of
        the NHWC spatial axes only, else None."""
        pad = self.lookup_binding(data) if isinstance(data, relax.Var) else None
        if not (isinstance(pad, relax.Call) and isinstance(pad.op, tvm.ir.Op) and pad.op.name == "relax.nn.pad"
                and pad.attrs.pad_mode == "constant"):
            return None
        widths = [int(w) for w in pad.attrs.pad_width]
        if any(widths[:2] + widths[6:]):
            return None
        return pad.args[0], widths[2:6], float(pad.attrs.pad_value)

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        conv = nhwc_conv_with_constant_weight(self, call, "uint8", "int8")
        if conv is None:
            return call
        attrs, data, ohwi = conv
        if attrs.out_dtype != "int32" or any(int(p) for p in attrs.padding):
            return call
        out_channels, channels = ohwi.shape[0], ohwi.shape[3]
        padding = {}
        spatial_pad = self._spatial_pad(data) if self.pads_inside else None
        if spatial_pad is not None:
            data, pads, value = spatial_pad
            padding = {"pad_value": relax.const(np.array([value], dtype="uint8")), "pads": pads}
        if channels % self.group:  # e.g. an RGB input: extra channels meet zero weights
            data = self.builder_.emit(relax.op.nn.pad(data, [0, 0, 0, 0, 0, 0, 0, _round_up(channels, self.group)
                                                             - channels]))
        packed = pack_weight(ohwi, self.lanes, self.group)
        conv = self.builder_.call_te(
            _conv, data, relax.const(packed), [int(s) for s in attrs.strides], [int(d) for d in attrs.dilation],
            packed.shape[0] * self.lanes, self.lanes, self.group, **padding,
            primfunc_name_hint="conv2d_nhwc_u8i8_packed")
        if out_channels % self.lanes:  # e.g. a detection head's 255 outputs: drop the padded ones
            conv = relax.op.strided_slice(self.builder_.emit(conv), axes=[3], begin=[0], end=[out_channels])
        return conv


def pack_int8_conv2d(lanes: int, group: int, pads_inside: bool = False):
    """The pass for a kernel computing ``lanes`` outputs x ``group`` inputs per instruction."""

    @tvm.transform.module_pass(opt_level=0, name="PackInt8Conv2d")
    def transform(mod, _ctx):
        return mutate_functions(_Packer(mod, lanes, group, pads_inside), mod)

    return transform
