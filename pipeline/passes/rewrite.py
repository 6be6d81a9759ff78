"""What the pattern-rewriting passes share: apply a rewrite to every Relax function of a
module, and read the constants a pattern matched."""

import numpy as np
import tvm
from tvm import relax


def constant_value(expr):
    """A matched constant's value as a numpy array (None for anything but a constant)."""
    return expr.value.numpy() if isinstance(expr, tvm.ir.Constant) else None


def constant_ohwi(lookup_binding, weight):
    """A conv weight as a numpy array when it is a constant, or a constant transposed (what
    ConvertLayout leaves), else None."""
    value = lookup_binding(weight) if isinstance(weight, relax.Var) else weight
    if isinstance(value, relax.Call) and value.op.name == "relax.permute_dims":
        source = constant_value(value.args[0])
        return None if source is None else np.transpose(source, [int(a) for a in value.attrs.axes])
    return constant_value(value)


def rewrite_functions(mod, rewrite):
    """A copy of ``mod`` with ``rewrite(func)`` in place of each Relax function (``mod`` is kept)."""
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            result.update_func(gvar, rewrite(func))
    return result
