"""Stages 3-6 for one model and target: import, compile with TVM, export ``.so`` + metadata."""

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from . import targets
from .frontend import import_torch
from .errors import BuildError
from .fsutil import atomic_write_json, atomic_write_via, sha256_file
from .models import ModelSpec, load_model
from .runtime.artifact import METADATA_VERSION, Artifact, read_artifact


@dataclass
class Compiled:
    """A compiled Relax executable in memory, with what it was built from."""

    spec: ModelSpec
    preset: targets.TargetPreset
    target_json: dict
    executable: object  # tvm.relax.VMExecutable
    input_shape: tuple
    output_shapes: list
    compile_s: float
    tuning: dict  # which database was applied and what it covers; {"database": None} when untuned
    pass_config: dict  # the TVM PassContext options it was built with


def _cpu_build(tvm_target):
    return nullcontext()


def _cuda_build(tvm_target):
    from .cuda import nvcc_build

    return nvcc_build(tvm_target)


# What wraps tvm.compile for a preset's device: CUDA must embed compiled kernels, not source.
DEVICE_BUILDS = {"cpu": _cpu_build, "cuda": _cuda_build}


def import_model(spec: ModelSpec, batch: int = 1):
    """Relax for ``spec``: its PyTorch module, or for an int8 variant its Q/DQ graph lowered to
    integer convolutions."""
    if not spec.qdq_onnx:
        return import_torch(spec.module, spec.example_input(batch), spec.name)
    from .frontend import import_onnx
    from .passes import lower_int8

    return lower_int8(import_onnx(spec.qdq_onnx, spec.name, (batch, 3, spec.input_size, spec.input_size)))


def output_shapes(mod) -> list:
    """Static shapes of ``main``'s outputs (a tuple of head maps, or one tensor)."""
    ret = mod["main"].ret_ty
    fields = ret.fields if hasattr(ret, "fields") else [ret]
    return [[int(d) for d in f.shape] for f in fields]


def find_database(preset, tjson: dict, model: str, variant: str, root=None):
    """The committed tuning database for this model/variant/target, or None with the reason."""
    from .tuning.database import TuningDatabaseError, database_dir, open_database

    directory = database_dir(preset.name, model, variant, root)
    try:
        db = open_database(directory, tjson)
    except TuningDatabaseError as e:
        if "tuned for target" not in str(e):
            raise  # corrupt databases are errors; only a target mismatch is a reported skip
        return None, f"skipped: {e}"
    return db, (None if db else f"no tuning database at {directory}")


def compile_preset(target: str, spec: ModelSpec, tuned: bool = True, schedules_root=None, flags=None):
    """The preset to build for. ``x86`` on a host that runs several x86 presets: the widest one
    with a tuning database for this model variant, else the widest. Untuned code is tens of times
    slower than tuned, so an AVX-512 host is better served by the tuned AVX2 library than by
    untuned AVX-512 code."""
    from .tuning.database import META_FILE, database_dir

    if target != "x86" or not tuned:
        return targets.resolve_preset(target, flags)
    runnable = targets.host_x86_presets(flags)
    tuned_here = [p for p in runnable if (database_dir(p.name, spec.name, spec.variant, schedules_root) / META_FILE).exists()]
    return (tuned_here or runnable)[0]


def _cpu_tuning(cpu_db, tasks, tvm_target) -> dict:
    """What the database of this host's CPU model contributes to a compile."""
    from .tuning.tasks import coverage

    return {"cpu_database": str(cpu_db.directory), "cpu": cpu_db.meta.get("cpu"),
            "cpu_trials": cpu_db.meta.get("trials"),
            "cpu_tuned_tasks": coverage(tasks, cpu_db.open(), tvm_target).tuned_tasks}


def compile_spec(spec: ModelSpec, target: str = "x86", batch: int = 1, num_cores: int | None = None,
                 tuned: bool = True, schedules_root=None, pass_config: dict | None = None) -> Compiled:
    """Import and compile; with ``tuned``, apply the committed database for exactly this model
    variant and target.
    ``pass_config``: TVM PassContext options for the build (e.g. Relax CUDA graphs on)."""
    import tvm

    from .passes import polynomial_exp

    polynomial_exp.register()
    preset = compile_preset(target, spec, tuned, schedules_root)
    pass_config = pass_config or {}
    tjson = targets.target_json(preset, num_cores)
    tvm_target = tvm.target.Target(tjson)
    start = time.perf_counter()
    mod = import_model(spec, batch)
    db, why_not = find_database(preset, tjson, spec.name, spec.variant, schedules_root) if tuned else (None, "untuned")
    with DEVICE_BUILDS[preset.device](tvm_target):
        if db is None:
            with tvm.transform.PassContext(opt_level=3, config=pass_config):
                executable = tvm.compile(mod, target=tvm_target)
            tuning = {"database": None, "reason": why_not}
        else:
            from .tuning.tasks import compile_fused, coverage, fuse_for_tuning, tasks_of_fused

            from .tuning.database import applied_database, open_cpu_database

            cpu_db = open_cpu_database(db)
            database, form = applied_database(db, cpu_db), db.graph_form
            fused = fuse_for_tuning(mod, tvm_target, form)
            tasks = tasks_of_fused(fused, tvm_target)
            cover = coverage(tasks, database, tvm_target)
            executable = compile_fused(fused, tvm_target, database, pass_config)
            tuning = {"database": str(db.directory), "trials": db.meta.get("trials"), "coverage": cover.summary(),
                      "conv_layout": form.layout, "conv3x3": form.conv3x3, "int8_kernel": form.int8_kernel,
                      "tuned_tasks": cover.tuned_tasks, "tasks": cover.tasks,
                      "tuned_flop_fraction": round(cover.tuned_flops / cover.flops, 4) if cover.flops else 1.0,
                      **(_cpu_tuning(cpu_db, tasks, tvm_target) if cpu_db else {})}
    return Compiled(spec=spec, preset=preset, target_json=tjson, executable=executable,
                    input_shape=(batch, 3, spec.input_size, spec.input_size),
                    output_shapes=output_shapes(mod), compile_s=time.perf_counter() - start, tuning=tuning,
                    pass_config=pass_config)


def export(compiled: Compiled, out_dir, name: str | None = None) -> Artifact:
    """Write ``<name>.so`` then ``<name>.json`` (with the .so's sha256), each atomically: an
    interrupted export leaves the previous artifact whole, and a reader never pairs a new
    library with old metadata without noticing."""
    import tvm
    import tvm_ffi

    spec = compiled.spec
    variant = "" if spec.variant == "fp32" else f"-{spec.variant}"
    name = name or f"{spec.name}{variant}-{spec.input_size}-b{compiled.input_shape[0]}-{compiled.preset.name}"
    out_dir = Path(out_dir)
    library = atomic_write_via(out_dir / f"{name}.so", _exporter(compiled))
    meta = {
        "format_version": METADATA_VERSION,
        "model": spec.name,
        "weights": spec.weights,
        "variant": spec.variant,
        "classes": spec.classes,
        "input_shape": list(compiled.input_shape),
        "input_size": spec.input_size,
        "decoder": spec.decoder,
        "preprocess": spec.preprocess,
        "outputs": compiled.output_shapes,
        "strides": [spec.input_size // shape[-1] for shape in compiled.output_shapes],
        "target": compiled.target_json,
        "target_preset": compiled.preset.name,
        "required_cpu_flags": list(compiled.preset.cpu_flags),
        "isa": compiled.preset.isa,
        "device": compiled.preset.device,
        "gpu_arch": compiled.preset.gpu_arch,
        "library": library.name,
        "library_sha256": sha256_file(library),
        "tvm_version": tvm.__version__,
        "tvm_ffi_version": tvm_ffi.__version__,
        "compile_seconds": round(compiled.compile_s, 2),
        "tuning": compiled.tuning,
        "pass_config": compiled.pass_config,
    }
    atomic_write_json(out_dir / f"{name}.json", meta)
    return read_artifact(out_dir / f"{name}.json")


def _exporter(compiled: Compiled):
    """``path -> None`` writing the library (linked by the preset's cross compiler when it has
    one) and checking it carries the device code its preset needs before it replaces anything."""
    preset = compiled.preset
    link = {}
    if preset.cross_compiler:
        if shutil.which(preset.cross_compiler) is None:
            raise BuildError(f"{preset.name} links its host code with {preset.cross_compiler}, which is not "
                             f"installed (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")
        from tvm.support.cc import cross_compiler

        link["fcompile"] = cross_compiler(preset.cross_compiler)

    def write(path):
        compiled.executable.export_library(path, **link)
        if preset.device == "cuda":
            from .cuda import check_device_code

            check_device_code(path, preset.gpu_arch)

    return write


def compile_model(model: str, target: str = "x86", out_dir="out", input_size: int | None = None,
                  batch: int = 1, name: str | None = None, tuned: bool = True, schedules_root=None,
                  variant: str = "fp32", weights_dir=None) -> Artifact:
    """The whole path from a model name to an exported, verified artifact."""
    compiled = compile_spec(load_model(model, input_size, variant, weights_dir), target, batch, tuned=tuned,
                            schedules_root=schedules_root)
    return export(compiled, out_dir, name)
