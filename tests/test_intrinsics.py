"""A tuning process registers its target's tensor intrinsics only (a minute of CPU saved), and
the design spaces that name them still tensorize."""

import os
import subprocess
import sys

import pytest

from pipeline.errors import UnknownTargetError
from pipeline.tuning import intrinsics

from .conftest import REPO

# In a fresh process: an x86 VNNI target's design space for an int8 matmul, built the way
# `tune` builds contexts. The stock rules for VNNI name `dot_16x4_vnni` (x86.py).
PROBE = """
import sys
import tvm
from tvm.script import tirx as T
from pipeline.tuning.intrinsics import register_for
from tvm.s_tir import meta_schedule as ms

@T.prim_func(s_tir=True)
def matmul(A: T.Buffer((64, 64), "uint8"), B: T.Buffer((64, 64), "int8"), C: T.Buffer((64, 64), "int32")):
    for i, j, k in T.grid(64, 64, 64):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                C[vi, vj] = 0
            C[vi, vj] = C[vi, vj] + T.Cast("int32", A[vi, vk]) * T.Cast("int32", B[vj, vk])

register_for("llvm")
target = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake", "num-cores": 2})
context = ms.TuneContext(mod=tvm.IRModule({"main": matmul.with_attr("global_symbol", "main")}), target=target,
                         space_generator="post-order-apply", search_strategy="evolutionary")
traces = [str(s.trace) for s in context.generate_design_space()]
print("vnni" if any("dot_16x4_vnni" in t for t in traces) else "no-vnni",
      "cuda-loaded" if "tvm.s_tir.tensor_intrin.cuda" in sys.modules else "cuda-absent")
"""


def test_a_cpu_tuning_process_registers_cpu_intrinsics_only_and_they_still_tensorize(tmp_path):
    probe = tmp_path / "probe.py"  # a file: TVMScript parses the function's source
    probe.write_text(PROBE)
    out = subprocess.run([sys.executable, str(probe)], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["vnni", "cuda-absent"]


def test_an_unknown_target_kind_is_a_clear_error():
    with pytest.raises(UnknownTargetError, match="no tensor intrinsics known for target kind 'rocm'"):
        intrinsics.register_for("rocm")
