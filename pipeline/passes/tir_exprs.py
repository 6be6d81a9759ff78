"""Walking TIR expressions and scheduled blocks: 0.27's Python API has no TIR visitor."""


def children(expr):
    """The sub-expressions of a TIR expression (operands, call arguments, load indices)."""
    for field in ("a", "b", "value", "condition", "true_value", "false_value"):
        child = getattr(expr, field, None)
        if child is not None and not isinstance(child, (int, float)):
            yield child
    for field in ("args", "indices"):
        yield from getattr(expr, field, ())


def schedule_blocks(sch):
    """Every block of every function of an ``s_tir.Schedule``, each before the blocks inside it."""
    for gvar in sch.mod.get_global_vars():
        blocks = list(sch.get_child_blocks(sch.get_sblock("root", gvar.name_hint)))
        while blocks:
            block = blocks.pop()
            blocks.extend(sch.get_child_blocks(block))
            yield block
