"""TVM's CPU thread pool is sized to the machine, not to TVM's hyper-threading guess."""

import os
import subprocess
import sys

from .conftest import REPO


def _pool_size(code, env):
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_importing_pipeline_gives_tvm_every_cpu():
    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    code = "import pipeline, tvm; print(tvm.get_global_func('runtime.NumThreads')())"
    assert _pool_size(code, env) == len(os.sched_getaffinity(0))


def test_a_user_set_tvm_num_threads_is_kept():
    env = {**os.environ, "TVM_NUM_THREADS": "1"}
    code = "import pipeline, tvm; print(tvm.get_global_func('runtime.NumThreads')())"
    assert _pool_size(code, env) == 1
