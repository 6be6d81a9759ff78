"""Real MetaSchedule tuning at a tiny scale: one task, a handful of trials."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from pipeline import build, targets
from pipeline.models import load_model
from pipeline.tuning.database import (META_FILE, RECORD_FILE, TuningDatabaseError, applied_database,
                                      cpu_database_dir, cpu_model, cpu_slug, database_dir, open_cpu_database,
                                      open_database)
from pipeline.tuning.progress import format_seconds
from pipeline.tuning.remeasure import remeasure
from pipeline.tuning.tune import covering_waves, refining_waves, tune, wave_budget

from .conftest import REPO

SIZE = 96  # small convs: quick trials
# Two candidates measured per search iteration, from a population of 64 (upstream's 512 costs
# tens of seconds of cost-model scoring per iteration on 2 cores).
QUICK = {"trials_per_iter": 2, "population": 64}


@pytest.fixture(scope="module")
def tuned_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("schedules")
    report = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=4, **QUICK, max_tasks=1, root=root)
    assert report.trials_run >= 1
    return root, report


def test_tiny_tune_writes_a_target_aware_database(tuned_root):
    root, report = tuned_root
    directory = database_dir("x86-avx2", "yolov3-tiny", "fp32", root)
    meta = json.loads((directory / META_FILE).read_text())
    assert meta["target"] == targets.target_json(targets.PRESETS["x86-avx2"])
    assert meta["trials"] == report.trials_run and meta["tuning_seconds"] > 0 and meta["cpu"]
    assert open_database(directory, meta["target"]).record_count >= 1
    assert report.per_task[0][3] is not None  # a best latency was measured


def _library_and_eager_outputs(compiled):
    """(library output, eager PyTorch output) pairs, as numpy, for one random input."""
    import tvm
    from tvm import relax

    x = np.random.default_rng(0).random(compiled.input_shape, dtype=np.float32)
    got = relax.VirtualMachine(compiled.executable, tvm.cpu())["main"](tvm.runtime.tensor(x))
    with torch.no_grad():
        want = compiled.spec.module(torch.from_numpy(x))
    return [(g.numpy(), w.numpy()) for g, w in zip(got, want)]


def test_compile_applies_the_records_and_stays_exact(tuned_root):
    root, _ = tuned_root
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), "x86-avx2", schedules_root=root)
    assert compiled.tuning["tuned_tasks"] == 1 and "1/" in compiled.tuning["coverage"]
    for g, w in _library_and_eager_outputs(compiled):
        assert np.abs(g - w).max() < 1e-3


def test_rerun_resumes_and_counts_recorded_trials_against_the_budget(tuned_root):
    root, first = tuned_root
    done = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=first.trials_run, max_tasks=1, root=root)
    # An unnamed handler on MetaSchedule's logger (pytest adds such) once broke every second tune.
    logging.getLogger("tvm.s_tir.meta_schedule").addHandler(logging.NullHandler())
    assert done.trials_run == 0 and done.trials_before == first.trials_run
    more = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=first.trials_run + 2, **QUICK,
                max_tasks=1, root=root)
    # The search may find no unmeasured candidate left in a tiny task: 0 is allowed, overshoot is not.
    assert more.trials_before == first.trials_run and more.trials_run <= 2
    meta = json.loads((database_dir("x86-avx2", "yolov3-tiny", "fp32", root) / META_FILE).read_text())
    assert meta["trials"] == first.trials_run + more.trials_run


def test_a_winograd_database_tunes_compiles_exactly_and_keeps_its_form(tmp_path):
    report = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=2, **QUICK, max_tasks=1, root=tmp_path,
                  conv3x3="winograd4")
    assert "winograd" in report.per_task[0][0] and report.trials_run >= 1  # the largest conv is 3x3
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), "x86-avx2", schedules_root=tmp_path)
    assert compiled.tuning["conv3x3"] == "winograd4" and compiled.tuning["tuned_tasks"] == 1
    for g, w in _library_and_eager_outputs(compiled):
        assert np.abs(g - w).max() < 1e-4 * np.abs(w).max()
    with pytest.raises(TuningDatabaseError, match="tuned with winograd4 3x3 convs, not direct"):
        tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=4, max_tasks=1, root=tmp_path, conv3x3="direct")


def test_records_are_never_applied_to_another_target(tuned_root):
    root, _ = tuned_root
    directory = database_dir("x86-avx2", "yolov3-tiny", "fp32", root)
    other = targets.target_json(targets.PRESETS["x86-avx2"], num_cores=64)
    with pytest.raises(TuningDatabaseError, match="tuned for target"):
        open_database(directory, other)
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), "x86-avx2", num_cores=64, schedules_root=root)
    assert compiled.tuning["database"] is None and compiled.tuning["reason"].startswith("skipped:")


def _database_copy(tuned_root, tmp_path):
    src = database_dir("x86-avx2", "yolov3-tiny", "fp32", tuned_root[0])
    dst = tmp_path / "db"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst, json.loads((dst / META_FILE).read_text())["target"]


def test_remeasured_records_are_appended_and_are_not_trials(tuned_root, tmp_path):
    """After a code generation change, each task's best records are measured again and appended
    with today's times; a later tune does not count them against its budget."""
    directory, _ = _database_copy(tuned_root, tmp_path)
    root = tmp_path / "root"
    (root / "x86-avx2").mkdir(parents=True)
    directory.rename(database_dir("x86-avx2", "yolov3-tiny", "fp32", root))
    target = targets.target_json(targets.PRESETS["x86-avx2"])
    first = open_database(database_dir("x86-avx2", "yolov3-tiny", "fp32", root), target)
    before, trials = first.record_count, first.meta["trials"]
    [task] = remeasure("yolov3-tiny", "x86-avx2", top=2, root=root, input_size=SIZE).tasks
    assert len(task.now_ms) == len(task.recorded_ms) >= 1 and all(t and t > 0 for t in task.now_ms)
    db = open_database(database_dir("x86-avx2", "yolov3-tiny", "fp32", root), target)
    assert db.record_count == before + len(task.now_ms) and db.meta["remeasured_records"] == len(task.now_ms)
    again = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=trials, max_tasks=1, root=root)
    assert again.trials_run == 0 and again.trials_before == trials


def _wider_host_preset():
    wider = [p.name for p in targets.host_x86_presets() if p.name != "x86-avx2"]
    if not wider:
        pytest.skip("this host runs no x86 preset wider than x86-avx2 to seed")
    return wider[0]


def test_a_database_for_a_wider_preset_is_seeded_from_an_avx2_one(tuned_root, tmp_path):
    """The AVX2 database's best schedules, measured on the wider target, start its database: in the
    AVX2 graph form, every time measured there, none counted as trials; a second seeding skips
    the tasks it holds."""
    root, first = tuned_root
    preset = _wider_host_preset()
    source_dir = database_dir("x86-avx2", "yolov3-tiny", "fp32", root)
    source_files = {f.name: f.read_bytes() for f in source_dir.iterdir()}
    [task] = remeasure("yolov3-tiny", preset, top=2, root=tmp_path, input_size=SIZE, source="x86-avx2",
                       source_root=root).tasks
    # the seed is only read: its tasks without records are not committed into its files
    assert {f.name: f.read_bytes() for f in source_dir.iterdir()} == source_files
    assert all(t and t > 0 for t in task.now_ms) and len(task.now_ms) == len(task.recorded_ms) >= 1
    db = open_database(database_dir(preset, "yolov3-tiny", "fp32", tmp_path),
                       targets.target_json(targets.PRESETS[preset]))
    avx2 = open_database(source_dir, targets.target_json(targets.PRESETS["x86-avx2"]))
    assert db.graph_form == avx2.graph_form and db.meta["seeded_from"] == "x86-avx2"
    assert db.record_count == db.meta["remeasured_records"] == len(task.now_ms)
    assert all(json.loads(line)[1][2]["mcpu"] == targets.PRESETS[preset].target["mcpu"]
               for line in (db.directory / RECORD_FILE).read_text().splitlines())
    again = remeasure("yolov3-tiny", preset, top=2, root=tmp_path, input_size=SIZE, source="x86-avx2",
                      source_root=root)
    assert again.tasks == [] and db.record_count == len(task.now_ms)
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), preset, schedules_root=tmp_path)
    assert compiled.tuning["tuned_tasks"] == 1
    for g, w in _library_and_eager_outputs(compiled):
        assert np.abs(g - w).max() < 1e-3


def _times_claimed(directory, seconds: float):
    """Rewrite every record's measured times in ``directory`` to ``seconds``."""
    path = directory / RECORD_FILE
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        line[1][1] = [seconds] * len(line[1][1])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_cpu_models_database_refines_its_presets_and_outranks_it(tuned_root, tmp_path):
    """``tune --this-cpu`` seeds this CPU model's database with the preset database's best records
    timed here (the preset's files untouched), then tunes on. Compile takes each task's record from
    it even where the preset's database claims faster times, which were timed on another CPU;
    another CPU model's database is not applied."""
    root = tmp_path / "root"
    directory = database_dir("x86-avx2", "yolov3-tiny", "fp32", root)
    shutil.copytree(database_dir("x86-avx2", "yolov3-tiny", "fp32", tuned_root[0]), directory)
    preset_files = {f.name: f.read_bytes() for f in directory.iterdir()}
    report = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=2, **QUICK, max_tasks=1, root=root,
                  this_cpu=True)
    assert report.database == str(cpu_database_dir(directory)) and report.trials_run >= 1
    assert {f.name: f.read_bytes() for f in directory.iterdir() if f.is_file()} == preset_files
    preset_db = open_database(directory, targets.target_json(targets.PRESETS["x86-avx2"]))
    cpu_db = open_cpu_database(preset_db)
    assert cpu_db.meta["cpu"] == cpu_model() and cpu_db.meta["seeded_from"] == "x86-avx2"
    assert cpu_db.meta["trials"] == report.trials_run and cpu_db.meta["remeasured_records"] >= 1
    assert cpu_db.graph_form == preset_db.graph_form

    _times_claimed(directory, 1e-9)  # "measured" on a CPU a million times faster
    import tvm

    [workload] = {r.workload.mod for r in cpu_db.open().get_all_tuning_records()}
    applied = applied_database(preset_db, cpu_db).query_tuning_record(workload, tvm.target.Target(preset_db.target),
                                                                      "main")
    assert min(float(t) for t in applied.run_secs) > 1e-8  # this CPU's record, not the faster claim
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), "x86-avx2", schedules_root=root)
    assert compiled.tuning["cpu_tuned_tasks"] == 1 and compiled.tuning["cpu"] == cpu_model()
    for g, w in _library_and_eager_outputs(compiled):
        assert np.abs(g - w).max() < 1e-3

    cpu_db.directory.rename(cpu_db.directory.with_name(cpu_slug("Another CPU (family 1, model 2)")))
    compiled = build.compile_spec(load_model("yolov3-tiny", SIZE), "x86-avx2", schedules_root=root)
    assert "cpu_database" not in compiled.tuning and compiled.tuning["tuned_tasks"] == 1


def test_a_cpu_models_database_needs_its_presets_and_this_host(tmp_path):
    with pytest.raises(FileNotFoundError, match="tune one first"):
        tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=2, max_tasks=1, root=tmp_path, this_cpu=True)
    with pytest.raises(ValueError, match="this machine's CPU"):
        tune("yolov3-tiny", "arm-aarch64", input_size=SIZE, trials=2, root=tmp_path, emulate=True, this_cpu=True)
    with pytest.raises(ValueError, match="its own preset's database"):
        remeasure("yolov3-tiny", "x86-avx2", root=tmp_path, input_size=SIZE, source="x86-avx2", this_cpu=True)


def test_the_cpu_directory_names_the_model_and_generation():
    assert cpu_slug("Intel(R) Xeon(R) Processor (family 6, model 207)") == "intel-xeon-processor-family-6-model-207"
    assert cpu_slug("AMD EPYC 9R14 96-Core Processor (family 25, model 17)") == \
        "amd-epyc-9r14-96-core-processor-family-25-model-17"


def test_seeding_names_what_it_cannot_seed_from(tuned_root, tmp_path):
    root, _ = tuned_root
    with pytest.raises(ValueError, match="another preset of the same kind"):
        remeasure("yolov3-tiny", "x86-avx2", root=root, input_size=SIZE, source="x86-avx2")
    with pytest.raises(ValueError, match="another preset of the same kind .*not from cuda-sm90"):
        remeasure("yolov3-tiny", "x86-avx2", root=root, input_size=SIZE, source="cuda-sm90")
    with pytest.raises(FileNotFoundError, match="no tuning database for yolov3-tiny fp32 on x86-avx512 to seed"):
        remeasure("yolov3-tiny", "x86-avx2", root=tmp_path, input_size=SIZE, source="x86-avx512")


def test_remeasure_names_a_task_it_cannot_find(tuned_root, tmp_path):
    directory, _ = _database_copy(tuned_root, tmp_path)
    root = tmp_path / "root"
    (root / "x86-avx2").mkdir(parents=True)
    directory.rename(database_dir("x86-avx2", "yolov3-tiny", "fp32", root))
    with pytest.raises(ValueError, match="no task matches conv2d_nope; the tasks are: .*conv2d"):
        remeasure("yolov3-tiny", "x86-avx2", root=root, input_size=SIZE, only=("conv2d", "conv2d_nope"))


def test_corrupt_database_is_a_clear_error(tuned_root, tmp_path):
    directory, target = _database_copy(tuned_root, tmp_path)
    records = directory / RECORD_FILE
    records.write_bytes(b"garbage{\n" + records.read_bytes())
    with pytest.raises(TuningDatabaseError, match=r"line 1: not JSON"):
        open_database(directory, target)
    (directory / META_FILE).write_text("{")
    with pytest.raises(TuningDatabaseError, match="corrupt .*meta.json"):
        open_database(directory, target)
    (directory / META_FILE).unlink()
    with pytest.raises(TuningDatabaseError, match="no meta.json"):
        open_database(directory, target)


def test_torn_last_record_is_dropped_and_the_rest_kept(tuned_root, tmp_path):
    directory, target = _database_copy(tuned_root, tmp_path)
    records = directory / RECORD_FILE
    whole = records.read_bytes()
    records.write_bytes(whole + whole.splitlines()[0][:25])  # a write cut short by kill -9
    db = open_database(directory, target)
    assert records.read_bytes() == whole and db.record_count == whole.count(b"\n")


def _tune_until_records(root, count):
    """A one-task tune in its own process group, once its database holds ``count`` records: (the
    process, its records file). The process prints whether the tune reports itself interrupted."""
    code = (f"from pipeline.tuning.tune import tune\n"
            f"report = tune('yolov3-tiny', 'x86-avx2', input_size={SIZE}, trials=400, max_tasks=1, "
            f"root={str(root)!r}, **{QUICK!r})\n"
            f"print('interrupted:', report.interrupted)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    records = database_dir("x86-avx2", "yolov3-tiny", "fp32", root) / RECORD_FILE
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and records.read_bytes().count(b"\n") >= count:
            break
        time.sleep(1)
    assert proc.poll() is None, "tuning ended before it could be stopped"
    return proc, records


def test_ctrl_c_stops_a_tune_cleanly_and_kill_9_loses_only_trials_in_flight(tmp_path):
    """One tune stopped twice, in two processes (each start costs a MetaSchedule task extraction):
    Ctrl-C ends it at its next measured batch and returns normally (`slimdet tune` then exits 130),
    everything measured saved and counted in meta.json; the same tune run again resumes, and
    kill -9 during that run keeps every record written before it."""
    root = tmp_path / "schedules"
    target = targets.target_json(targets.PRESETS["x86-avx2"])
    proc, records = _tune_until_records(root, 2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"interrupted: True" in stdout, stderr[-2000:]
    assert b"interrupted: stopping after the trials in flight" in stderr
    db = open_database(records.parent, target)
    assert db.record_count >= 2 and db.meta["trials"] == db.record_count
    saved = records.read_bytes()
    interrupted = saved.count(b"\n")

    proc, records = _tune_until_records(root, interrupted + 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records.read_bytes().startswith(saved)  # appended to, never rewritten
    assert open_database(records.parent, target).record_count >= interrupted + 2


def test_first_ctrl_c_is_deferred_and_a_second_interrupts():
    """remeasure and tune stop where they check the first Ctrl-C; a second one stops at once. In a
    fresh process: a real SIGINT raised in pytest's own process, after the 151 tests before it,
    ended CI with a segmentation fault (it passed alone; worker threads left by earlier tests are
    the likely cause). Python keeps SIGINT ignored when it starts so (a shell's background job), so
    the child first takes the handler a terminal gives it."""
    code = ("import signal\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from pipeline.tuning.progress import deferring_interrupt\n"
            "seen = []\n"
            "try:\n"
            "    with deferring_interrupt(lambda: seen.append('first')):\n"
            "        signal.raise_signal(signal.SIGINT)\n"
            "        seen.append('went on')\n"
            "        signal.raise_signal(signal.SIGINT)\n"
            "        seen.append('not reached')\n"
            "except KeyboardInterrupt:\n"
            "    seen.append('interrupted')\n"
            "print(seen, signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['first', 'went on', 'interrupted'] True"


def test_records_a_vanished_device_never_measured_are_dropped(tuned_root, tmp_path):
    directory, target = _database_copy(tuned_root, tmp_path)
    records = directory / RECORD_FILE
    measured = records.read_bytes()
    workload, (trace, run_secs, *rest) = json.loads(measured.splitlines()[0])
    assert min(run_secs) < 1  # a real measurement, in seconds
    unmeasured = json.dumps([workload, [trace, [1e10], *rest]]).encode() + b"\n"  # what a failed run commits
    records.write_bytes(measured + unmeasured)
    db = open_database(directory, target)
    kept = measured.count(b"\n")
    assert db.drop_unmeasured_after(kept) == 1 and records.read_bytes() == measured
    records.write_bytes(unmeasured + measured)
    assert db.drop_unmeasured_after(1) == 0  # records from before this run are never touched


@pytest.fixture(scope="module")
def one_wave(tmp_path_factory):
    """Two tasks, one per wave, and a budget that expires in the first wave."""
    root = tmp_path_factory.mktemp("waves")
    report = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=8, **QUICK, max_tasks=2,
                  tasks_per_wave=1, time_budget=0.001, root=root)
    return root, report


def test_tasks_are_tuned_in_waves_and_the_time_budget_stops_between_them(one_wave):
    """MetaSchedule saves nothing before it has visited every task of a tune once: waves bound
    that, and an expired budget ends the tune at the next wave, the first wave's records kept."""
    root, report = one_wave
    (_, _, first_trials, first_best), (_, _, second_trials, _) = report.per_task
    assert first_trials >= 2 and first_best is not None and second_trials == 0
    directory = database_dir("x86-avx2", "yolov3-tiny", "fp32", root)
    assert open_database(directory, targets.target_json(targets.PRESETS["x86-avx2"])).record_count == first_trials
    assert "1/2 tasks" in report.coverage


def test_a_resumed_tune_covers_untuned_tasks_before_refining_tuned_ones(one_wave, tmp_path):
    """Largest first on a fresh database; on resume the tasks with no record go first, so a time
    budget spent there leaves no task on a naive kernel that more trials could have covered."""
    root, first = one_wave
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    (largest, *_), (smaller, _, untouched, _) = first.per_task
    assert untouched == 0
    resumed = tune("yolov3-tiny", "x86-avx2", input_size=SIZE, trials=16, **QUICK, max_tasks=2,
                   tasks_per_wave=1, time_budget=0.001, root=tmp_path)
    (name, _, refined, _), (then, _, covered, _) = resumed.per_task  # listed largest first
    assert (name, then) == (largest, smaller) and covered >= 2 and refined == 0
    assert "2/2 tasks" in resumed.coverage


def test_covering_waves_take_only_the_untuned_tasks_one_search_iteration_each():
    """A fresh tune spent largest first by FLOP share left small tasks naive when its time ran out
    (yolov3-tiny pruned52-int8: 16 of 24 after 632 trials): covering waves come first."""
    waves = covering_waves(["conv_a", "conv_b", "pool", "transpose", "conv_c"], {"conv_b", "pool", "conv_c"}, size=2)
    assert [(w.tasks, w.covering) for w in waves] == [([1, 2], True), ([4], True)]
    assert [wave_budget(500, w, trials_per_iter=8) for w in waves] == [16, 8]
    assert covering_waves(["a", "b"], set(), size=4) == []


def test_refining_waves_spend_the_trials_left_where_the_time_is():
    """yolov8n's FLOP-share refinement gave its slowest-per-FLOP convs 16 trials each: trials now
    follow each task's recorded time."""
    seconds = [0.001, 0.006, 0.0005, 0.002, 0.0005]
    waves = refining_waves(seconds, size=2)
    assert [w.tasks for w in waves] == [[1, 3], [0, 2], [4]]
    assert [round(w.share, 3) for w in waves] == [0.8, 0.75, 1.0]
    # 1000 trials left: the slowest wave takes 800; a wave never gets less than one iteration a task
    assert wave_budget(1000, waves[0], trials_per_iter=8) == 800
    assert wave_budget(10, waves[1], trials_per_iter=8) == 10
    assert wave_budget(150, waves[1], trials_per_iter=8) == 113


def test_progress_times_read_as_minutes_and_seconds():
    # the old form printed 1259.6 s as "21m60s" and 1170 s as "20m30s"
    assert [format_seconds(s) for s in (5.2, 59.6, 1170, 1199.7, 1259.6)] == ["5s", "1m00s", "19m30s", "20m00s", "21m00s"]


def test_the_cpu_is_named_with_its_family_and_model(tmp_path):
    """Under KVM, Zen 4 and Zen 5 hosts both call themselves "AMD EPYC"."""
    cpuinfo = tmp_path / "cpuinfo"
    block = "processor\t: {}\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
    cpuinfo.write_text(block.format(0) + "\n" + block.format(1).replace("26", "25"))
    assert cpu_model(cpuinfo) == "AMD EPYC (family 26, model 2)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert cpu_model(cpuinfo) == "Some CPU"
