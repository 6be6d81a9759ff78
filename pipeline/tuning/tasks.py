"""Tuning tasks of a Relax module, and how much of them a database covers."""

from dataclasses import dataclass


# Graph layouts a database can be tuned on: Relax ConvertLayout's desired layouts per op.
CONV_LAYOUTS = {"NCHW": None, "NHWC": {"relax.nn.conv2d": ["NHWC", "OHWI"]}}


@dataclass(frozen=True)
class GraphForm:
    """The shape a graph is put in before its tasks are extracted: a database's records only
    match tasks of the form it was tuned on, so the form is stored in its meta.json and
    compiling uses it."""

    layout: str = "NCHW"
    int8_kernel: str | None = None  # a tuning/int8_dot.py kernel: int8 convs get its packed weights
    int8_revision: int = 1  # how graphs with an int8 kernel are put together: INT8_REVISIONS
    conv3x3: str = "direct"  # how fp32 3x3 stride-1 convs are computed: CONV3X3_ALGORITHMS

    @classmethod
    def from_meta(cls, meta: dict) -> "GraphForm":
        # databases from before layouts are NCHW, from before int8 kernels have none, from before
        # int8 revisions are revision 1, from before Winograd convs direct
        return cls(meta.get("graph_layout", "NCHW"), meta.get("int8_kernel"), meta.get("int8_revision", 1),
                   meta.get("conv3x3", "direct"))

    def as_meta(self) -> dict:
        return {"graph_layout": self.layout, "int8_kernel": self.int8_kernel, "int8_revision": self.int8_revision,
                "conv3x3": self.conv3x3}


def _winograd4():
    from ..passes.winograd_conv2d import winograd_conv2d

    return [winograd_conv2d(4)]


# How fp32 3x3 stride-1 NHWC convs with constant weights are computed: name -> () -> passes.
CONV3X3_ALGORITHMS = {"direct": list, "winograd4": _winograd4}


# What each revision of an int8 graph adds to the one before; a database keeps the revision it was
# tuned on (its records match no other), new databases get the latest.
INT8_REVISIONS = {
    1: "u8 x i8 convs on packed weights (pack_int8_conv2d)",
    2: "zero-point pads without transposes, inside the packed conv; requantize constants as arguments, "
       "so same-shaped layers share one kernel (yolov8-digits pruned46-int8: 120 tasks -> 71)",
    3: "quantized activations with a transcendental op (SiLU) as 256-entry table lookups in the conv's epilogue",
}
LATEST_INT8_REVISION = max(INT8_REVISIONS)


def fuse_for_tuning(mod, target, form: GraphForm = GraphForm()):
    """Legalize and fuse, then mark weights as layout-free. Tuning and compiling both start here:
    tasks extracted from anything else would never match records at compile time.

    Layout-free weights let MetaSchedule pick a packed weight layout per conv (its RewriteLayout
    postproc); ``compile_with_database`` folds that repacking into the constant weights. On
    yolov3-tiny's largest conv, 48 trials reached 56 GFLOP/s with it and 43 without."""
    import tvm
    from tvm.relax import pipeline as relax_pipeline
    from tvm.relax import transform as T

    from ..passes.leaky_relu_as_maximum import leaky_relu_as_maximum

    if form.layout not in CONV_LAYOUTS:
        raise ValueError(f"unknown conv layout {form.layout!r}; known: {', '.join(CONV_LAYOUTS)}")
    if form.conv3x3 not in CONV3X3_ALGORITHMS:
        raise ValueError(f"unknown 3x3 conv algorithm {form.conv3x3!r}; known: {', '.join(CONV3X3_ALGORITHMS)}")
    convert = [T.ConvertLayout(CONV_LAYOUTS[form.layout])] if CONV_LAYOUTS[form.layout] else []
    int8 = _int8_passes(form)
    passes = [leaky_relu_as_maximum, *convert, *CONV3X3_ALGORITHMS[form.conv3x3](), *int8.graph,
              T.DecomposeOpsForInference(), T.CanonicalizeBindings(),
              *relax_pipeline.library_dispatch_passes(target), T.LegalizeOps(), T.AnnotateTIROpPattern(),
              *int8.patterns, T.FoldConstant(), T.FuseOps(), T.FuseTIR(), T.AttachAttrLayoutFreeBuffers(),
              *int8.kernels]
    with target:
        return tvm.transform.Sequential(passes)(mod)


@dataclass(frozen=True)
class Int8Passes:
    graph: tuple = ()     # Relax passes before legalization
    patterns: tuple = ()  # after the kernels' op patterns are annotated, before fusion
    kernels: tuple = ()   # on the fused kernels


def _int8_passes(form: GraphForm) -> Int8Passes:
    """The passes that put an int8 graph of the form's revision together (INT8_REVISIONS)."""
    if form.int8_kernel is None:
        return Int8Passes()
    from ..passes.lookup_tables_elementwise import lookup_tables_elementwise
    from ..passes.pack_int8_conv2d import pack_int8_conv2d
    from ..passes.pad_through_permute import pad_through_permute
    from ..passes.quantized_activation_as_table import quantized_activation_as_table
    from ..passes.scalar_operands_as_tensors import scalar_operands_as_tensors
    from ..passes.scalars_and_tables_not_layout_free import scalars_and_tables_not_layout_free
    from .int8_dot import INT8_DOTS

    if form.int8_revision not in INT8_REVISIONS:
        raise ValueError(f"unknown int8 graph revision {form.int8_revision}; known: {sorted(INT8_REVISIONS)}")
    # its intrinsic is registered where records are loaded or searched (database.py, int8_dot.py)
    dot = INT8_DOTS[form.int8_kernel]
    pack = pack_int8_conv2d(dot.lanes, dot.group, pads_inside=True)
    return {
        1: Int8Passes(graph=(pack_int8_conv2d(dot.lanes, dot.group),)),
        2: Int8Passes(graph=(pad_through_permute, pack, scalar_operands_as_tensors),
                      kernels=(scalars_and_tables_not_layout_free,)),
        3: Int8Passes(graph=(pad_through_permute, pack, quantized_activation_as_table, scalar_operands_as_tensors),
                      patterns=(lookup_tables_elementwise,), kernels=(scalars_and_tables_not_layout_free,)),
    }[form.int8_revision]


def extract_tasks(mod, target, form: GraphForm = GraphForm()) -> list:
    return tasks_of_fused(fuse_for_tuning(mod, target, form), target)


def tasks_of_fused(fused, target) -> list:
    from tvm.s_tir import meta_schedule as ms

    return ms.relax_integration.extract_tasks(fused, target)


# TVM's own dispatcher reaches for names backend packages do not re-export (0.27: AttributeError for
# cpu_generic), so go to each backend's pipeline module directly.
BACKEND_PIPELINES = {"llvm": "tvm.relax.backend.cpu_generic.pipeline", "cuda": "tvm.relax.backend.cuda.pipeline"}


def lowering_passes(target) -> list:
    import importlib

    backend = importlib.import_module(BACKEND_PIPELINES[target.kind.name])
    return backend.dataflow_lower_passes(target) + backend.finalize_passes(target)


def _gpu_default_schedules(_target) -> list:
    # What TVM's own CUDA pipeline gives every kernel: GPU code must have its loops bound to threads.
    from tvm.s_tir import dlight as dl

    return [dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
                                    dl.gpu.Fallback())]


# Schedules for the functions a database has no record for (dlight skips the tuned ones); CPU code
# builds unscheduled.
DEFAULT_SCHEDULES = {"llvm": lambda _target: [], "cuda": _gpu_default_schedules}


def _cpu_kernel_rewrites():
    from ..passes.vectorize_concat_axis import vectorize_concat_axis

    return [vectorize_concat_axis()]


# TIR rewrites of scheduled kernels, per target kind: compile runs them after the records are
# applied and the tuning builder on every candidate, so what is measured is what is built, and
# records keep matching the unrewritten TIR. GPU kernels bind their inner loops to threads: the
# concat loops are not theirs to vectorize.
KERNEL_REWRITES = {"llvm": _cpu_kernel_rewrites, "cuda": list}


def rewrite_kernels(mod, target):
    import tvm

    return tvm.transform.Sequential(KERNEL_REWRITES[target.kind.name]())(mod)


def compile_with_database(mod, target, database, form: GraphForm = GraphForm(), pass_config: dict | None = None):
    """Build with tuned records applied, weight repacking folded into the constants, and every
    function without a record left on its default schedule."""
    return compile_fused(fuse_for_tuning(mod, target, form), target, database, pass_config)


def compile_fused(fused, target, database, pass_config: dict | None = None):
    """``compile_with_database`` for a module ``fuse_for_tuning`` already put in its form (whose
    tasks a caller may have extracted too: fusing the int8 digits model takes ~15 s)."""
    import tvm
    from tvm import relax
    from tvm.relax import transform as T

    @tvm.transform.module_pass(opt_level=3)
    def pipeline(mod, _ctx):
        mod = rewrite_kernels(T.MetaScheduleApplyDatabase(enable_warning=False)(mod), target)
        mod = tvm.transform.Sequential([*DEFAULT_SCHEDULES[target.kind.name](target), T.SplitLayoutRewritePreproc(),
                                        T.LiftTransformParams(), T.FoldConstant()])(mod)
        return tvm.transform.Sequential(lowering_passes(target))(mod)

    with target, database, tvm.transform.PassContext(opt_level=3, config=pass_config or {}):
        return relax.build(fused, target=target, relax_pipeline=pipeline)


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
