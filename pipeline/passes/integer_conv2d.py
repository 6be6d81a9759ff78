"""Rewrite dequantize -> conv2d (-> + dequantized bias) into an integer conv2d plus a rescale.

An imported Q/DQ graph computes every convolution in float: the weights' dequantize folds into
float constants and the activations are dequantized before each conv. This pass puts the
integers back into the convolution:

    x = sx * (xq - zx),  w[o] = sw[o] * wq[o]  (symmetric weights, zw = 0)
    conv(x, w)[o] + b[o] = sx * sw[o] * (conv(xq, wq)[o] - zx * sum(wq[o]) + bq[o])

where ``bq = b / (sx * sw)`` is the int32 bias ONNX Runtime already stores. ``xq`` is padded with
its zero point (the integer that means 0.0), so one per-channel constant corrects every output
position, borders included; the conv multiplies u8/i8 x i8 into i32, which is what the integer
dot-product instructions (VNNI, ARM sdot/udot, CUDA dp4a) accelerate. The rescale and the
following quantize are element-wise and fuse into the conv's epilogue.

Grouped and depthwise convs follow the same algebra (the weight sum runs over each group's input
channels). Convs whose weights are not symmetric int8, or whose input is not dequantized from a
per-tensor integer, are left as they are.
"""

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .rewrite import constant_value as _const
from .rewrite import rewrite_functions


def _patterns():
    data, data_scale, data_zero = wildcard(), is_const(), is_const()
    weight, weight_scale, weight_zero = is_const(), is_const(), is_const()
    conv = is_op("relax.nn.conv2d")(is_op("relax.dequantize")(data, data_scale, data_zero),
                                     is_op("relax.dequantize")(weight, weight_scale, weight_zero))
    bias, bias_scale, bias_zero = is_const(), is_const(), is_const()
    biased = is_op("relax.add")(conv, is_op("relax.reshape")(
        is_op("relax.dequantize")(bias, bias_scale, bias_zero), wildcard()))
    names = {"data": data, "data_scale": data_scale, "data_zero": data_zero, "weight": weight,
             "weight_scale": weight_scale, "weight_zero": weight_zero, "conv": conv}
    bias_names = {"bias": bias, "bias_scale": bias_scale, "bias_zero": bias_zero}
    return biased, conv, names, bias_names


def _integer_conv(conv_call, parts: dict):
    """The integer form of ``conv_call`` given its matched operands, or None when it does not apply."""
    attrs = conv_call.attrs
    data, wq = parts["data"], _const(parts["weight"])
    sx, zx = _const(parts["data_scale"]), _const(parts["data_zero"])
    sw, zw = _const(parts["weight_scale"]), _const(parts["weight_zero"])
    if (attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW" or wq.dtype != np.int8
            or str(data.ty.dtype) not in ("uint8", "int8") or sx.size != 1 or zx.size != 1 or np.any(zw != 0)):
        return None
    out_channels = wq.shape[0]
    scale = (float(sx.reshape(())) * np.broadcast_to(sw.astype(np.float64), (out_channels,)))
    zero = int(zx.reshape(()))
    offset = -zero * wq.astype(np.int64).reshape(out_channels, -1).sum(axis=1)
    float_bias = None
    if "bias" in parts:
        bq, sb = _const(parts["bias"]), _const(parts["bias_scale"])
        zb = _const(parts["bias_zero"])
        if bq.dtype == np.int32 and not np.any(zb) and np.allclose(np.broadcast_to(sb, scale.shape), scale, rtol=1e-5):
            offset = offset + bq.astype(np.int64)
        else:  # a bias quantized on another scale is added back in float, after the rescale
            float_bias = (bq.astype(np.float64) - zb) * sb
    pad = [int(p) for p in attrs.padding]  # top, left, bottom, right
    if any(pad):
        data = relax.op.nn.pad(data, [0, 0, 0, 0, pad[0], pad[2], pad[1], pad[3]], pad_value=float(zero))
    acc = relax.op.nn.conv2d(data, relax.const(wq), strides=attrs.strides, padding=[0, 0, 0, 0],
                             dilation=attrs.dilation, groups=attrs.groups, data_layout="NCHW",
                             kernel_layout="OIHW", out_dtype="int32")
    per_channel = (1, out_channels, 1, 1)
    acc = relax.op.add(acc, relax.const(offset.astype(np.int32).reshape(per_channel)))
    out = relax.op.multiply(relax.op.astype(acc, "float32"),
                            relax.const(scale.astype(np.float32).reshape(per_channel)))
    if float_bias is not None:
        out = relax.op.add(out, relax.const(float_bias.astype(np.float32).reshape(per_channel)))
    return out


def _rewrite(func, pattern, names, bias_names):
    def rewriter(matched, matchings):
        conv_call = matchings[names["conv"]]
        parts = {name: matchings[p] for name, p in {**names, **bias_names}.items() if p in matchings}
        lowered = _integer_conv(conv_call, parts)
        return matched if lowered is None else lowered

    return rewrite_call(pattern, rewriter, func)


@tvm.transform.module_pass(opt_level=0, name="IntegerConv2d")
def integer_conv2d(mod, _ctx):
    biased, bare, names, bias_names = _patterns()
    # biased convs first, their bias folded into the i32 sum; then the convs with no bias
    return rewrite_functions(mod, lambda func: _rewrite(_rewrite(func, biased, names, bias_names),
                                                        bare, names, {}))
