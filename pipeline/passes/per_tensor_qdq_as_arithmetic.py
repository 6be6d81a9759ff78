"""Rewrite per-tensor quantize / dequantize into the element-wise arithmetic they legalize to.

Relax has no layout rule for ``relax.quantize`` / ``relax.dequantize`` (nor ``clip``): with
convs converted to NHWC, ConvertLayout transposed every activation back to NCHW around them and
forward again for the next conv, and the transposes split the fused kernels. Written as divide /
round / add / minimum / maximum / astype (quantize) and astype / subtract / multiply
(dequantize) with scalar constants, the same numbers come out (the formulas of TVM's own
legalization), layouts pass through, and a conv's epilogue fuses with the requantize after it.

Only quantize/dequantize with one scale and one zero point (activations) are rewritten; per
channel ones (weights) keep their op.
"""

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .rewrite import constant_value, rewrite_functions


def _scalar(expr):
    value = constant_value(expr)
    return None if value is None or value.size != 1 else value.reshape(())


def _quantize(data, scale, zero, out_dtype: str):
    info = np.iinfo(out_dtype)
    scaled = relax.op.round(relax.op.divide(data, relax.const(scale, "float32")))
    shifted = relax.op.add(scaled, relax.const(float(zero), "float32"))
    # maximum/minimum, not clip: clip has no layout rule either
    clipped = relax.op.maximum(relax.op.minimum(shifted, relax.const(float(info.max), "float32")),
                               relax.const(float(info.min), "float32"))
    return relax.op.astype(clipped, out_dtype)


def _dequantize(data, scale, zero):
    shifted = relax.op.subtract(relax.op.astype(data, "int32"), relax.const(int(zero), "int32"))
    return relax.op.multiply(relax.op.astype(shifted, "float32"), relax.const(scale, "float32"))


def _rewrite_op(func, op_name: str, lower):
    """Rewrite calls of ``op_name`` whose scale and zero point are scalar constants with
    ``lower(call, data, scale, zero)``, which may decline (None)."""
    data, scale, zero = wildcard(), is_const(), is_const()
    pattern = is_op(op_name)(data, scale, zero)

    def rewriter(matched, matchings):
        s, z = _scalar(matchings[scale]), _scalar(matchings[zero])
        lowered = None if s is None or z is None else lower(matchings[pattern], matchings[data], s, z)
        return matched if lowered is None else lowered

    return rewrite_call(pattern, rewriter, func)


def _lower_quantize(call, data, scale, zero):
    out_dtype = str(call.attrs.out_dtype)
    if str(data.ty.dtype) != "float32" or out_dtype not in ("uint8", "int8"):
        return None
    return _quantize(data, scale, zero, out_dtype)


def _lower_dequantize(call, data, scale, zero):
    if str(data.ty.dtype) not in ("uint8", "int8") or str(call.attrs.out_dtype) != "float32":
        return None
    return _dequantize(data, scale, zero)


@tvm.transform.module_pass(opt_level=0, name="PerTensorQdqAsArithmetic")
def per_tensor_qdq_as_arithmetic(mod, _ctx):
    return rewrite_functions(mod, lambda func: _rewrite_op(_rewrite_op(func, "relax.quantize", _lower_quantize),
                                                           "relax.dequantize", _lower_dequantize))
