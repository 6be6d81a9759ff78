"""Ahead-of-time CUDA libraries built on a machine without a GPU, and the checks around them.

TVM compiles CUDA kernels to device code only when its CUDA runtime sidecar
(``libtvm_runtime_cuda.so``) is loaded, and that library links against the driver,
``libcuda.so.1``. Without a driver TVM silently embeds CUDA C source instead, which the deploy
host would have to compile. So at build time we load a stub driver of our own (every call
answers "no device"), made once from the symbols the sidecar imports, and ask TVM to compile
with nvcc into a fatbin for the preset's arch. The stub lives only in this process: the exported
library links against nothing new and finds the real driver on the GPU host.

The fatbin reader and the GPU check import nothing beyond the standard library: the runtime
(``pipeline.runtime.predictor``) uses them on deploy hosts.
"""

import os
import shutil
import struct
from contextlib import contextmanager
from pathlib import Path

from .errors import ArtifactError, BuildError
from .subproc import run_checked

FATBIN_MAGIC = 0xBA55ED50
FATBIN_KINDS = {1: "ptx", 2: "elf"}


def fatbin_entries(library) -> list:
    """(kind, sm) of every device-code entry in every fatbin embedded in ``library``:
    kind "elf" is compiled machine code (SASS) for exactly that sm, "ptx" needs a JIT."""
    data = Path(library).read_bytes()
    entries, start = [], data.find(struct.pack("<I", FATBIN_MAGIC))
    while start >= 0:
        _, _, header_size, body_size = struct.unpack_from("<IHHQ", data, start)
        pos, end = start + header_size, start + header_size + body_size
        while pos + 32 <= end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", data, pos)
            arch = struct.unpack_from("<I", data, pos + 28)[0]
            entries.append((FATBIN_KINDS.get(kind, f"kind{kind}"), f"sm_{arch}"))
            if entry_header == 0:
                break
            pos += entry_header + entry_size
        start = data.find(struct.pack("<I", FATBIN_MAGIC), max(end, start + 4))
    return entries


def local_gpu_arch(tvm) -> str | None:
    """The arch of this host's first CUDA GPU ("sm_90"), or None without a GPU or driver."""
    device = tvm.cuda(0)
    return "sm_" + device.compute_version.replace(".", "") if device.exist else None


def check_gpu(gpu_arch: str, tvm, library_name: str):
    """Refuse, with the reason, to run a library on a host without a GPU of its arch."""
    found = local_gpu_arch(tvm)
    if found is None:
        raise ArtifactError(f"{library_name} is a CUDA library for {gpu_arch}; this host has no CUDA GPU "
                            f"(or no NVIDIA driver)")
    if found != gpu_arch:
        raise ArtifactError(f"{library_name} carries device code for {gpu_arch} only; this GPU is {found}: "
                            f"compile for its preset (cuda-{found.replace('_', '')})")


def _cache_dir() -> Path:
    from .assets import cache_dir

    return cache_dir() / "cuda-driver-stub"


def _stub_source(symbols) -> str:
    """C for a libcuda.so.1 whose every entry point reports CUDA_ERROR_NO_DEVICE (100)."""
    lines = ["typedef int CUresult;",
             "CUresult cuGetErrorName(CUresult e, const char **s) { *s = \"CUDA_ERROR_NO_DEVICE\"; return 0; }",
             "CUresult cuGetErrorString(CUresult e, const char **s) "
             "{ *s = \"no CUDA driver (slimdet build-time stub)\"; return 0; }"]
    lines += [f"CUresult {name}(void) {{ return 100; }}" for name in symbols
              if name not in ("cuGetErrorName", "cuGetErrorString")]
    return "\n".join(lines) + "\n"


def _driver_symbols(sidecar: Path) -> list:
    out = run_checked(["nm", "-D", "--undefined-only", sidecar], "listing the CUDA driver symbols", BuildError).stdout
    return sorted({line.split()[-1].split("@")[0] for line in out.splitlines()
                   if line.split() and line.split()[-1].startswith("cu") and line.split()[-1][2:3].isupper()})


def _build_stub(sidecar: Path) -> Path:
    stub = _cache_dir() / "libcuda.so.1"
    if stub.exists():
        return stub
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise BuildError("building CUDA libraries here needs a C compiler (gcc) for the driver stub")
    stub.parent.mkdir(parents=True, exist_ok=True)
    source = stub.parent / "stub.c"
    source.write_text(_stub_source(_driver_symbols(sidecar)))
    partial = stub.parent / f".libcuda.so.1.{os.getpid()}"
    run_checked([compiler, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", partial, source],
                "building the CUDA driver stub", BuildError)
    os.replace(partial, stub)
    return stub


def enable_cuda_codegen():
    """Load TVM's CUDA runtime sidecar, with the stub driver when no real one is installed."""
    import ctypes

    from tvm.base import _LOADED_LIBS
    from tvm_ffi.libinfo import load_lib_ctypes

    if "tvm_runtime_cuda" in _LOADED_LIBS:
        return
    lib_dir = Path(_LOADED_LIBS["tvm_runtime"]._name).resolve().parent
    sidecar = lib_dir / "libtvm_runtime_cuda.so"
    if not sidecar.exists():
        raise BuildError(f"this TVM wheel has no CUDA runtime ({sidecar} is missing)")
    try:
        ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        ctypes.CDLL(str(_build_stub(sidecar)), mode=ctypes.RTLD_GLOBAL)
    try:
        _LOADED_LIBS["tvm_runtime_cuda"] = load_lib_ctypes(package="tvm", target_name="tvm_runtime_cuda",
                                                           extra_lib_paths=[lib_dir], mode="RTLD_LOCAL")
    except OSError as e:
        raise BuildError(f"cannot load TVM's CUDA runtime ({e}); is the CUDA toolkit's libcudart installed?") from None


@contextmanager
def nvcc_build(tvm_target):
    """Inside: ``tvm.compile`` for ``tvm_target`` embeds nvcc-compiled fatbins, never CUDA source."""
    if shutil.which("nvcc") is None:
        raise BuildError("building CUDA libraries needs nvcc (the CUDA toolkit) on PATH")
    enable_cuda_codegen()
    import tvm.support.nvcc  # noqa: F401  registers tvm_callback_cuda_compile

    previous = os.environ.get("TVM_CUDA_COMPILE_MODE")
    os.environ["TVM_CUDA_COMPILE_MODE"] = "nvcc"
    try:
        with tvm_target:
            yield
    finally:
        if previous is None:
            os.environ.pop("TVM_CUDA_COMPILE_MODE", None)
        else:
            os.environ["TVM_CUDA_COMPILE_MODE"] = previous


def check_device_code(library, gpu_arch: str):
    """The exported library must carry machine code for its arch: a build that fell back to
    CUDA source or PTX would compile on the deploy host, or fail there."""
    entries = fatbin_entries(library)
    if ("elf", gpu_arch) not in entries:
        found = ", ".join(f"{k} {a}" for k, a in entries) or "no fatbin at all"
        raise BuildError(f"{Path(library).name} carries no compiled {gpu_arch} code ({found})")
