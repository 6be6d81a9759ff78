"""What the pattern-rewriting passes share: apply a rewrite to every Relax function of a
module, and read the constants a pattern matched."""

import tvm
from tvm import relax


def constant_value(expr):
    """A matched constant's value as a numpy array (None for anything but a constant)."""
    return expr.value.numpy() if isinstance(expr, tvm.ir.Constant) else None


def rewrite_functions(mod, rewrite):
    """A copy of ``mod`` with ``rewrite(func)`` in place of each Relax function (``mod`` is kept)."""
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            result.update_func(gvar, rewrite(func))
    return result
