"""Tuning tasks of a Relax module, and how much of them a database covers."""

from dataclasses import dataclass


def fuse_for_tuning(mod, target):
    """The preparation ``compile_relax`` applies before it looks records up (dispatch, legalize,
    fold, fuse): tasks extracted from anything else would never match at compile time."""
    import tvm
    from tvm import relax
    from tvm.relax import pipeline as relax_pipeline

    passes = [*relax_pipeline.library_dispatch_passes(target), relax.transform.LegalizeOps(),
              relax.transform.AnnotateTIROpPattern(), relax.transform.FoldConstant(), relax.transform.FuseOps(),
              relax.transform.FuseTIR()]
    with target:
        return tvm.transform.Sequential(passes)(mod)


def extract_tasks(mod, target) -> list:
    from tvm.s_tir import meta_schedule as ms

    return ms.relax_integration.extract_tasks(fuse_for_tuning(mod, target), target)


def task_flops(task) -> float:
    from tvm.s_tir.analysis import estimate_tir_flops

    return float(estimate_tir_flops(task.dispatched[0])) * task.weight


@dataclass
class Coverage:
    tasks: int
    tuned_tasks: int
    flops: float
    tuned_flops: float
    untuned: list  # names of tasks that fall back to default schedules

    def summary(self) -> str:
        pct = 100 * self.tuned_flops / self.flops if self.flops else 100.0
        return (f"tuned records cover {self.tuned_tasks}/{self.tasks} tasks and {pct:.1f}% of "
                f"{self.flops / 1e9:.2f} GFLOP; {len(self.untuned)} task(s) use default schedules")


def coverage(tasks, database, target) -> Coverage:
    tuned_flops = flops = 0.0
    tuned, untuned = 0, []
    for task in tasks:
        f = task_flops(task)
        flops += f
        if database is not None and database.query_tuning_record(task.dispatched[0], target, "main") is not None:
            tuned += 1
            tuned_flops += f
        else:
            untuned.append(task.task_name)
    return Coverage(len(tasks), tuned, flops, tuned_flops, untuned)
