"""The pass that vectorizes concat kernels' channel loops: exact, vector code where every source
boundary is vector-aligned, nothing touched where one is not, and used by both build paths."""

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import te, topi  # noqa: E402

from pipeline.passes.vectorize_concat_axis import vectorize_func  # noqa: E402
from pipeline.tuning.builder import build_candidate  # noqa: E402

TARGET = {"kind": "llvm", "mcpu": "x86-64-v3"}


def _requantize_concat(channels: tuple, vectorized: bool = False):
    """``round(concat(A_i) / scale)`` along NHWC channels, scheduled the way tuned fused int8
    concats reach the pass: a parallel loop over pixels, a serial one over channels choosing the
    source per element (inside the parallel body LLVM cannot vectorize it either); or that loop
    marked vectorized, which TIR's vectorizer scalarizes."""
    inputs = [te.placeholder((1, 4, 4, c), "float32", name=f"A{i}") for i, c in enumerate(channels)]
    scale = te.placeholder((1,), "float32", name="scale")
    joined = topi.concatenate(inputs, axis=3)
    out = te.compute(joined.shape, lambda n, h, w, c: te.round(joined[n, h, w, c] / scale[0]), name="out")
    sch = tvm.s_tir.Schedule(te.create_prim_func([*inputs, scale, out]))
    sch.compute_inline(sch.get_sblock(joined.op.name))
    *pixels, channel = sch.get_loops(sch.get_sblock("out"))
    sch.parallel(sch.fuse(*pixels))
    if vectorized:
        sch.vectorize(channel)
    return sch.mod["main"], channels


def _run(func, channels):
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(1, 4, 4, c)).astype("float32") * 9 for c in channels]
    args += [np.float32([0.7]), np.zeros((1, 4, 4, sum(channels)), "float32")]
    lib = tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target(TARGET))
    tensors = [tvm.runtime.tensor(a) for a in args]
    lib["main"](*tensors)
    return tensors[-1].numpy(), lib.mod.inspect_source("asm")


@pytest.mark.parametrize("vectorized", [False, True])
def test_aligned_concat_gets_a_vector_loop_with_the_same_numbers(vectorized):
    func, channels = _requantize_concat((16, 32, 16), vectorized)
    after = vectorize_func(func)
    assert "T.vectorized(16)" in after.script() and "T.vectorized(16)" not in func.script()
    (want, scalar_asm), (got, vector_asm) = _run(func, channels), _run(after, channels)
    np.testing.assert_array_equal(got, want)
    # each vector reads one source: no scalar division left (LLVM vectorizes some of the original)
    assert "vdivss" in scalar_asm and "vdivss" not in vector_asm and "vdivps" in vector_asm


def test_unaligned_boundaries_and_reductions_are_left_alone():
    func, _ = _requantize_concat((16, 12))  # a boundary at 16, an extent of 28: no 8-lane split
    assert vectorize_func(func).same_as(func)
    a = te.placeholder((4, 64), "float32", name="A")
    k = te.reduce_axis((0, 4), name="k")
    total = te.compute((64,), lambda c: te.sum(a[k, c], axis=k), name="total")
    reduction = te.create_prim_func([a, total])
    assert vectorize_func(reduction).same_as(reduction)


def test_tuning_builder_measures_the_vectorized_kernel():
    func, _ = _requantize_concat((16, 32, 16))
    built = build_candidate(tvm.IRModule({"main": func}), tvm.target.Target(TARGET), None)
    assert "vdivps" in built.inspect_source("asm")
