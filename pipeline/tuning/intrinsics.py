"""Register only the tensor intrinsics a target's design spaces can name.

Every MetaSchedule ``TuneContext`` runs ``import tvm.s_tir.tensor_intrin``, whose package import
registers every intrinsic TVM has: CUDA's, ROCm's, Hexagon's... about 78 s of CPU here (52 of
them CUDA's) in each tuning process, for a CPU target whose schedule rules can only name the x86,
ARM and RISC-V ones. Putting the package in place without running its ``__init__`` makes that
import free; the target kind's own intrinsic modules are then imported one by one.
"""

import importlib
import importlib.util
import sys

from ..errors import UnknownTargetError

PACKAGE = "tvm.s_tir.tensor_intrin"

# Target kind -> the modules of PACKAGE whose intrinsics its default schedule rules name.
INTRINSIC_MODULES = {
    "llvm": ("x86", "arm_cpu", "riscv_cpu"),
    "cuda": ("cuda",),
}


def _install_package_without_init():
    if PACKAGE not in sys.modules:
        spec = importlib.util.find_spec(PACKAGE)
        package = importlib.util.module_from_spec(spec)  # submodules importable, none imported yet
        sys.modules[PACKAGE] = package
        setattr(importlib.import_module("tvm.s_tir"), "tensor_intrin", package)


def register_for(kind: str):
    """Import the intrinsic modules of a target kind (``"llvm"``, ``"cuda"``)."""
    if kind not in INTRINSIC_MODULES:
        raise UnknownTargetError(f"no tensor intrinsics known for target kind {kind!r}; "
                                 f"known: {', '.join(INTRINSIC_MODULES)}")
    _install_package_without_init()
    for module in INTRINSIC_MODULES[kind]:
        importlib.import_module(f"{PACKAGE}.{module}")
