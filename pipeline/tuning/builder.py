"""A MetaSchedule build function that skips the per-worker ``tensor_intrin`` import.

The stock builder imports ``tvm.s_tir.tensor_intrin`` in every worker (about a minute of CPU
here, mostly its CUDA half) with a 30 s default timeout, so every build times out. By the time a
candidate reaches the builder, tensorization has already been applied in the tuning process, so
the build itself needs no intrinsic registry.
"""


def build_candidate(mod, target, _params):
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def local_builder(timeout_sec: float = 300.0, max_workers: int | None = None):
    from tvm.s_tir import meta_schedule as ms

    return ms.builder.LocalBuilder(f_build=build_candidate, timeout_sec=timeout_sec, max_workers=max_workers)
