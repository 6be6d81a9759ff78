"""Vectorize the channel loop of kernels that concatenate, where tuned schedules leave it scalar.

Relax legalizes ``concat`` along channels (NHWC) to one ``if_then_else`` per element choosing its
source by channel. TIR's vectorizer scalarizes a loop over such a choice, so the schedules
MetaSchedule keeps for these kernels run one element at a time, every requantize constant
reloaded and divided per element: the fused requantize+concat kernels of the int8 yolov8-digits
took 1.5-8 ns per element. This pass splits the innermost channel loop into vectors and
partitions the loop over vectors at the sources' boundaries, so that each piece reads one source
and the choice simplifies away, where every boundary is a multiple of the vector width.

Not a Relax pass: it rewrites scheduled TIR after the tuning records are applied (compile) and
in the tuning builder (so the tuner measures what compile builds); the TIR the records match is
unchanged, so committed databases keep applying. Kernels with a reduction are left alone.
"""

from .tir_exprs import children

LANES = (16, 8)  # widest first: 16 x u8 is one xmm, 16 x f32 two ymm


def vectorize_concat_axis():
    import tvm

    @tvm.transform.module_pass(opt_level=0, name="VectorizeConcatAxis")
    def transform(mod, _ctx):
        for gvar, func in list(mod.functions_items()):
            if isinstance(func, tvm.tirx.PrimFunc):
                mod[gvar] = vectorize_func(func)
        return mod

    return transform


def vectorize_func(func):
    """The function with each qualifying block's innermost loop split and vectorized."""
    import tvm
    from tvm import s_tir

    plans = [p for p in (_plan(loops, realize) for loops, realize in _loop_nests(func.body)) if p]
    if not plans or _has_reduction(func.body):
        return func
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    for block_name, pieces, lanes in plans:
        loop = sch.get_loops(sch.get_sblock(block_name, func_name="main"))[-1]
        vectors, lane = sch.split(loop, [None, lanes])
        sch.vectorize(lane)
        sch.loop_partition(vectors, [p // lanes for p in pieces[:-1]] + [None])
    return sch.mod["main"]


def _plan(loops, realize):
    """(block name, piece extents, lanes) when the block's innermost loop is serial (or vectorized,
    which the choice scalarizes) and is one iteration variable's whole range, and every constant
    that variable is compared against in an ``if_then_else`` is a multiple of the lanes; else
    None."""
    import tvm
    from tvm import tirx

    # a vectorized loop over the choice is scalarized by TIR's vectorizer: as good as serial
    if not loops or loops[-1].kind not in (tirx.ForKind.SERIAL, tirx.ForKind.VECTORIZED) or loops[-1].annotations:
        return None
    loop = loops[-1]
    if not isinstance(loop.extent, tirx.IntImm):
        return None
    bound = [(iv, value) for iv, value in zip(realize.block.iter_vars, realize.iter_values)
             if _uses(value, loop.loop_var)]
    if len(bound) != 1:
        return None
    iv, value = bound[0]
    extent = loop.extent.value
    if not tvm.sym.Analyzer().can_prove_equal(value, loop.loop_var) or iv.dom.extent.value != extent:
        return None
    cuts = sorted({b for b in _compared_constants(realize.block.body, iv.var) if 0 < b < extent})
    if not cuts:  # no choice on this axis: the tuned schedule had its reasons
        return None
    pieces = [b - a for a, b in zip([0, *cuts], [*cuts, extent])]
    lanes = next((n for n in LANES if all(p % n == 0 for p in pieces)), None)
    return (realize.block.name_hint, pieces, lanes) if lanes else None


def _loop_nests(stmt, loops=()):
    """(enclosing loops, block realize) for every block, outermost loop first."""
    from tvm import s_tir, tirx

    if isinstance(stmt, tirx.For):
        yield from _loop_nests(stmt.body, loops + (stmt,))
    elif isinstance(stmt, tirx.SeqStmt):
        for s in stmt.seq:
            yield from _loop_nests(s, loops)
    elif isinstance(stmt, s_tir.SBlockRealize):
        yield loops, stmt
        yield from _loop_nests(stmt.block.body, ())
    elif hasattr(stmt, "body"):
        yield from _loop_nests(stmt.body, loops)


def _has_reduction(stmt) -> bool:
    return any(iv.iter_type != 0 for _, realize in _loop_nests(stmt) for iv in realize.block.iter_vars)


def _compared_constants(stmt, var) -> list:
    """Constants ``var`` is compared with in the conditions of ``if_then_else`` calls (a concat's
    source boundaries). A condition on ``var`` of any other form returns [] (not understood)."""
    import tvm
    from tvm import tirx

    found, understood = [], True
    if_then_else = tvm.ir.Op.get("prim.if_then_else")

    def visit(expr):
        nonlocal understood
        if if_then_else.same_as(getattr(expr, "op", None)):
            cond = expr.args[0]
            if _uses(cond, var):
                sides = (cond.a, cond.b) if isinstance(cond, (tirx.LT, tirx.LE, tirx.GT, tirx.GE)) else ()
                consts = [s.value for s in sides if isinstance(s, tirx.IntImm)]
                if len(consts) == 1 and any(s.same_as(var) for s in sides):
                    found.append(consts[0])
                else:
                    understood = False
        for child in children(expr):
            visit(child)

    visit(stmt.value if hasattr(stmt, "value") else stmt)
    return found if understood else []


def _uses(expr, var) -> bool:
    from tvm import tirx

    if isinstance(expr, tirx.Var):
        return expr.same_as(var)
    return any(_uses(c, var) for c in children(expr))

