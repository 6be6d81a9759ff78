"""A MetaSchedule build function that skips the per-worker ``tensor_intrin`` import.

The stock builder imports ``tvm.s_tir.tensor_intrin`` in every worker (about a minute of CPU
here, mostly its CUDA half) with a 30 s default timeout, so every build times out. By the time a
candidate reaches the builder, tensorization has already been applied in the tuning process, so
the build itself needs no intrinsic registry.
"""


def build_candidate(mod, target, _params):
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    from ..passes import polynomial_exp
    from .tasks import rewrite_kernels

    polynomial_exp.register()  # candidates are measured with the exp and kernels compile builds
    mod = rewrite_kernels(mod, target)

    if target.kind.name == "cuda":
        import tvm.support.nvcc  # noqa: F401  registers the CUDA compile callback in this worker

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def export_cross_linked(mod, compiler: str) -> str:
    """A ready ``.so`` linked here: boards often have no compiler to link upstream's ``.tar``."""
    import os
    import tempfile

    from tvm.support.cc import cross_compiler

    path = os.path.join(tempfile.mkdtemp(prefix="slimdet-candidate-"), "candidate.so")
    mod.export_library(path, fcompile=cross_compiler(compiler))
    return path


def local_builder(timeout_sec: float = 300.0, max_workers: int | None = None, cross_compiler: str | None = None):
    import functools

    from tvm.s_tir import meta_schedule as ms

    f_export = functools.partial(export_cross_linked, compiler=cross_compiler) if cross_compiler else None
    return ms.builder.LocalBuilder(f_build=build_candidate, f_export=f_export, timeout_sec=timeout_sec,
                                   max_workers=max_workers)
