"""ScalarOperandsAsTensors: arithmetic with different scalar constants compiles to one shared
kernel, and the same numbers come out."""

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from pipeline.passes.scalar_operands_as_tensors import scalar_operands_as_tensors  # noqa: E402
from pipeline.tuning.tasks import extract_tasks  # noqa: E402

from .test_pad_through_permute import run  # noqa: E402

SHAPE = (1, 8, 6, 6)


def two_requantizes():
    """round(x / s + z) twice, with different s and z, on two inputs of one shape."""
    bb = relax.BlockBuilder()
    x, y = (relax.Var(name, relax.TensorType(SHAPE, "float32")) for name in "xy")
    with bb.function("main", [x, y]):
        with bb.dataflow():
            outs = []
            for data, scale, zero in ((x, 0.05, 3.0), (y, 0.02, 9.0)):
                scaled = bb.emit(relax.op.divide(data, relax.const(scale, "float32")))
                outs.append(bb.emit(relax.op.round(relax.op.add(scaled, relax.const(zero, "float32")))))
            out = bb.emit_output(relax.Tuple(outs))
        bb.emit_func_output(out)
    return bb.get()


def test_layers_differing_only_in_constants_share_one_task():
    target = tvm.target.Target({"kind": "llvm"})
    mod = two_requantizes()
    assert sorted(t.weight for t in extract_tasks(mod, target)) == [1, 1]
    [shared] = extract_tasks(scalar_operands_as_tensors(mod), target)
    assert shared.weight == 2


def test_the_same_numbers_come_out():
    mod = two_requantizes()
    rng = np.random.default_rng(1)
    x, y = rng.random(SHAPE, dtype=np.float32), rng.random(SHAPE, dtype=np.float32)
    compiled = [relax.VirtualMachine(tvm.compile(m, target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
                for m in (mod, scalar_operands_as_tensors(mod))]
    outputs = [vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(y)) for vm in compiled]
    for before, after in zip(*outputs):
        np.testing.assert_array_equal(after.numpy(), before.numpy())
