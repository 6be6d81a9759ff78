"""Rewrite dequantize -> max_pool2d -> quantize (same scale and zero point) into max_pool2d on the integers.

Dequantizing is increasing (scale > 0), so the maximum of dequantized values is the dequantized
maximum, and re-quantizing on the same grid gives back the integer exactly. The pool then reads
and writes a quarter of the bytes and the float round trip disappears. Padding is exact too: the
integer pool pads with the type's minimum, which never exceeds a real value, as -inf never does.
"""

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .rewrite import constant_value as _value
from .rewrite import rewrite_functions


@tvm.transform.module_pass(opt_level=0, name="IntegerMaxPool2d")
def integer_max_pool2d(mod, _ctx):
    data, scale_in, zero_in, scale_out, zero_out = wildcard(), is_const(), is_const(), is_const(), is_const()
    pool = is_op("relax.nn.max_pool2d")(is_op("relax.dequantize")(data, scale_in, zero_in))
    pattern = is_op("relax.quantize")(pool, scale_out, zero_out)

    def rewriter(matched, m):
        same_grid = (np.array_equal(_value(m[scale_in]), _value(m[scale_out]))
                     and np.array_equal(_value(m[zero_in]), _value(m[zero_out]))
                     and m[data].ty.dtype == matched.ty.dtype)
        if not same_grid:
            return matched
        pool_call = m[pool]
        return relax.Call(pool_call.op, [m[data]], pool_call.attrs)

    return rewrite_functions(mod, lambda func: rewrite_call(pattern, rewriter, func))
