"""Tune a model for a target with MetaSchedule (evolutionary search, XGBoost cost model,
gradient task scheduler), appending to its committed database and resuming where it stopped."""

import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass

from .. import targets
from ..build import import_model
from ..models import load_model
from .builder import local_builder
from .database import TuningDatabaseError, cpu_database_dir, cpu_model, database_dir, open_for_tuning
from .int8_dot import space_generator
from .intrinsics import register_for as register_intrinsics_for
from .measure import mean_seconds, measurement
from .tasks import LATEST_INT8_REVISION, GraphForm, coverage, extract_tasks, task_flops


@dataclass
class TuneReport:
    database: str
    tasks: int
    trials_before: int
    trials_run: int
    seconds: float
    coverage: str
    per_task: list  # (name, gflop, trials this run, best ms this run)
    device_lost: bool = False  # the remote device stopped answering; re-run to resume
    interrupted: bool = False  # stopped by Ctrl-C; re-run to resume

    def table(self) -> str:
        lines = [f"{'task':<48} {'GFLOP':>7} {'trials':>6} {'best ms':>9} {'GFLOP/s':>8}"]
        for name, gflop, trials, best in self.per_task:
            rate = f"{gflop / best * 1e3:8.1f}" if best else "       -"
            best_text = f"{best:9.3f}" if best else "        -"
            lines.append(f"{name[:48]:<48} {gflop:7.3f} {trials:>6} {best_text} {rate}")
        return "\n".join(lines)


def emulated_schedules():
    """Where emulated tunes keep their databases: the cache, never the committed schedules/."""
    from ..assets import cache_dir

    return cache_dir() / "emulated-schedules"


# Candidates the evolutionary search keeps per generation (upstream's default). Each search
# iteration scores them all with the cost model: smaller is quicker per trial and searches less.
POPULATION = 512
# Candidates measured per search iteration: the least trials any task gets.
TRIALS_PER_ITER = 16


def tune_contexts(tasks, seed: int, form: GraphForm = GraphForm(), population: int = POPULATION) -> list:
    """One TuneContext per extracted task, logging to plain ``slimdet.tune.<task>`` loggers, its
    design space the target's own, with the form's int8 kernel tried first where it applies.

    Only the target's own tensor intrinsics are registered (intrinsics.py: a minute saved per
    tuning process). Upstream's ``extracted_tasks_to_tune_contexts`` re-runs
    ``logging.config.dictConfig`` with every handler already on MetaSchedule's logger, listed by
    name: an unnamed one (pytest's, a user's) makes it fail. It also searches with physical cores
    only (1 on 2 vCPUs).
    """
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.utils import fork_seed

    for kind in {task.target.kind.name for task in tasks}:
        register_intrinsics_for(kind)
    search_threads = len(os.sched_getaffinity(0))
    space = space_generator(form.int8_kernel) if form.int8_kernel else "post-order-apply"
    return [ms.TuneContext(mod=task.dispatched[0], target=task.target, space_generator=space,
                           search_strategy=ms.search_strategy.EvolutionarySearch(population_size=population),
                           task_name=task.task_name,
                           logger=logging.getLogger(f"slimdet.tune.{task.task_name}"), rand_state=rand_state,
                           num_threads=search_threads).clone()
            for task, rand_state in zip(tasks, fork_seed(seed, n=len(tasks)))]


def default_trials_per_task(remaining: int, n_tasks: int, per_iter: int) -> int:
    # A global budget alone lets the gradient scheduler starve small tasks, and an untuned CPU
    # task stays naive: cap each task so the budget spreads over all of them.
    return max(per_iter, math.ceil(2 * remaining / max(1, n_tasks)))


# MetaSchedule's gradient scheduler first visits every task once and only then collects (and
# saves) any measurement: on the H100 one visit took ~45 s, so yolov3-tiny's 21 tasks wrote nothing
# for 16 minutes, and yolov8n's 61 CPU tasks would write nothing for about an hour. Tuning the
# tasks in waves of a few (largest first) saves records, and checks the time budget, after each wave.
TASKS_PER_WAVE = 4


@dataclass
class Wave:
    tasks: list  # indices into the tune's task list
    covering: bool  # tasks with no record yet, one search iteration each
    share: float = 0.0  # a refining wave's part of the trials left at its turn


def _chunks(indices: list, size: int, covering: bool) -> list:
    return [Wave(indices[i:i + size], covering) for i in range(0, len(indices), size)]


def covering_waves(names: list, untuned: set, size: int) -> list:
    """The tasks with no record, in the given order (largest first), one search iteration each: an
    untuned CPU task runs naive code, tens of times slower. A time budget that ends a tune early
    so leaves no task naive that it could have covered: spent largest first, yolov8n's first 2086
    trials left 42 of 62 tasks untuned (the model at 0.1x eager), and yolov3-tiny pruned52-int8's
    first 632 left 16 of 24."""
    return _chunks([i for i, name in enumerate(names) if name in untuned], size, True)


def refining_waves(seconds: list, size: int) -> list:
    """Every task, the most time first (its best kernel's time x its calls per run), each wave
    taking its share of the trials left by time. Shared by FLOPs instead, yolov8n's 2698 trials
    gave 16 to each of its slowest-per-FLOP convs (160x160 16->16 3x3 at 17 GFLOP/s, 640x640 3->16
    at 6) and ~200 to big convs already at 90-120."""
    waves = _chunks(sorted(range(len(seconds)), key=lambda i: -seconds[i]), size, False)
    left = sum(seconds) or 1.0
    for wave in waves:
        wave_seconds = sum(seconds[i] for i in wave.tasks)
        wave.share = wave_seconds / left if left > 0 else 1.0
        left -= wave_seconds
    return waves


def recorded_seconds(tasks: list, database, target) -> list:
    """Each task's time per run by its best record; a task without one is costed at the recorded
    tasks' time per FLOP."""
    best = []
    for task in tasks:
        record = database.query_tuning_record(task.dispatched[0], target, "main")
        secs = mean_seconds(record.run_secs) if record is not None else None
        best.append(secs * task.weight if secs is not None else None)
    measured = [(s, task_flops(t)) for s, t in zip(best, tasks) if s is not None]
    per_flop = sum(s for s, _ in measured) / (sum(f for _, f in measured) or 1.0) if measured else 1e-9
    return [s if s is not None else task_flops(t) * per_flop for s, t in zip(best, tasks)]


def wave_budget(left: int, wave: Wave, trials_per_iter: int) -> int:
    """A covering wave: one search iteration per task. A refining one: its share of the trials
    left, and at least one iteration per task."""
    least = min(left, trials_per_iter * len(wave.tasks))
    if wave.covering:
        return least
    return min(left, max(math.ceil(left * wave.share), least))


# Records per task that seed a CPU model's database from its preset's: the best few schedules
# timed on one CPU are not ranked the same on another (L1 48 KiB and L2 2 MiB on a Xeon, 32 KiB
# and 1 MiB on Zen 4).
CPU_SEED_RECORDS = 4


def _seeded_cpu_database(preset_dir, model, preset: str, variant, root, input_size, batch, rpc_tracker, emulate,
                         conv3x3):
    """This CPU model's database beside the preset's in ``preset_dir``, seeded (or its seeding resumed) from it."""
    from .remeasure import remeasure

    if rpc_tracker or emulate:
        raise ValueError("--this-cpu tunes on this machine's CPU; a remote or emulated device has its own preset")
    if conv3x3:
        raise ValueError("a CPU model's database keeps the graph form of its preset's database; drop --conv3x3")
    remeasure(model, preset, variant, CPU_SEED_RECORDS, root, input_size, batch, this_cpu=True)
    return cpu_database_dir(preset_dir)


def tune(model: str, target: str = "x86", variant: str = "fp32", input_size: int | None = None, batch: int = 1,
         trials: int = 2000, trials_per_task: int | None = None, trials_per_iter: int = TRIALS_PER_ITER,
         time_budget: float | None = None, rpc_tracker: str | None = None, rpc_key: str | None = None,
         emulate: bool = False, root=None, max_tasks: int | None = None, seed: int = 0,
         tasks_per_wave: int = TASKS_PER_WAVE, population: int = POPULATION,
         conv3x3: str | None = None, this_cpu: bool = False) -> TuneReport:
    """Spend up to ``trials`` measured trials in total on this model/variant/target database:
    trials already recorded count against the budget, and the search warm-starts from them.

    Trials run on this machine, on the devices behind ``rpc_tracker`` under ``rpc_key``, or with
    ``emulate`` on the emulated aarch64 device, whose database goes to the cache (``root`` unless
    given), never into ``schedules/``: emulated timings say nothing about an ARM board.

    ``conv3x3``: how a new database computes fp32 3x3 stride-1 convs (tasks.CONV3X3_ALGORITHMS;
    default direct); an existing one keeps its own, and asking it for another is an error.

    ``this_cpu``: tune the database of this host's CPU model beside the preset's (database.py),
    first seeded with the preset database's best records timed here (remeasure.py)."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from .progress import TuningProgress

    spec = load_model(model, input_size, variant)
    preset = targets.resolve_preset(target)
    tjson = targets.target_json(preset)
    tvm_target = tvm.target.Target(tjson)
    directory = database_dir(preset.name, model, variant, root or (emulated_schedules() if emulate else None))
    if this_cpu:
        directory = _seeded_cpu_database(directory, model, preset.name, variant, root, input_size, batch, rpc_tracker,
                                         emulate, conv3x3)
    with measurement(preset, rpc_tracker, rpc_key, emulate) as measure:
        db = open_for_tuning(directory, tjson, model, variant, preset.name)
        # A database keeps the graph form it was started with (its records only match that graph).
        form = db.graph_form if db.record_count or this_cpu else GraphForm(preset.conv_layout, preset.int8_kernel,
                                                                    LATEST_INT8_REVISION, conv3x3 or "direct")
        if conv3x3 and conv3x3 != form.conv3x3:
            raise TuningDatabaseError(f"{db.directory} was tuned with {form.conv3x3} 3x3 convs, not {conv3x3}: "
                                      f"tune {conv3x3} into another schedules root (--schedules)")
        db.save_meta(**form.as_meta())
        tasks = extract_tasks(import_model(spec, batch), tvm_target, form)
        # Largest first: with max_tasks (used by quick CI tunes) the work that matters is kept.
        database = db.open()
        tasks = sorted(tasks, key=task_flops, reverse=True)[:max_tasks]
        # meta lags after a kill -9; records measured again (remeasure.py) are no trials
        spent = max(int(db.meta.get("trials", 0)), db.record_count - int(db.meta.get("remeasured_records", 0)))
        remaining = trials - spent
        report = TuneReport(str(db.directory), len(tasks), spent, 0, 0.0, "", [])
        if remaining <= 0:
            print(f"[tune] {db.directory}: {spent} trials already spent (budget {trials}); nothing to do",
                  file=sys.stderr)
            report.coverage = coverage(tasks, database, tvm_target).summary()
            return report
        per_task = trials_per_task or default_trials_per_task(remaining, len(tasks), trials_per_iter)
        names = [t.task_name for t in tasks]
        deadline = time.monotonic() + time_budget if time_budget else None
        progress = TuningProgress(names, min(remaining, per_task * len(tasks)), deadline)
        print(f"[tune] {model} @ {spec.input_size} b{batch} for {preset.name} ({tjson}), {form.layout} convs"
              f"{f', int8 convs on {form.int8_kernel}' if form.int8_kernel else ''}: "
              f"{len(tasks)} tasks, {remaining} trials to spend (≤ {per_task} per task), {spent} already in "
              f"{db.directory}; measured on {measure.label}", file=sys.stderr, flush=True)
        start, records_before, seconds_before = time.monotonic(), db.record_count, db.meta.get("tuning_seconds", 0)
        sizes = sorted(set(db.meta.get("input_sizes", [])) | {spec.input_size})

        def save_meta():  # after every wave too: a killed tune keeps its count and cost
            db.save_meta(trials=spent + progress.done - progress.lost,
                         tuning_seconds=round(seconds_before + time.monotonic() - start, 1), input_sizes=sizes,
                         batch=batch, measured_on=measure.label, emulated=measure.emulated,
                         cpu=None if measure.remote else cpu_model())

        builder = local_builder(cross_compiler=preset.cross_compiler)
        untuned = set(coverage(tasks, database, tvm_target).untuned)

        def waves():  # refining waves are planned on the times the covering ones recorded
            yield from covering_waves(names, untuned, tasks_per_wave)
            yield from refining_waves(recorded_seconds(tasks, database, tvm_target), tasks_per_wave)

        with progress.stopping_on_interrupt():
            for n, wave in enumerate(waves()):
                left = remaining - (progress.done - progress.lost)
                budget = wave_budget(left, wave, trials_per_iter)
                if budget <= 0 or progress.stop_reason or progress.interrupted or (n and progress.past_deadline()):
                    break
                progress.wave_tasks = wave.tasks
                wave_contexts = [tasks[i] for i in wave.tasks]
                with tempfile.TemporaryDirectory(prefix="slimdet-tune-") as work_dir, progress.catching_stop():
                    ms.tune.tune_tasks(
                        tasks=tune_contexts(wave_contexts, seed + n, form, population),
                        task_weights=[t.weight for t in wave_contexts], work_dir=work_dir,
                        max_trials_global=budget, max_trials_per_task=per_task, num_trials_per_iter=trials_per_iter,
                        builder=builder, runner=measure.runner, database=database, cost_model="xgb",
                        measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), progress],
                        task_scheduler="gradient")
                save_meta()
    seconds = time.monotonic() - start
    if progress.device_lost:
        db.drop_unmeasured_after(records_before)
    save_meta()
    report.trials_run, report.seconds = progress.done - progress.lost, seconds
    report.device_lost, report.interrupted = progress.device_lost, progress.interrupted
    report.coverage = coverage(tasks, db.open(), tvm_target).summary()
    report.per_task = [(name, task_flops(t) / 1e9, progress.trials_by_task.get(i, 0), progress.best_ms.get(i))
                       for i, (name, t) in enumerate(zip(names, tasks))]
    return report
