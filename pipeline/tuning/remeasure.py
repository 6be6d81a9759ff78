"""Measure a database's best records again with today's code generation.

A record's time is what its kernel took when it was tuned. When code generation changes under
records (the vectorized exp made every SiLU kernel faster), old records keep their old, slower
times, and a new trial that beats them on paper can be slower than they are now: tuning yolov8n
on after the exp change replaced its 80x80 80->80 conv (4.6 ms in the model with the old record)
with one measured at 6.7 ms. Re-measuring each task's best few records appends them with their
times today (a database keeps every record and compile takes each task's fastest), so old and new
schedules compete on equal terms. Nothing is removed.
"""

import sys
from dataclasses import dataclass

from .. import targets
from ..build import import_model
from ..models import load_model
from .builder import local_builder
from .database import database_dir, open_database
from .measure import mean_seconds, measurement
from .progress import deferring_interrupt
from .tasks import extract_tasks


@dataclass
class Remeasured:
    task: str
    recorded_ms: list  # the best records' times as stored, best first
    now_ms: list  # the same records measured now (None: failed to build or run)

    @property
    def faster(self) -> bool:
        """Whether one of them now runs faster than the best record said."""
        now = [t for t in self.now_ms if t is not None]
        return bool(now and self.recorded_ms) and min(now) < self.recorded_ms[0]


@dataclass
class RemeasureReport:
    tasks: list  # Remeasured, one per task measured
    interrupted: bool = False  # stopped by Ctrl-C before the last task


def remeasure(model: str, target: str = "x86", variant: str = "fp32", top: int = 4, root=None,
              input_size: int | None = None, batch: int = 1, only: tuple = ()) -> RemeasureReport:
    """Append each task's ``top`` best records, measured again on this machine, to the database;
    with ``only``, just the tasks whose names contain one of those strings (a deep re-measure of a
    few tasks costs minutes, of all of them hours)."""
    import tvm

    spec = load_model(model, input_size, variant)
    preset = targets.resolve_preset(target)
    tjson = targets.target_json(preset)
    tvm_target = tvm.target.Target(tjson)
    db = open_database(database_dir(preset.name, model, variant, root), tjson)
    if db is None:
        raise FileNotFoundError(f"no tuning database for {model} {variant} on {preset.name}")
    database = db.open()
    tasks = _selected(extract_tasks(import_model(spec, batch), tvm_target, db.graph_form), only)
    builder = local_builder(cross_compiler=preset.cross_compiler)
    results, interrupted = [], []

    def first_interrupt():
        interrupted.append(True)
        print("[remeasure] interrupt: stopping after this task (interrupt again to abort now)", file=sys.stderr,
              flush=True)

    with measurement(preset) as measure, deferring_interrupt(first_interrupt):
        for n, task in enumerate(tasks):
            if interrupted:
                break
            records = list(database.get_top_k(database.commit_workload(task.dispatched[0]), top))
            if not records:
                continue
            now = _measure(records, task.dispatched[0], tvm_target, preset.device, builder, measure.runner,
                           database)
            results.append(Remeasured(task.task_name, [_ms(r.run_secs) for r in records], now))
            print(f"[remeasure] {n + 1}/{len(tasks)} {task.task_name[:48]}: "
                  f"{' '.join(_fmt(r) for r in results[-1].recorded_ms)} ms recorded -> "
                  f"{' '.join(_fmt(r) for r in now)} ms now", file=sys.stderr, flush=True)
            # not trials: tune counts records as trials spent only beyond these
            db.save_meta(remeasured_records=db.meta.get("remeasured_records", 0) + sum(t is not None for t in now))
    return RemeasureReport(results, bool(interrupted))


def _selected(tasks: list, only: tuple) -> list:
    """The tasks named (by a part of their name) in ``only``, all of them when it is empty."""
    unmatched = [part for part in only if not any(part in task.task_name for task in tasks)]
    if unmatched:
        raise ValueError(f"no task matches {', '.join(unmatched)}; the tasks are: "
                         f"{', '.join(task.task_name for task in tasks)}")
    return [task for task in tasks if not only or any(part in task.task_name for part in only)]


def _measure(records, mod, target, device: str, builder, runner, database) -> list:
    """Build and run each record's schedule of ``mod``; commit those that ran, with today's times."""
    from tvm.s_tir import Schedule
    from tvm.s_tir import meta_schedule as ms

    schedules = []
    for record in records:
        sch = Schedule(mod)
        record.trace.apply_to_schedule(sch, remove_postproc=False)
        schedules.append(sch)
    built = builder.build([ms.builder.BuilderInput(sch.mod, target) for sch in schedules])
    now = []
    for record, result in zip(records, built):
        if result.error_msg:
            now.append(None)
            continue
        run = runner.run([ms.runner.RunnerInput(result.artifact_path, device, record.args_info)])[0].result()
        if run.error_msg:
            now.append(None)
            continue
        database.commit_tuning_record(ms.database.TuningRecord(
            record.trace, record.workload, run.run_secs, target, record.args_info))
        now.append(_ms(run.run_secs))
    return now


def _ms(run_secs) -> float | None:
    secs = mean_seconds(run_secs)
    return 1e3 * secs if secs is not None else None


def _fmt(ms: float | None) -> str:
    return f"{ms:.3f}" if ms is not None else "failed"
