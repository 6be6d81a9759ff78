"""Target presets as data: a name users type -> a TVM target JSON dict and what it needs.

``x86`` is an alias resolved from the host's CPU flags to the widest preset the host runs.
Presets name an ISA level, not one CPU model, so a library and a tuning database made on one
AVX2 machine stay valid on every AVX2 machine. ``num-cores`` is part of the target (MetaSchedule
tunes the parallel loops for it), so it is filled in from the host unless given.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownTargetError


@dataclass(frozen=True)
class TargetPreset:
    name: str
    target: dict          # TVM target JSON without num-cores
    description: str
    cpu_flags: tuple = ()  # /proc/cpuinfo flags the host must have to run the code
    host_runnable: bool = True
    # Data layout new tuning databases use for convs (see tuning/tasks.py: CONV_LAYOUTS). On x86,
    # channels-last lets the tuner vectorise over output channels: yolov3-tiny's largest conv
    # (13x13, 512->1024) reached 123 GFLOP/s in 64 trials as NHWC, 52 as NCHW.
    conv_layout: str = "NCHW"


PRESETS = {p.name: p for p in (
    TargetPreset(
        "x86-avx512-vnni", {"kind": "llvm", "mcpu": "cascadelake"},
        "x86-64 with AVX-512 and VNNI (Intel Cascade Lake and newer, AMD Zen 4 and newer)",
        cpu_flags=("avx512f", "avx512bw", "avx512vl", "avx512_vnni"), conv_layout="NHWC"),
    TargetPreset(
        "x86-avx512", {"kind": "llvm", "mcpu": "skylake-avx512"},
        "x86-64 with AVX-512 (F/BW/VL/DQ), no VNNI",
        cpu_flags=("avx512f", "avx512bw", "avx512vl", "avx512dq"), conv_layout="NHWC"),
    TargetPreset(
        "x86-avx2", {"kind": "llvm", "mcpu": "haswell"},
        "x86-64 with AVX2 and FMA (Intel Haswell and newer, AMD Zen 1 and newer)",
        cpu_flags=("avx2", "fma"), conv_layout="NHWC"),
)}

# Widest first: the `x86` alias picks the first preset whose flags the host has.
X86_ORDER = ("x86-avx512-vnni", "x86-avx512", "x86-avx2")


def host_cpu_flags(cpuinfo="/proc/cpuinfo") -> set:
    for line in Path(cpuinfo).read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_preset(name: str, flags=None) -> TargetPreset:
    """The preset for a name; ``x86`` becomes the widest x86 preset this host supports."""
    if name == "x86":
        flags = host_cpu_flags() if flags is None else flags
        for candidate in X86_ORDER:
            if set(PRESETS[candidate].cpu_flags) <= flags:
                return PRESETS[candidate]
        raise UnknownTargetError("this host has no AVX2+FMA; no x86 preset fits it")
    if name not in PRESETS:
        raise UnknownTargetError(f"unknown target {name!r}; known: x86 (host), {', '.join(PRESETS)}")
    return PRESETS[name]


def target_json(preset: TargetPreset, num_cores: int | None = None) -> dict:
    return {**preset.target, "num-cores": num_cores or os.cpu_count() or 1}


def make_target(preset: TargetPreset, num_cores: int | None = None):
    import tvm

    return tvm.target.Target(target_json(preset, num_cores))


def check_host_can_run(preset: TargetPreset, flags=None):
    """Running code built for `preset` on a host without its ISA dies with SIGILL: refuse first."""
    flags = host_cpu_flags() if flags is None else flags
    missing = [f for f in preset.cpu_flags if f not in flags]
    if missing or not preset.host_runnable:
        raise UnknownTargetError(
            f"target {preset.name} cannot run on this host (missing CPU features: {', '.join(missing) or 'n/a'})")
