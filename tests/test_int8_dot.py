"""Int8 dot-product kernels: MetaSchedule's design spaces for packed int8 convs tensorize with
our intrinsics, build to vpmaddubsw (AVX2) or vpdpbusd (VNNI) code, compute exactly, and leave
float tasks alone."""

import numpy as np
import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm")
tvm_ffi = pytest.importorskip("tvm_ffi")

from pipeline import targets  # noqa: E402
from pipeline.frontend import import_onnx, import_torch  # noqa: E402
from pipeline.passes import lower_int8  # noqa: E402
from pipeline.passes.integer_conv2d import integer_conv2d  # noqa: E402
from pipeline.tuning.tasks import GraphForm, extract_tasks, task_flops  # noqa: E402
from pipeline.tuning.tune import tune_contexts  # noqa: E402

from .conftest import REPO  # noqa: E402
from .qdq import quantized_onnx  # noqa: E402

SHAPE = (1, 3, 20, 20)
TARGET = targets.target_json(targets.PRESETS["x86-avx2"])
FORM = GraphForm("NHWC", "avx2-8x4")


def convs():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1))


def postprocessed_spaces(mod, form, target=TARGET):
    """Every design space of the largest task, with the space generator's postprocs applied."""
    target = tvm.target.Target(target)
    task = max(extract_tasks(mod, target, form), key=task_flops)
    context = tune_contexts([task], 0, form)[0]
    spaces = context.generate_design_space()
    for sch in spaces:
        assert all(postproc.apply(sch) for postproc in context.space_generator.postprocs)
    return task, spaces


def run(func_mod, args, target=TARGET):
    lib = tvm.compile(func_mod, target=tvm.target.Target(target))
    tensors = [tvm.runtime.tensor(a) for a in args]
    lib["main"](*tensors)
    return lib, tensors[-1].numpy()


# A u8 x i8 -> i32 conv as integer_conv2d writes it: zero-point pad, then the conv; its output is
# the raw int32 sums, so any error of a kernel shows (after a requantize it would mostly round away).
CONV_SIZE, CONV_IN, CONV_OUT, ZERO_POINT = 20, 16, 32, 6


def integer_conv_module(weight):
    from tvm import relax

    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, CONV_SIZE, CONV_SIZE, CONV_IN), "uint8"))
    with builder.function("main", [x]):
        with builder.dataflow():
            padded = builder.emit(relax.op.nn.pad(x, [0, 0, 1, 1, 1, 1, 0, 0], pad_value=float(ZERO_POINT)))
            out = builder.emit_output(relax.op.nn.conv2d(padded, relax.const(weight), data_layout="NHWC",
                                                         kernel_layout="OHWI", out_dtype="int32"))
        builder.emit_func_output(out)
    return builder.get()


def integer_conv_case(kernel: str):
    """(module, the task's arguments by parameter, the exact int32 result): full-range u8 data,
    weights over the whole range the kernel is exact for (8 bits: -128 included), the sums
    computed by numpy."""
    from pipeline.passes.pack_int8_conv2d import pack_weight
    from pipeline.tuning.int8_dot import INT8_DOTS

    dot = INT8_DOTS[kernel]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, CONV_SIZE, CONV_SIZE, CONV_IN)).astype("uint8")
    low = -(1 << (dot.weight_bits - 1))
    weight = rng.integers(low, -low, (CONV_OUT, 3, 3, CONV_IN)).astype("int8")
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=ZERO_POINT)
    windows = np.lib.stride_tricks.sliding_window_view(padded[0].astype(np.int64), (3, 3), axis=(0, 1))
    want = np.einsum("hwcij,oijc->hwo", windows, weight.astype(np.int64))[None].astype("int32")
    by_shape = {x.shape: x, padded.shape: padded, (1,): np.array([ZERO_POINT], "uint8"), want.shape: np.zeros_like(want)}

    def args(params):
        shapes = [tuple(int(d) for d in p.ty.shape) for p in params]
        return [pack_weight(weight, dot.lanes, dot.group) if len(shape) == 6 else by_shape[shape] for shape in shapes]

    return integer_conv_module(weight), args, want


# preset, kernel, revision, the instruction (and its vector registers) the kernel builds to
KERNELS = [("x86-avx2", "avx2-8x4", 1, "vpmaddubsw\t%ymm"), ("x86-avx2", "avx2-8x4", 2, "vpmaddubsw\t%ymm"),
           ("x86-avx512-vnni", "avx512-vnni-8x4", 2, "vpdpbusd\t%ymm"),
           ("x86-avx512-vnni", "avx512-vnni-16x4", 3, "vpdpbusd\t%zmm")]


@pytest.mark.parametrize("preset, kernel, revision, instruction", KERNELS)
def test_packed_int8_conv_spaces_tensorize_into_the_kernel_and_compute_exactly(preset, kernel, revision, instruction):
    preset = targets.PRESETS[preset]
    if not set(preset.cpu_flags) <= targets.host_cpu_flags():
        pytest.skip(f"this host cannot run {preset.name} code")
    target = targets.target_json(preset)
    mod, args_for, want = integer_conv_case(kernel)
    task, spaces = postprocessed_spaces(mod, GraphForm("NHWC", kernel, revision), target)
    assert "u8i8_packed" in task.task_name and spaces
    params = task.dispatched[0]["main"].params
    # from revision 2 on, the pad is inside the conv's own kernel (the 20x20 input is its argument, not 22x22)
    assert (revision >= 2) == any(tuple(int(d) for d in p.ty.shape) == (1, CONV_SIZE, CONV_SIZE, CONV_IN)
                                  for p in params)
    for sch in spaces:
        assert 'tensorize(' in str(sch.trace)
        lib, got = run(sch.mod, args_for(params), target)
        assert lib.mod.inspect_source("asm").count(instruction) > 0
        np.testing.assert_array_equal(got, want)


def test_float_tasks_get_the_same_design_spaces_with_the_kernel_on():
    mod = import_torch(convs().eval(), torch.rand(SHAPE), "c")
    _, with_kernel = postprocessed_spaces(mod, FORM)
    _, without = postprocessed_spaces(mod, GraphForm("NHWC"))
    assert len(with_kernel) == len(without)
    assert all(tvm_ffi.structural_equal(a.mod, b.mod) for a, b in zip(with_kernel, without))


def test_a_database_with_tensorized_records_loads_in_a_fresh_process(tmp_path):
    """Loading a JSON database parses its traces, which name our intrinsic: it must be
    registered first (compiling from the committed int8 database failed without it)."""
    import subprocess
    import sys

    from tvm.s_tir import meta_schedule as ms

    from pipeline.tuning.database import open_database

    mod = integer_conv2d(import_onnx(quantized_onnx(convs(), SHAPE, tmp_path / "c.onnx"), "c", SHAPE))
    task, spaces = postprocessed_spaces(mod, FORM)
    db = open_database(tmp_path / "db", TARGET, create=True)
    db.save_meta(**FORM.as_meta())
    database = db.open()
    database.commit_tuning_record(ms.database.TuningRecord(
        spaces[0].trace, database.commit_workload(task.dispatched[0]), [1e-3],
        tvm.target.Target(TARGET)))
    code = (f"from pipeline.tuning.database import open_database; "
            f"print(len(open_database({str(tmp_path / 'db')!r}, {TARGET!r}).open()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1"


def _sampled_verdicts(task, form, rules=None, samples=40):
    """Each postproc's verdict on ``samples`` candidates with fresh random decisions, drawn from the
    design spaces of the form's space generator (``rules`` in place of its schedule rules), and
    whether MetaSchedule's argument analysis (run on every candidate it measures) survived the
    accepted ones."""
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms

    context = tune_contexts([task], 0, form)[0]
    if rules is not None:
        generator = context.space_generator
        context = ms.TuneContext(mod=context.mod, target=context.target, space_generator=ms.space_generator
                                 .PostOrderApply(sch_rules=rules, postprocs=list(generator.postprocs)))
    spaces = context.generate_design_space()
    verdicts = []
    for seed in range(1, samples + 1):
        sch = s_tir.Schedule(task.dispatched[0], seed=seed)
        spaces[seed % len(spaces)].trace.apply_to_schedule(sch, remove_postproc=True,
                                                           decision_provider=lambda *_: None)
        verdict = [postproc.apply(sch) for postproc in context.space_generator.postprocs]
        if all(verdict):
            ms.arg_info.ArgInfo.from_entry_func(sch.mod, remove_preproc=True)
        verdicts.append(verdict)
    return verdicts


def test_pads_inside_packed_convs_stay_stages_and_bad_candidates_are_rejected(tmp_path):
    """Revision 2 puts the zero-point pad in the conv's kernel. Computed inline into the conv it
    defeats tensorizing, and the weight repacking then lands inside the conv's loops, which made
    MetaSchedule's argument analysis end the whole tune. Our space never inlines the pad; with
    the stock compute-location rule some candidates do, and the last postproc rejects them."""
    from tvm.s_tir import meta_schedule as ms

    mod = lower_int8(import_onnx(quantized_onnx(convs(), SHAPE, tmp_path / "c.onnx"), "c", SHAPE))
    form = GraphForm("NHWC", "avx2-8x4", 2)
    task = max(extract_tasks(mod, tvm.target.Target(TARGET), form), key=task_flops)
    assert all(all(verdict) for verdict in _sampled_verdicts(task, form))
    # the LLVM rules end with RandomComputeLocation, which our space replaces in place
    assert type(list(ms.ScheduleRule.create("llvm"))[-1]).__name__ == "RandomComputeLocation"
    stock = [*list(tune_contexts([task], 0, form)[0].space_generator.sch_rules)[:-1],
             ms.schedule_rule.RandomComputeLocation()]
    verdicts = _sampled_verdicts(task, form, stock, samples=60)
    assert any(all(v[:-1]) and not v[-1] for v in verdicts) and any(all(v) for v in verdicts)
