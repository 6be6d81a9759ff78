"""Walking TIR expressions: 0.27's Python API has no TIR visitor."""


def children(expr):
    """The sub-expressions of a TIR expression (operands, call arguments, load indices)."""
    for field in ("a", "b", "value", "condition", "true_value", "false_value"):
        child = getattr(expr, field, None)
        if child is not None and not isinstance(child, (int, float)):
            yield child
    for field in ("args", "indices"):
        yield from getattr(expr, field, ())
