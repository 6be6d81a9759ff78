"""Rewrite ``nn.leakyrelu(x, a)`` as ``maximum(x, x * a)`` (exact for 0 <= a <= 1).

Relax's ConvertLayout has no layout rule for leakyrelu, so in a channels-last graph it puts a
transpose back to NCHW before every one, and the max-pool after it stays NCHW too: yolov3-tiny
as NHWC kept 18 transposes per inference (about 4 ms of 50). ``maximum`` and ``multiply`` are
broadcasting element-wise ops that ConvertLayout propagates, after which the whole backbone stays
channels-last and each activation fuses into its conv.
"""

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

LEAKY_RELU = tvm.ir.Op.get("relax.nn.leakyrelu")


@mutator
class _Rewriter(PyExprMutator):
    def visit_call_(self, call):
        call = super().visit_call_(call)
        if call.op != LEAKY_RELU or not 0.0 <= float(call.attrs.alpha) <= 1.0:
            return call
        x = call.args[0]
        slope = relax.const(float(call.attrs.alpha), x.ty.dtype)
        return relax.op.maximum(x, relax.op.multiply(x, slope))


@tvm.transform.module_pass(opt_level=0, name="LeakyReluAsMaximum")
def leaky_relu_as_maximum(mod, _ctx):
    rewriter = _Rewriter(mod)
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
    return rewriter.builder_.get()
