"""Size TVM's CPU thread pool before TVM first uses it.

TVM builds its pool once, on the first parallel kernel, with ``TVM_NUM_THREADS`` workers, or
when that is unset with half the logical CPUs on x86 (it assumes hyper-threading): one thread
on a 2-vCPU machine. ``runtime.config_threadpool`` can lower the count afterwards but never
raise it. So the pool is sized to every CPU this process may run on, and each user of it picks
its count with ``set_threads``. A ``TVM_NUM_THREADS`` the user exported is respected.

After each call TVM's workers spin (``sched_yield``) before sleeping: by default for about
170 ms of CPU each here, which on a small machine is taken from whatever runs next (ONNX
Runtime ran 2.5x slower beside an idle TVM module). A tenth of that still covers the
microsecond gaps between kernels of one inference, which is what the spinning is for.
"""

# Measured here: 300000 (TVM's default) spins ~170 ms after a call, 30000 ~17 ms.
SPIN_COUNT = "30000"

import os


def size_tvm_thread_pool() -> int:
    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", SPIN_COUNT)
    return int(os.environ["TVM_NUM_THREADS"])


def set_threads(tvm, n: int):
    """Use ``n`` threads for kernels launched from the calling thread (mode 1: big cores)."""
    tvm.get_global_func("runtime.config_threadpool")(1, n)
