"""Integer dot-product kernels MetaSchedule tensorizes int8 convolutions with, as data.

A kernel is a TensorIntrin (what it computes, and the instructions that compute it) plus the
packed weight layout it reads: ``pack_int8_conv2d`` lays constant weights out as
``[O/lanes, KH, KW, I/group, lanes, group]`` so that one call of the intrinsic reads ``lanes``
output channels x ``group`` input channels as one contiguous vector. MetaSchedule cannot use
the intrinsic on plain OHWI weights: its auto-tensorize mapping fails on the strided 2-D weight
region ("high-dim region must be element-wise") and the tune silently keeps scalar code.

``avx2-8x4`` is ours: x86 without VNNI multiplies u8 x i8 pairs with ``vpmaddubsw`` (16-bit
saturating pair sums) and widens them with ``vpmaddwd`` against ones. With the 7-bit weights
``slimdet quantize`` makes by default, the pair sums (at most 2 x 255 x 64) never saturate, so
the result is exact. ``avx512-vnni-8x4`` computes the same block with one ``vpdpbusd``, and
``avx512-vnni-16x4`` twice the output channels with one ``vpdpbusd`` on 512-bit vectors.
"""

from dataclasses import dataclass
from functools import cache, partial


@dataclass(frozen=True)
class Int8Dot:
    intrin: str  # the TensorIntrin's registered name (what tuning records' traces refer to)
    lanes: int   # int32 outputs per call: output channels
    group: int   # u8 x i8 products summed into each output: input channels
    make: callable  # () -> (desc, impl) PrimFuncs
    weight_bits: int = 8  # exact for signed weights of this many bits


def _u8i8_desc(lanes: int):
    """What every kernel computes: ``lanes`` int32 sums of 4 u8 x i8 products, one per row of B."""
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((lanes, 4), "int8", offset_factor=1),
             C: T.Buffer((lanes,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return desc


def _avx2_8x4():
    from tvm.script import tirx as T

    desc = _u8i8_desc(8)

    @T.prim_func(s_tir=True)
    def impl(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((8, 4), "int8", offset_factor=1),
             C: T.Buffer((8,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:8], A[0:4], B[0:8, 0:4])
            T.writes(C[0:8])
            # the 4 input bytes, broadcast to all 8 lanes; each lane's 4 weights are contiguous
            a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), 8),
                              dtype="uint8x32")
            pairs = T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.ub.sw"),
                                            a, B.vload([0, 0], dtype="int8x32"), dtype="int16x16")
            C[T.ramp(T.int32(0), 1, 8)] += T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.wd"), pairs, T.int16x16(1), dtype="int32x8")

    return desc, impl


def _vnni(lanes: int):
    """``lanes`` x 4 with one ``vpdpbusd`` on ``lanes`` x 32-bit vectors (8: ymm, 16: zmm)."""
    from tvm.script import tirx as T

    desc = _u8i8_desc(lanes)
    width = 32 * lanes // 8  # bytes in one vector

    @T.prim_func(s_tir=True)
    def impl(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((lanes, 4), "int8", offset_factor=1),
             C: T.Buffer((lanes,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), lanes),
                              dtype=f"uint8x{width}")
            # LLVM 22 takes the bytes as <N x i8> (TVM's stock VNNI intrinsic passes <16 x i32> and
            # fails LLVM's verifier); accumulates in 32 bits without saturating: 8-bit weights are exact
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(f"llvm.x86.avx512.vpdpbusd.{32 * lanes}"),
                C[T.ramp(T.int32(0), 1, lanes)], a, B.vload([0, 0], dtype=f"int8x{width}"), dtype=f"int32x{lanes}")

    return desc, impl


def _neon_sdot_4x4():
    from tvm.script import tirx as T

    desc = _u8i8_desc(4)

    @T.prim_func(s_tir=True)
    def impl(A: T.Buffer((4,), "uint8", offset_factor=1), B: T.Buffer((4, 4), "int8", offset_factor=1),
             C: T.Buffer((4,), "int32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            # sdot multiplies signed bytes only: a ^ 0x80 is a - 128 as a signed byte, and
            # sum((a - 128) w) - sum(-128 w) = sum(a w), exact for any int8 w
            a = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), 4),
                              dtype="int8x16")
            shifted = T.bitwise_xor(a, T.broadcast(T.int8(-128), 16))
            w = B.vload([0, 0], dtype="int8x16")
            C[T.ramp(T.int32(0), 1, 4)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.sdot.v4i32.v16i8"), C[T.ramp(T.int32(0), 1, 4)],
                shifted, w, dtype="int32x4") - T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.sdot.v4i32.v16i8"), T.broadcast(T.int32(0), 4),
                T.broadcast(T.int8(-128), 16), w, dtype="int32x4")

    return desc, impl


INT8_DOTS = {
    "avx2-8x4": Int8Dot("slimdet_dot_8x4_avx2", lanes=8, group=4, make=_avx2_8x4, weight_bits=7),
    # AVX-512 VNNI on 256-bit vectors: the packed layout and tiling of the AVX2 kernel
    "avx512-vnni-8x4": Int8Dot("slimdet_dot_8x4_vnni", lanes=8, group=4, make=partial(_vnni, 8)),
    # ... and on 512-bit vectors: on an Intel Xeon with two 512-bit ports, 1.73x the multiply-adds
    # a cycle of 256-bit ones (benchmarks/x86_dot_peak.py); Zen 4, which splits 512-bit ops into
    # two halves, should gain nothing from the width (not measured there)
    "avx512-vnni-16x4": Int8Dot("slimdet_dot_16x4_vnni", lanes=16, group=4, make=partial(_vnni, 16)),
    # ARMv8.2 dot product (Cortex-A76/A78: Raspberry Pi 5, Jetson Orin): one 128-bit sdot is 4
    # output channels x 4 input channels; u8 data costs a second sdot against the weights alone
    # (u8 x i8 in one instruction, usdot, needs the i8mm extension those cores lack)
    "neon-sdot-4x4": Int8Dot("slimdet_dot_4x4_sdot", lanes=4, group=4, make=_neon_sdot_4x4),
}


@cache
def register(kernel: str) -> Int8Dot:
    """The kernel, its intrinsic registered in this process (tuning searches with it, and compiling
    replays records whose traces name it)."""
    from tvm.s_tir import TensorIntrin

    dot = INT8_DOTS[kernel]
    TensorIntrin.register(dot.intrin, *dot.make(), override=True)
    return dot


AUTO_TENSORIZE = "meta_schedule.auto_tensorize"
# Any loop annotation stops RewriteParallelVectorizeUnroll's loop fusion (HasAnnOrBinding).
SCALAR_LOOP = "slimdet.loop_around_intrinsic"


def _keep_intrinsic_loops_scalar():
    """A postproc, run before RewriteParallelVectorizeUnroll, that marks the innermost loop above
    every block to be tensorized. In 0.27 that postproc vectorizes the loops around a blockized
    block as if it were innermost; the intrinsic's vectors inside a vectorized loop then fail to
    build ("Cannot broadcast lanes=32 to 128") and every tensorized candidate is lost. The mark is
    a schedule instruction, so it is in the trace records replay."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    from ..passes.tir_exprs import schedule_blocks

    @derived_object
    class KeepIntrinsicLoopsScalar(ms.postproc.PyPostproc):
        def _initialize_with_tune_context(self, context) -> None:
            pass

        def apply(self, sch) -> bool:
            for block in schedule_blocks(sch):
                loops = sch.get_loops(block)
                if AUTO_TENSORIZE in sch.get(block).annotations and loops:
                    sch.annotate(loops[-1], SCALAR_LOOP, 1)
            return True

        def clone(self):
            return KeepIntrinsicLoopsScalar()

    return KeepIntrinsicLoopsScalar()


LAYOUT_REWRITE = "meta_schedule.layout_rewrite_preproc"


def _reject_layout_rewrites_in_loops():
    """A postproc, run last, that rejects a candidate whose weight-repacking block reads its
    constant at anything but plain loop variables. MetaSchedule computes every candidate's
    arguments with the repacking removed, and that removal stops the whole process on such a
    block (``RemoveWeightLayoutRewriteBlock``: "Check failed: ind.as<PrimVar>()"). It happens
    where the search inlines a conv's padding stage into the conv (revision 2 int8 graphs):
    tensorizing then fails and the repacking lands inside the conv's loops. Those candidates
    are scalar code anyway."""
    from tvm import tirx
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    from ..passes.tir_exprs import schedule_blocks

    @derived_object
    class RejectLayoutRewritesInLoops(ms.postproc.PyPostproc):
        def _initialize_with_tune_context(self, context) -> None:
            pass

        def apply(self, sch) -> bool:
            for block in schedule_blocks(sch):
                stmt = sch.get(block)
                load = getattr(stmt.body, "value", None)  # the block is ``packed[...] = weight[...]``
                if LAYOUT_REWRITE in stmt.annotations and not all(
                        isinstance(i, tirx.Var) for i in getattr(load, "indices", [None])):
                    return False
            return True

        def clone(self):
            return RejectLayoutRewritesInLoops()

    return RejectLayoutRewritesInLoops()


def _compute_locations_except_pads():
    """MetaSchedule's RandomComputeLocation for every block but a packed conv's padding stage,
    which stays a stage of its own. Computing it inline into the conv (one of the locations that
    rule samples) leaves a conditional in the conv's body that the intrinsic cannot match: about
    one candidate in seven was scalar code, each with a "Tensorize failed" warning from C++."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    from ..passes.pack_int8_conv2d import PAD_STAGE

    @derived_object
    class ComputeLocationsExceptPads(ms.schedule_rule.PyScheduleRule):
        def __init__(self):
            self.rule = ms.schedule_rule.RandomComputeLocation()

        def _initialize_with_tune_context(self, context) -> None:
            self.rule._initialize_with_tune_context(context)

        def apply(self, sch, block):
            return [sch] if sch.get(block).name_hint == PAD_STAGE else list(self.rule.apply(sch, block))

        def clone(self):
            return ComputeLocationsExceptPads()

    return ComputeLocationsExceptPads()


def space_generator(kernel: str):
    """LLVM's default design space with the kernel's tensorized tiling tried first on every block
    it can compute (other blocks fall through to plain multi-level tiling)."""
    from tvm.s_tir import meta_schedule as ms

    dot = register(kernel)
    rules, postprocs = list(ms.ScheduleRule.create("llvm")), list(ms.Postproc.create("llvm"))
    tiling = next(i for i, r in enumerate(rules) if type(r).__name__ == "MultiLevelTiling")
    location = next(i for i, r in enumerate(rules) if type(r).__name__ == "RandomComputeLocation")
    rules[location] = _compute_locations_except_pads()
    rules.insert(tiling, ms.schedule_rule.MultiLevelTilingWithIntrin(
        dot.intrin, structure="SSRSRS", max_innermost_factor=64,
        reuse_write=ms.schedule_rule.ReuseType(req="may", levels=[1, 2], scope="global")))
    vectorize = next(i for i, p in enumerate(postprocs) if type(p).__name__ == "RewriteParallelVectorizeUnroll")
    postprocs.insert(vectorize, _keep_intrinsic_loops_scalar())
    reduction = next(i for i, p in enumerate(postprocs) if type(p).__name__ == "RewriteReductionBlock")
    postprocs.insert(reduction + 1, ms.postproc.RewriteTensorize(vectorize_init_loop=True))
    postprocs.append(_reject_layout_rewrites_in_loops())
    return ms.space_generator.PostOrderApply(sch_rules=rules, postprocs=postprocs, mutator_probs="from-target")
