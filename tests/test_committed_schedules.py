"""The committed tuning databases are product assets: every task of the graph each one was tuned
on must still find its record. A pass that changes a graph's kernels silently drops a database
back to default schedules (tens of times slower on CPU) unless its form records the change.

The int8 graphs are the ones our own passes build; the fp32 ones are TVM's import alone, and
`make bench-check` (its CI form: test_perf_regression) compiles them from their databases."""

import numpy as np
import pytest

from pipeline import build, targets
from pipeline.models import load_model
from pipeline.tuning.database import (CPU_DATABASES, SCHEDULES_ROOT, database_dir, open_cpu_database, open_database,
                                      read_meta)
from pipeline.tuning.tasks import coverage, extract_tasks

from .qdq import ort_run
from .test_integer_conv2d import conv_dtypes

PRESET = targets.PRESETS["x86-avx2"]  # any host can compile for it


@pytest.mark.parametrize("preset, model, variant", [
    ("x86-avx2", "yolov3-tiny", "int8"),  # an int8 revision 1 graph: compile must keep building that form
    ("x86-avx2", "yolov8-digits", "fp32"),
    ("x86-avx2", "yolov8-digits", "int8"),
    ("x86-avx2", "yolov3-tiny", "pruned52-int8"),
    ("x86-avx512-vnni", "yolov3-tiny", "int8"),  # the VNNI kernel's packed graph
    ("x86-avx512-vnni", "yolov8n", "fp32"),  # seeded from x86-avx2: that database's graph form
    ("x86-avx512-vnni", "yolov3-tiny", "fp32"),  # seeded too
    ("x86-avx512-vnni", "yolov3-tiny", "pruned52"),  # seeded from x86-avx2
    ("x86-avx512-vnni", "yolov3-tiny", "pruned52-int8"),
    ("x86-avx512-vnni", "yolov8-digits", "int8"),
    ("x86-avx512-vnni", "yolov8-digits", "fp32"),  # seeded from x86-avx2
    ("x86-avx512-vnni", "yolov8-digits", "pruned46"),
])
def test_committed_database_covers_every_task_of_its_graph(preset, model, variant):
    import tvm

    tjson = targets.target_json(targets.PRESETS[preset], num_cores=2)  # what it was tuned for
    db = open_database(database_dir(preset, model, variant), tjson)
    target = tvm.target.Target(tjson)
    tasks = extract_tasks(build.import_model(load_model(model, variant=variant)), target, db.graph_form)
    cover = coverage(tasks, db.open(), target)
    assert cover.untuned == [], cover.summary()


CPU_MODEL_DATABASES = sorted(SCHEDULES_ROOT.glob(f"*/*/{CPU_DATABASES}/*"))


@pytest.mark.parametrize("directory", CPU_MODEL_DATABASES, ids=lambda d: "/".join(d.relative_to(SCHEDULES_ROOT).parts))
def test_committed_cpu_model_database_is_found_on_its_cpu_and_covers_every_task(directory):
    """A database tuned on one CPU model: compile on that CPU finds it under the name of the CPU
    its meta.json records, in its preset database's graph form, with a record for every task."""
    import tvm

    preset_dir = directory.parents[1]
    preset_db = open_database(preset_dir, read_meta(preset_dir)["target"])
    cpu_db = open_cpu_database(preset_db, read_meta(directory)["cpu"])
    assert cpu_db is not None and cpu_db.directory == directory
    meta = cpu_db.meta
    target = tvm.target.Target(cpu_db.target)
    spec = load_model(meta["model"], variant=meta["variant"])
    cover = coverage(extract_tasks(build.import_model(spec), target, cpu_db.graph_form), cpu_db.open(), target)
    assert cover.untuned == [], cover.summary()


def test_tuned_digits_int8_library_covers_every_task_and_computes_onnx_runtime_numbers():
    """Compiled from its revision 2 database: integer convs only, every task tuned, no scalar libm
    exp, and the numbers ONNX Runtime gets from the same Q/DQ model."""
    import tvm

    spec = load_model("yolov8-digits", variant="pruned46-int8")
    assert {out for *_, out in conv_dtypes(build.import_model(spec))} == {"int32"}
    compiled = build.compile_spec(spec, PRESET.name, num_cores=2)
    assert compiled.tuning["tuned_tasks"] == compiled.tuning["tasks"], compiled.tuning["coverage"]
    # every SiLU's exp is vectorized arithmetic (passes/polynomial_exp.py), not calls of libm's expf
    assert not any("expf" in kernels.inspect_source("asm") for kernels in compiled.executable.mod.imports)
    vm = tvm.relax.VirtualMachine(compiled.executable, tvm.cpu())
    x = np.random.default_rng(3).random((1, 3, 256, 256), dtype=np.float32)
    got = [t.numpy() for t in vm["main"](tvm.runtime.tensor(x))]
    want = ort_run(spec.qdq_onnx, x, "images")
    for g, w in zip(got, want):
        assert np.abs(g - w).max() <= 0.05 * np.abs(w).max()
        assert np.mean(np.isclose(g, w, rtol=0, atol=1e-4)) > 0.99
