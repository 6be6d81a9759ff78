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


NHWC_CONV = ("NHWC", "OHWI", "NHWC")  # data, kernel and output layouts after ConvertLayout


def nhwc_conv_with_constant_weight(mutator, call, data_dtype: str, weight_dtype: str):
    """(attrs, data, OHWI weight as numpy) for an NHWC, ungrouped conv2d call of ``data_dtype``
    data whose weight is a ``weight_dtype`` constant, else None. ``mutator``: the PyExprMutator
    visiting ``call`` (its bindings are looked up)."""
    if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d"):
        return None
    attrs, (data, weight) = call.attrs, call.args
    ohwi = constant_ohwi(mutator.lookup_binding, weight)
    if (ohwi is None or ohwi.dtype != weight_dtype or str(data.ty.dtype) != data_dtype or attrs.groups != 1
            or (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != NHWC_CONV):
        return None
    return attrs, data, ohwi


def mutate_functions(mutator, mod):
    """``mod`` with each Relax function visited by ``mutator`` (built on ``mod``), and what the
    rewrites left unused (replaced weights, pads taken in) removed."""
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            mutator.builder_.update_func(gvar, mutator.visit_expr(func))
    return relax.transform.DeadCodeElimination()(mutator.builder_.get())


def rewrite_functions(mod, rewrite):
    """A copy of ``mod`` with ``rewrite(func)`` in place of each Relax function (``mod`` is kept)."""
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            result.update_func(gvar, rewrite(func))
    return result
