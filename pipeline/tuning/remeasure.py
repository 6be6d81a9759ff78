"""Measure a database's best records again with today's code generation.

A record's time is what its kernel took when it was tuned. When code generation changes under
records (the vectorized exp made every SiLU kernel faster), old records keep their old, slower
times, and a new trial that beats them on paper can be slower than they are now: tuning yolov8n
on after the exp change replaced its 80x80 80->80 conv (4.6 ms in the model with the old record)
with one measured at 6.7 ms. Re-measuring each task's best few records appends them with their
times today (a database keeps every record and compile takes each task's fastest), so old and new
schedules compete on equal terms. Nothing is removed.

The same measuring starts a database for a new ISA level from one tuned on another (``source``):
the tasks of an fp32 graph are the same on x86-avx2 and x86-avx512-vnni, so the AVX2 database's
best schedules, measured on the wider target, give its tune a warm start instead of naive code.
Only the schedules travel; every time in the new database is measured on its own target.

``this_cpu`` seeds the same way the database of one CPU model (database.py: ``cpus/<cpu>/``)
from its preset's database: the preset database's best schedules, timed on this CPU.
"""

import sys
from dataclasses import dataclass

from .. import targets
from ..build import import_model
from ..models import load_model
from .builder import local_builder
from .database import (TuningDatabaseError, cpu_database_dir, cpu_model, database_dir, open_database,
                       open_for_tuning, read_meta)
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
              input_size: int | None = None, batch: int = 1, only: tuple = (), source: str | None = None,
              source_root=None, this_cpu: bool = False) -> RemeasureReport:
    """Append each task's ``top`` best records, measured again on this machine, to the database;
    with ``only``, just the tasks whose names contain one of those strings (a deep re-measure of a
    few tasks costs minutes, of all of them hours).

    With ``source`` (a preset of the same kind), the records are those of the model's database for
    that preset (under ``source_root``, default ``root``), measured on ``target`` into ``target``'s
    database, created in the source's graph form if missing. Tasks it already holds records for
    are skipped, so an interrupted seeding resumes where it stopped. With ``this_cpu``, the seeded
    database is this CPU model's, beside the preset's, and the records are the preset database's."""
    import tvm

    spec = load_model(model, input_size, variant)
    preset = targets.resolve_preset(target)
    tjson = targets.target_json(preset)
    tvm_target = tvm.target.Target(tjson)
    directory = database_dir(preset.name, model, variant, root)
    if source is not None and this_cpu:
        raise ValueError("a database for this CPU is seeded from its own preset's database, not from another preset")
    if source is None:
        db = origin = open_database(directory, tjson)
        if db is None:
            raise FileNotFoundError(f"no tuning database for {model} {variant} on {preset.name}"
                                    f"{' to refine on this CPU: tune one first' if this_cpu else ''}")
        if this_cpu:
            db = _seeded_database(cpu_database_dir(directory), tjson, origin, model, variant, preset)
            db.save_meta(cpu=cpu_model())
    else:
        origin = _source_database(source, preset, spec, source_root or root)
        db = _seeded_database(directory, tjson, origin, model, variant, preset)
    database = db.open()
    records_from = origin.open() if origin is not db else database
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
            mod = task.dispatched[0]
            workload = database.commit_workload(mod)
            if origin is not db and list(database.get_top_k(workload, 1)):
                continue  # seeded before
            if records_from is not database and not records_from.has_workload(mod):
                continue  # committing it would append to the seed's committed files
            records = list(records_from.get_top_k(records_from.commit_workload(mod), top))
            if not records:
                continue
            now = _measure(records, workload, tvm_target, preset.device, builder, measure.runner, database)
            results.append(Remeasured(task.task_name, [_ms(r.run_secs) for r in records], now))
            print(f"[remeasure] {n + 1}/{len(tasks)} {task.task_name[:48]}: "
                  f"{' '.join(_fmt(r) for r in results[-1].recorded_ms)} ms recorded"
                  f"{f' on {source}' if source else ''}{' on the preset' if this_cpu else ''} -> "
                  f"{' '.join(_fmt(r) for r in now)} ms now",
                  file=sys.stderr, flush=True)
            # not trials: tune counts records as trials spent only beyond these
            db.save_meta(remeasured_records=db.meta.get("remeasured_records", 0) + sum(t is not None for t in now))
    return RemeasureReport(results, bool(interrupted))


def _source_database(source: str, preset, spec, root):
    """The database of the model tuned for the preset ``source``, whose schedules may seed ``preset``'s."""
    model, variant = spec.name, spec.variant
    origin_preset = targets.resolve_preset(source)
    if origin_preset.name == preset.name or origin_preset.target["kind"] != preset.target["kind"]:
        raise ValueError(f"a {preset.name} database can be seeded from another preset of the same kind "
                         f"({preset.target['kind']}), not from {origin_preset.name}")
    directory = database_dir(origin_preset.name, model, variant, root)
    meta = read_meta(directory)
    if meta is None:
        raise FileNotFoundError(f"no tuning database for {model} {variant} on {origin_preset.name} to seed from "
                                f"({directory})")
    origin = open_database(directory, meta["target"])
    kernel = origin.graph_form.int8_kernel
    if spec.qdq_onnx and kernel != preset.int8_kernel:  # fp32 graphs have no int8 convs
        raise ValueError(f"the {origin_preset.name} records tensorize int8 convs with {kernel}; {preset.name} "
                         f"uses {preset.int8_kernel}, so they cannot seed its database")
    return origin


def _seeded_database(directory, tjson: dict, origin, model: str, variant: str, preset):
    """``preset``'s database in the graph form of ``origin`` (its records match no other form)."""
    db = open_for_tuning(directory, tjson, model, variant, preset.name, **origin.graph_form.as_meta())
    if db.graph_form != origin.graph_form:
        raise TuningDatabaseError(f"{directory} holds another graph form ({db.graph_form}) than the "
                                  f"{origin.meta.get('preset')} database ({origin.graph_form}): it cannot be seeded "
                                  f"from it")
    db.save_meta(seeded_from=origin.meta.get("preset"))
    return db


def _selected(tasks: list, only: tuple) -> list:
    """The tasks named (by a part of their name) in ``only``, all of them when it is empty."""
    unmatched = [part for part in only if not any(part in task.task_name for task in tasks)]
    if unmatched:
        raise ValueError(f"no task matches {', '.join(unmatched)}; the tasks are: "
                         f"{', '.join(task.task_name for task in tasks)}")
    return [task for task in tasks if not only or any(part in task.task_name for part in only)]


def _measure(records, workload, target, device: str, builder, runner, database) -> list:
    """Build and run each record's schedule of ``workload`` (``database``'s, whatever database the
    records came from); commit those that ran, with today's times."""
    from tvm.s_tir import Schedule
    from tvm.s_tir import meta_schedule as ms

    schedules = []
    for record in records:
        sch = Schedule(workload.mod)
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
            record.trace, workload, run.run_secs, target, record.args_info))
        now.append(_ms(run.run_secs))
    return now


def _ms(run_secs) -> float | None:
    secs = mean_seconds(run_secs)
    return 1e3 * secs if secs is not None else None


def _fmt(ms: float | None) -> str:
    return f"{ms:.3f}" if ms is not None else "failed"
