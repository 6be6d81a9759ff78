"""The float32 exp lowering for CPU targets: accurate, vectorized, and used by every build path."""

import subprocess
import sys

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import te  # noqa: E402

from pipeline.passes import polynomial_exp  # noqa: E402

TARGET = {"kind": "llvm", "mcpu": "x86-64-v3"}


def _exp_kernel(n: int, lanes: int, dtype: str = "float32"):
    """A compiled ``B = exp(A)`` over n numbers, its loop vectorized by ``lanes`` (1: scalar)."""
    a = te.placeholder((n,), dtype, name="A")
    b = te.compute(a.shape, lambda i: te.exp(a[i]), name="B")
    sch = tvm.s_tir.Schedule(te.create_prim_func([a, b]))
    if lanes > 1:
        _, inner = sch.split(sch.get_loops(sch.get_sblock("B"))[0], [None, lanes])
        sch.vectorize(inner)
    return tvm.compile(sch.mod, target=tvm.target.Target(TARGET))


@pytest.mark.parametrize("lanes", [1, 8])
def test_exp_is_within_one_ulp_and_saturates_outside_the_normal_range(lanes):
    polynomial_exp.register()
    x = np.concatenate([np.linspace(-87.33, 88.37, 200_000, dtype=np.float32),
                        np.float32([0.0, -0.0, 1e-8, -1e-8, 100.0, -100.0, -1e4, 1e4])])
    x = np.pad(x, (0, -len(x) % 8))
    out = tvm.runtime.tensor(np.empty_like(x))
    _exp_kernel(len(x), lanes)(tvm.runtime.tensor(x), out)
    got = out.numpy()
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
    inside = (x >= -87.33) & (x <= 88.37)
    ulps = np.abs(got[inside] - exact[inside]) / np.spacing(exact[inside].astype(np.float32))
    assert ulps.max() <= 1.0
    assert got[x == 0].tolist() == [1.0, 1.0]
    assert np.all(got[x >= 100] == got[x == np.float32(88.37)])  # saturated, finite
    assert np.all((got[x <= -100] > 0) & (got[x <= -100] < 1.2e-38))


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_other_float_widths_keep_tvm_own_lowering(dtype):
    polynomial_exp.register()
    x = np.linspace(-5, 5, 64).astype(dtype)
    out = tvm.runtime.tensor(np.empty_like(x))
    _exp_kernel(len(x), 8, dtype)(tvm.runtime.tensor(x), out)
    np.testing.assert_allclose(out.numpy(), np.exp(x), rtol=1e-3 if dtype == "float16" else 1e-15)


def test_tuning_candidates_call_no_libm_exp():
    """In a fresh process (one that only imported TVM still calls ``expf``): the tuning builder
    installs the rule, so candidates are measured as ``compile_spec`` builds them (its libraries
    are checked in test_committed_schedules)."""
    script = """
import tvm
from tvm import te
a = te.placeholder((64,), "float32", name="A")
mod = tvm.IRModule({"main": te.create_prim_func([a, te.compute(a.shape, lambda i: te.sigmoid(a[i]), name="B")])})
target = tvm.target.Target(%r)
def calls_expf(built=None):  # tvm.compile gives an Executable, the builder a runtime Module
    built = built or tvm.compile(mod, target=target).mod
    return "expf" in built.inspect_source("asm")
assert calls_expf(), "stock TVM lowering changed: it no longer calls expf"
from pipeline.tuning.builder import build_candidate
assert not calls_expf(build_candidate(mod, target, None))
assert not calls_expf()  # and it stays installed
print("ok")
""" % (TARGET,)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
