"""Give element-wise arithmetic its scalar constants as one-element tensors.

Legalization writes a scalar constant into the kernel's code as a literal, so two convs of the
same shape whose requantize uses different scales and zero points (every conv of an int8 graph)
compile to two different kernels, and tuning searches each one separately. As a one-element
tensor the constant is an argument instead: same-shaped layers share one kernel and one tuning
task (yolov8-digits pruned int8: 120 tasks -> 94 by this alone), at the cost of one scalar load.

Only ``add``, ``subtract``, ``multiply`` and ``divide`` with the constant on the right (how
quantize, dequantize and requantize are written) are rewritten; clip bounds are the same in
every layer and stay literals.
"""

import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from .rewrite import constant_value, rewrite_functions

ARITHMETIC = ("relax.add", "relax.subtract", "relax.multiply", "relax.divide")


def _rewrite_op(func, op_name: str):
    data, constant = wildcard(), is_const()
    pattern = is_op(op_name)(data, constant)

    def rewriter(matched, matchings):
        value = constant_value(matchings[constant])
        if value.ndim != 0:
            return matched
        return relax.Call(matchings[pattern].op, [matchings[data], relax.const(value.reshape(1))])

    return rewrite_call(pattern, rewriter, func)


def _rewrite(func):
    for op_name in ARITHMETIC:
        func = _rewrite_op(func, op_name)
    return func


@tvm.transform.module_pass(opt_level=0, name="ScalarOperandsAsTensors")
def scalar_operands_as_tensors(mod, _ctx):
    return rewrite_functions(mod, _rewrite)
