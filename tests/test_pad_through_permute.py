"""PadThroughPermute: a pad wrapped in a transpose and its inverse pads the source directly,
with the same numbers; other transposes stay."""

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from pipeline.passes.pad_through_permute import pad_through_permute  # noqa: E402

from .test_per_tensor_qdq_as_arithmetic import calls  # noqa: E402

NHWC = (1, 5, 6, 4)


def wrapped_pad(outer_axes):
    """x (NHWC) -> NCHW -> pad H by (1, 2), W by (0, 3) with 7 -> permuted by ``outer_axes``."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(NHWC, "uint8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            nchw = bb.emit(relax.op.permute_dims(x, [0, 3, 1, 2]))
            padded = bb.emit(relax.op.nn.pad(nchw, [0, 0, 0, 0, 1, 2, 0, 3], "constant", 7.0))
            out = bb.emit_output(relax.op.permute_dims(padded, outer_axes))
        bb.emit_func_output(out)
    return bb.get()


def run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_the_pad_moves_onto_the_source_and_the_transposes_go():
    mod = wrapped_pad([0, 2, 3, 1])
    rewritten = pad_through_permute(mod)
    assert calls(rewritten, "relax.permute_dims") == []
    [pad] = calls(rewritten, "relax.nn.pad")
    assert [int(w) for w in pad.attrs.pad_width] == [0, 0, 1, 2, 0, 3, 0, 0]
    x = np.random.default_rng(0).integers(0, 255, NHWC).astype("uint8")
    want = np.pad(x, [(0, 0), (1, 2), (0, 3), (0, 0)], constant_values=7)
    np.testing.assert_array_equal(run(rewritten, x), want)
    np.testing.assert_array_equal(run(mod, x), want)


def test_transposes_that_do_not_cancel_stay():
    mod = wrapped_pad([0, 3, 2, 1])
    rewritten = pad_through_permute(mod)
    assert len(calls(rewritten, "relax.permute_dims")) == 2
    assert len(calls(rewritten, "relax.nn.pad")) == 1
