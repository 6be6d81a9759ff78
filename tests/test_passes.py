"""Our Relax passes: each keeps the numbers and does what it is for."""

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402
from tvm.relax import transform as T  # noqa: E402

from pipeline.passes.leaky_relu_as_maximum import leaky_relu_as_maximum  # noqa: E402


def conv_leaky_module(alpha: float):
    """conv2d -> leakyrelu -> max_pool2d in NCHW, the block yolov3-tiny repeats."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 12, 12), "float32"))
    rng = np.random.default_rng(0)
    weight = relax.const(rng.standard_normal((16, 8, 3, 3)).astype("float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, weight, padding=1))
            y = bb.emit(relax.op.nn.leakyrelu(y, alpha))
            out = bb.emit_output(relax.op.nn.max_pool2d(y, pool_size=2, strides=2))
        bb.emit_func_output(out)
    return bb.get()


def ops_in(mod) -> list:
    names = []
    relax.analysis.post_order_visit(mod["main"], lambda e: isinstance(e, relax.Call) and isinstance(
        e.op, tvm.ir.Op) and names.append(e.op.name))
    return names


def run(mod, x):
    target = tvm.target.Target({"kind": "llvm"})
    vm = relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_leaky_relu_becomes_maximum_with_the_same_values():
    mod = conv_leaky_module(0.1)
    rewritten = leaky_relu_as_maximum(mod)
    assert "relax.nn.leakyrelu" not in ops_in(rewritten)
    assert {"relax.maximum", "relax.multiply"} <= set(ops_in(rewritten))
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 12)).astype("float32")
    np.testing.assert_allclose(run(rewritten, x), run(mod, x), rtol=1e-6, atol=1e-6)


def test_a_slope_above_one_is_left_alone():
    # maximum(x, a*x) is leaky relu only for 0 <= a <= 1
    assert "relax.nn.leakyrelu" in ops_in(leaky_relu_as_maximum(conv_leaky_module(1.5)))


def test_channels_last_graph_keeps_no_transpose_between_conv_and_pool():
    layout = {"relax.nn.conv2d": ["NHWC", "OHWI"]}
    plain = T.ConvertLayout(layout)(conv_leaky_module(0.1))
    rewritten = T.ConvertLayout(layout)(leaky_relu_as_maximum(conv_leaky_module(0.1)))
    # without the pass: input, weight, back to NCHW before leakyrelu; with it: input, weight, output
    assert ops_in(plain).count("relax.permute_dims") == 3
    pool = [c for c in rewritten["main"].body.blocks[0].bindings if "max_pool2d" in str(c.value.op)]
    assert pool and pool[0].value.attrs.layout == "NHWC"
