"""Rewrite u8 x i8 -> i32 NHWC convolutions with constant weights into a conv on packed weights.

Integer dot-product instructions multiply a few input channels by a block of output channels at
once; the tensor intrinsic that wraps one reads its weights as one contiguous vector. This pass
repacks each constant OHWI weight into ``[O/lanes, KH, KW, I/group, lanes, group]`` (numpy, at
compile time) and replaces the conv2d with a TIR conv that reads it so, which MetaSchedule can
tensorize (see ``tuning/int8_dot.py``). Channels are zero-padded to whole blocks. Runs after
ConvertLayout (NHWC); grouped convs, implicit padding and signed data stay as they are.
"""

import numpy as np
import tvm
from tvm import relax, te

from .rewrite import constant_value


def _conv(data, weight, strides, dilation, out_channels: int, lanes: int, group: int):
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
    def __init__(self, mod, lanes: int, group: int):
        super().__init__(mod)
        self.lanes, self.group = lanes, group

    def _constant_ohwi(self, weight):
        """The weight as an OHWI numpy array when it is a constant (or a transposed one)."""
        value = self.lookup_binding(weight) if isinstance(weight, relax.Var) else weight
        if isinstance(value, relax.Call) and value.op.name == "relax.permute_dims":
            source = constant_value(value.args[0])
            return None if source is None else np.transpose(source, [int(a) for a in value.attrs.axes])
        return constant_value(value)

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d"):
            return call
        attrs, (data, weight) = call.attrs, call.args
        ohwi = self._constant_ohwi(weight)
        if (ohwi is None or ohwi.dtype != np.int8 or str(data.ty.dtype) != "uint8"
                or attrs.out_dtype != "int32" or attrs.groups != 1 or any(int(p) for p in attrs.padding)
                or (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NHWC", "OHWI", "NHWC")):
            return call
        out_channels, channels = ohwi.shape[0], ohwi.shape[3]
        if channels % self.group:  # e.g. an RGB input: extra channels meet zero weights
            data = self.builder_.emit(relax.op.nn.pad(data, [0, 0, 0, 0, 0, 0, 0, _round_up(channels, self.group)
                                                             - channels]))
        packed = pack_weight(ohwi, self.lanes, self.group)
        conv = self.builder_.call_te(
            _conv, data, relax.const(packed), [int(s) for s in attrs.strides], [int(d) for d in attrs.dilation],
            packed.shape[0] * self.lanes, self.lanes, self.group, primfunc_name_hint="conv2d_nhwc_u8i8_packed")
        if out_channels % self.lanes:  # e.g. a detection head's 255 outputs: drop the padded ones
            conv = relax.op.strided_slice(self.builder_.emit(conv), axes=[3], begin=[0], end=[out_channels])
        return conv


def pack_int8_conv2d(lanes: int, group: int):
    """The pass for a kernel computing ``lanes`` outputs x ``group`` inputs per instruction."""

    @tvm.transform.module_pass(opt_level=0, name="PackInt8Conv2d")
    def transform(mod, _ctx):
        packer = _Packer(mod, lanes, group)
        for gvar, func in mod.functions_items():
            if isinstance(func, relax.Function):
                packer.builder_.update_func(gvar, packer.visit_expr(func))
        # the OHWI weights the packed convs replaced are dead now
        return relax.transform.DeadCodeElimination()(packer.builder_.get())

    return transform
