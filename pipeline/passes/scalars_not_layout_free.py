"""Take one-element constants out of the kernels' layout-free buffers.

``AttachAttrLayoutFreeBuffers`` marks every constant argument of a kernel layout-free, so that
MetaSchedule may pick a packed layout for it (weights). A one-element tensor (a requantize scale
made an argument by ``scalar_operands_as_tensors``, a zero point to pad with) has no layout to
choose, and evolved schedules that rewrote one anyway made MetaSchedule's own argument analysis
fail mid-tune (``RemoveWeightLayoutRewriteBlock``: "Check failed: ind.as<PrimVar>()"), which
ended the whole tune.
"""

import math

import tvm
from tvm import tirx

ATTR = "layout_free_buffers"


def _elements(func, index: int) -> int:
    return math.prod(int(d) for d in func.params[index].ty.shape)


@tvm.transform.module_pass(opt_level=0, name="ScalarsNotLayoutFree")
def scalars_not_layout_free(mod, _ctx):
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc) or ATTR not in (func.attrs or {}):
            continue
        kept = [int(i) for i in func.attrs[ATTR] if _elements(func, int(i)) > 1]
        if len(kept) < len(func.attrs[ATTR]):
            result.update_func(gvar, func.with_attr(ATTR, kept))
    return result
