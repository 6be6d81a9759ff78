"""Target presets as data: a name users type -> a TVM target JSON dict and what it needs.

``x86`` is an alias resolved from the host's CPU flags to the widest preset the host runs.
Presets name an ISA level, not one CPU model, so a library and a tuning database made on one
AVX2 machine stay valid on every AVX2 machine. ``num-cores`` is part of the target (MetaSchedule
tunes the parallel loops for it), so it is filled in from the host unless given.
"""

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownTargetError


@dataclass(frozen=True)
class TargetPreset:
    name: str
    target: dict          # TVM target JSON without num-cores
    description: str
    cpu_flags: tuple = ()  # /proc/cpuinfo flags the host must have to run the code
    isa: str = "x86_64"  # the host CPU's architecture, as `uname -m` prints it
    # Data layout new tuning databases use for convs (see tuning/tasks.py: CONV_LAYOUTS). On x86,
    # channels-last lets the tuner vectorise over output channels: yolov3-tiny's largest conv
    # (13x13, 512->1024) reached 123 GFLOP/s in 64 trials as NHWC, 52 as NCHW.
    conv_layout: str = "NCHW"
    # The integer dot-product kernel int8 convs are tensorized with (tuning/int8_dot.py), if any.
    int8_kernel: str | None = None
    device: str = "cpu"  # what the library runs on: "cpu" or "cuda"
    cross_compiler: str | None = None  # links the host code when the host is not this machine's ISA
    # Cores of the board the preset names (MetaSchedule sizes parallel loops by it); None: this host's.
    cores: int | None = None

    @property
    def gpu_arch(self) -> str | None:
        return self.target.get("arch")


# CUDA libraries: host code for any x86-64 (or, on Jetson, any ARMv8.2 core) around kernels
# compiled ahead of time for exactly one GPU arch.
X86_64_HOST = {"kind": "llvm", "mtriple": "x86_64-linux-gnu"}
JETSON_HOST = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a78ae"}
AARCH64_CROSS_COMPILER = "aarch64-linux-gnu-gcc"
# What MetaSchedule's GPU rules size thread blocks by (AutoBind refuses a target without them);
# the same on every arch from sm_75 to sm_90 (48 KiB is the static shared memory per block).
CUDA_LIMITS = {"max_threads_per_block": 1024, "max_shared_memory_per_block": 49152, "thread_warp_size": 32}


def cuda_preset(sm: int, gpus: str, host=X86_64_HOST, cross_compiler=None) -> TargetPreset:
    return TargetPreset(f"cuda-sm{sm}", {"kind": "cuda", "arch": f"sm_{sm}", **CUDA_LIMITS, "host": host},
                        f"NVIDIA {gpus} (sm_{sm})", device="cuda", cross_compiler=cross_compiler,
                        isa="aarch64" if cross_compiler else "x86_64")


def arm_preset(name: str, description: str, cores: int | None, mcpu: str | None = None, mattr=("+neon",),
               cpu_flags=(), int8_kernel: str | None = None) -> TargetPreset:
    """A 64-bit ARM board. NEON needs no flag check (every aarch64 Linux core has it); dot product
    does (``asimddp`` in /proc/cpuinfo's Features). Boards with an int8 dot-product kernel take
    NHWC convs, as its packed convs need; the others NCHW: the channels-last A/B that made NHWC
    the x86 default has not been run on any ARM board."""
    target = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", **({"mcpu": mcpu} if mcpu else {}),
              "mattr": list(mattr)}
    return TargetPreset(name, target, description, cpu_flags=cpu_flags, isa="aarch64",
                        cross_compiler=AARCH64_CROSS_COMPILER, cores=cores,
                        conv_layout="NHWC" if int8_kernel else "NCHW", int8_kernel=int8_kernel)


PRESETS = {p.name: p for p in (
    TargetPreset(
        "x86-avx512-vnni", {"kind": "llvm", "mcpu": "cascadelake"},
        "x86-64 with AVX-512 and VNNI (Intel Cascade Lake and newer, AMD Zen 4 and newer)",
        cpu_flags=("avx512f", "avx512bw", "avx512vl", "avx512_vnni"), conv_layout="NHWC",
        # 512-bit dot products: the digits int8 convs ran 1.6x faster than on 256-bit ones (Xeon)
        int8_kernel="avx512-vnni-16x4"),
    TargetPreset(
        "x86-avx512", {"kind": "llvm", "mcpu": "skylake-avx512"},
        "x86-64 with AVX-512 (F/BW/VL/DQ), no VNNI",
        cpu_flags=("avx512f", "avx512bw", "avx512vl", "avx512dq"), conv_layout="NHWC", int8_kernel="avx2-8x4"),
    TargetPreset(
        "x86-avx2", {"kind": "llvm", "mcpu": "haswell"},
        "x86-64 with AVX2 and FMA (Intel Haswell and newer, AMD Zen 1 and newer)",
        cpu_flags=("avx2", "fma"), conv_layout="NHWC", int8_kernel="avx2-8x4"),
    arm_preset("arm-rpi4", "Raspberry Pi 4 (4x Cortex-A72, NEON)", 4, "cortex-a72"),
    arm_preset("arm-rpi5", "Raspberry Pi 5 (4x Cortex-A76, NEON + dot product)", 4, "cortex-a76",
               ("+neon", "+dotprod"), ("asimd", "asimddp"), "neon-sdot-4x4"),
    arm_preset("arm-jetson-orin", "Jetson Orin CPU (Cortex-A78AE; 6 cores on Orin NX/Nano 8 GB)", 6,
               "cortex-a78ae", ("+neon", "+dotprod"), ("asimd", "asimddp"), "neon-sdot-4x4"),
    # Any ARMv8-A core; its core count comes from this host, which for the emulated device is right.
    arm_preset("arm-aarch64", "any 64-bit ARM (ARMv8-A, NEON); what the emulated device runs", None),
    cuda_preset(75, "Turing: T4, RTX 20xx"),
    cuda_preset(86, "Ampere: A10, A40, RTX 30xx"),
    cuda_preset(87, "Jetson AGX Orin / Orin NX / Orin Nano", JETSON_HOST, "aarch64-linux-gnu-gcc"),
    cuda_preset(89, "Ada: L4, L40, RTX 40xx"),
    cuda_preset(90, "Hopper: H100, H200"),
)}

# Widest first: the `x86` alias picks the first preset whose flags the host has.
X86_ORDER = ("x86-avx512-vnni", "x86-avx512", "x86-avx2")
# `arm` with nothing else configured: the generic preset, tuned on the emulated device.
ARM_ALIAS = "arm-aarch64"


# Linux's names (its /proc/cpuinfo "Features") of the aarch64 AT_HWCAP bits 0, 1, 2, ...
AARCH64_HWCAPS = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp",
                  "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512",
                  "sve")
AT_HWCAP = 16


def host_cpu_flags(cpuinfo="/proc/cpuinfo", auxv="/proc/self/auxv") -> set:
    """The CPU features this process may use. On aarch64 they come from the kernel's AT_HWCAP
    word, which qemu-user fills in for the CPU it emulates (its /proc/cpuinfo is the host's)."""
    if host_isa() == "aarch64":
        hwcaps = aarch64_hwcaps(auxv)
        if hwcaps:
            return hwcaps
    for line in Path(cpuinfo).read_text().splitlines():
        if line.startswith(("flags", "Features")):  # x86, ARM
            return set(line.split(":", 1)[1].split())
    return set()


def aarch64_hwcaps(auxv="/proc/self/auxv") -> set:
    """Feature names of the AT_HWCAP entry of an auxiliary vector (64-bit key/value pairs)."""
    import struct

    try:
        data = Path(auxv).read_bytes()
    except OSError:
        return set()
    pairs = struct.iter_unpack("<QQ", data[:len(data) // 16 * 16])
    word = next((value for key, value in pairs if key == AT_HWCAP), 0)
    return {name for bit, name in enumerate(AARCH64_HWCAPS) if word >> bit & 1}


def host_x86_presets(flags=None) -> list:
    """Every x86 preset this host runs, widest first."""
    flags = host_cpu_flags() if flags is None else flags
    runnable = [PRESETS[name] for name in X86_ORDER if set(PRESETS[name].cpu_flags) <= flags]
    if not runnable:
        raise UnknownTargetError("this host has no AVX2+FMA; no x86 preset fits it")
    return runnable


def resolve_preset(name: str, flags=None) -> TargetPreset:
    """The preset for a name; ``x86`` becomes the widest x86 preset this host supports."""
    if name == "x86":
        return host_x86_presets(flags)[0]
    if name == "arm":
        return PRESETS[ARM_ALIAS]
    if name not in PRESETS:
        raise UnknownTargetError(f"unknown target {name!r}; known: x86 (host), arm ({ARM_ALIAS}), {', '.join(PRESETS)}")
    return PRESETS[name]


def target_json(preset: TargetPreset, num_cores: int | None = None) -> dict:
    if preset.device != "cpu":
        return dict(preset.target)  # the host code only launches kernels: no parallel loops to size
    return {**preset.target, "num-cores": num_cores or preset.cores or os.cpu_count() or 1}


def make_target(preset: TargetPreset, num_cores: int | None = None):
    import tvm

    return tvm.target.Target(target_json(preset, num_cores))


def host_isa() -> str:
    return platform.machine()


def check_host_can_run(preset: TargetPreset, flags=None, isa=None):
    """Running code built for `preset` on a host without its ISA dies with SIGILL: refuse first."""
    isa = isa or host_isa()
    if preset.device != "cpu" or preset.isa != isa:
        raise UnknownTargetError(f"target {preset.name} runs on {preset.isa} {preset.device}s; this host is {isa}")
    flags = host_cpu_flags() if flags is None else flags
    missing = [f for f in preset.cpu_flags if f not in flags]
    if missing:
        raise UnknownTargetError(f"target {preset.name} cannot run on this host (missing CPU features: {', '.join(missing)})")
