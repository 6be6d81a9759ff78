"""Take one-element constants and lookup tables out of the kernels' layout-free buffers.

``AttachAttrLayoutFreeBuffers`` marks every constant argument of a kernel layout-free, so that
MetaSchedule may pick a packed layout for it (weights). A one-element tensor (a requantize scale
made an argument by ``scalar_operands_as_tensors``, a zero point to pad with) has no layout to
choose, and evolved schedules that rewrote one anyway made MetaSchedule's own argument analysis
fail mid-tune (``RemoveWeightLayoutRewriteBlock``: "Check failed: ind.as<PrimVar>()"), which
ended the whole tune. Neither has a table read at positions the data decides (the lookups of
``quantized_activation_as_table``): no loop order walks it.
"""

import math

import tvm
from tvm import tirx

from .tir_exprs import children, schedule_blocks

ATTR = "layout_free_buffers"


def _elements(func, index: int) -> int:
    return math.prod(int(d) for d in func.params[index].ty.shape)


def _reads_a_load(expr) -> bool:
    return isinstance(expr, tvm.ir.expr.TensorLoad) or any(_reads_a_load(c) for c in children(expr))


def _gathered_sources(func) -> list:
    """The tensors ``func`` reads at an index that is itself read from a tensor."""
    from tvm import s_tir

    sch, found = s_tir.Schedule(func), []
    for block in schedule_blocks(sch):
        pending = [getattr(sch.get(block).body, "value", None)]
        while pending:
            expr = pending.pop()
            if expr is None:
                continue
            if isinstance(expr, tvm.ir.expr.TensorLoad) and any(_reads_a_load(i) for i in expr.indices):
                found.append(expr.source)
            pending.extend(children(expr))
    return found


def _has_layout(func, index: int, gathered: list) -> bool:
    return _elements(func, index) > 1 and not any(func.params[index].same_as(g) for g in gathered)


@tvm.transform.module_pass(opt_level=0, name="ScalarsAndTablesNotLayoutFree")
def scalars_and_tables_not_layout_free(mod, _ctx):
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc) or ATTR not in (func.attrs or {}):
            continue
        gathered = _gathered_sources(func)
        kept = [int(i) for i in func.attrs[ATTR] if _has_layout(func, int(i), gathered)]
        if len(kept) < len(func.attrs[ATTR]):
            result.update_func(gvar, func.with_attr(ATTR, kept))
    return result
