"""Compute a quantized activation function as a 256-entry table lookup.

In a Q/DQ graph, SiLU between two int8 layers is: the conv's uint8 output, dequantized, through a
sigmoid, quantized, dequantized again, multiplied by the first, quantized: per element an exp and
four float divisions (a requantize divides by its scale), all of it a function of one 8-bit value.
Its epilogue cost more than the convolution on the large maps: 1.24 ns per element on 2 Zen 4
cores, where the lookup that replaces it costs 0.42 (measured on 128x128x16 and 32x32x64 maps).

Each chain of element-wise ops with scalar constants from one 8-bit tensor to an 8-bit result
that contains a transcendental op (sigmoid, exp, tanh) becomes ``table[x]``: the table is the
chain evaluated once, at compile time, on all 256 inputs, with numpy in float32 and the same
ops in the same order as the kernel would run them. Chains of plain arithmetic (requantize,
leaky ReLU as a maximum) stay arithmetic: vector math is as cheap as a lookup there.

The lookup is a PrimFunc of ours marked ``LOOKUP_TABLE``; ``lookup_tables_elementwise`` tells
the fuser what it is, so it fuses into the conv's kernel like the arithmetic it replaces.
"""

import numpy as np
import tvm
from tvm import relax, te, tirx

from .rewrite import constant_value, mutate_functions

LOOKUP_TABLE = "slimdet.lookup_table"  # PrimFunc attribute: (table, x) -> table[x], element-wise in x
EIGHT_BIT = {"uint8": 0, "int8": 128}  # 8-bit dtype -> offset of its smallest value in the table


def _sigmoid(x):
    return np.float32(1) / (np.float32(1) + np.exp(-x))


# numpy twins of the element-wise ops a quantized activation is written with, in float32 as in the kernel
NUMPY_OPS = {"relax.add": np.add, "relax.subtract": np.subtract, "relax.multiply": np.multiply,
             "relax.divide": np.divide, "relax.minimum": np.minimum, "relax.maximum": np.maximum,
             "relax.round": np.rint,  # TVM rounds half to even (nearbyint), as np.rint does
             "relax.negative": np.negative, "relax.sigmoid": _sigmoid, "relax.exp": np.exp, "relax.tanh": np.tanh}
TRANSCENDENTAL = {"relax.sigmoid", "relax.exp", "relax.tanh"}


class _NotUnary(Exception):
    """The chain depends on more than the leaf and scalar constants."""


def _op_name(expr) -> str | None:
    return expr.op.name if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) else None


def _dtype(expr) -> str:
    return str(expr.ty.dtype)


class _Chain:
    """Evaluates a binding's value in numpy as a function of one 8-bit leaf variable."""

    def __init__(self, values: dict, leaf: relax.Var):
        self.values, self.leaf, self.ops = values, leaf, set()
        low = -EIGHT_BIT[_dtype(leaf)]
        self.inputs = np.arange(low, low + 256).astype(_dtype(leaf))

    def evaluate(self, expr):
        if isinstance(expr, relax.Var):
            if expr.same_as(self.leaf):
                return self.inputs
            if expr not in self.values:
                raise _NotUnary
            return self.evaluate(self.values[expr])
        value = constant_value(expr)
        if value is not None:
            if value.size != 1:
                raise _NotUnary  # per-channel constants: not one function for every element
            return value.reshape(())
        name = _op_name(expr)
        if name == "relax.astype":
            return self.evaluate(expr.args[0]).astype(str(expr.attrs.dtype))
        if name not in NUMPY_OPS:
            raise _NotUnary
        self.ops.add(name)
        return NUMPY_OPS[name](*[self.evaluate(a) for a in expr.args])


def _eight_bit_vars(values: dict, expr) -> list:
    """The 8-bit variables ``expr`` reaches through element-wise ops, nearest first."""
    found, frontier = [], [expr]
    while frontier:
        node = frontier.pop(0)
        if isinstance(node, relax.Var):
            if node not in values:
                continue
            if _dtype(node) in EIGHT_BIT and not any(node.same_as(f) for f in found):
                found.append(node)
            node = values[node]
        if _op_name(node) in NUMPY_OPS or _op_name(node) == "relax.astype":
            frontier.extend(node.args)
    return found


def table_for(values: dict, value):
    """(leaf, table) when ``value`` (an 8-bit result) is a transcendental function of one 8-bit
    variable and scalar constants, else None. The leaf reached last (the most work absorbed) wins."""
    if _op_name(value) != "relax.astype" or str(value.attrs.dtype) not in EIGHT_BIT:
        return None
    for leaf in reversed(_eight_bit_vars(values, value.args[0])):
        chain = _Chain(values, leaf)
        try:
            with np.errstate(over="ignore"):  # exp of large arguments saturates, as in the kernel
                table = chain.evaluate(value)
        except _NotUnary:
            continue
        if chain.ops & TRANSCENDENTAL:
            return leaf, np.broadcast_to(table, (256,)).astype(str(value.attrs.dtype))
    return None


def lookup_func(shape, in_dtype: str, out_dtype: str) -> tirx.PrimFunc:
    """out[i] = table[x[i] + offset] for an 8-bit ``x`` of ``shape``."""
    shape = [tirx.IntImm("int64", int(d)) for d in shape]  # Relax's legalized kernels use int64 shapes
    table = te.placeholder((tirx.IntImm("int64", 256),), out_dtype, "table")
    x = te.placeholder(shape, in_dtype, "x")
    offset = EIGHT_BIT[in_dtype]
    out = te.compute(shape, lambda *i: table[x(*i).astype("int64") + offset], name="lookup")
    return te.create_prim_func([table, x, out]).without_attr("global_symbol").with_attr(LOOKUP_TABLE, True)


@relax.expr_functor.mutator
class _AsTables(relax.PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        # the bindings as imported, not ``lookup_binding``'s rewritten ones: a SiLU's inner
        # quantize, already a lookup there, would hide its leaf from the outer chain
        self.values = {}

    def visit_dataflow_block_(self, block):
        for binding in block.bindings:
            if isinstance(binding, relax.VarBinding):
                self.values[binding.var] = binding.value
        return super().visit_dataflow_block_(block)

    def visit_call_(self, call):
        found = table_for(self.values, call)
        if found is None:
            return super().visit_call_(call)
        leaf, table = found
        gvar = self.builder_.add_func(lookup_func(call.ty.shape, _dtype(leaf), _dtype(call)), "lookup_table")
        return relax.call_tir(gvar, [relax.const(table), self.visit_expr(leaf)],
                              relax.TensorType(call.ty.shape, _dtype(call)))


@tvm.transform.module_pass(opt_level=0, name="QuantizedActivationAsTable")
def quantized_activation_as_table(mod, _ctx):
    return mutate_functions(_AsTables(mod), mod)
