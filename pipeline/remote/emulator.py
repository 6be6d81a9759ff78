"""An emulated aarch64 board on this machine: qemu-user running an arm64 Debian userland with the
TVM runtime, numpy and the RPC server's needs, built once into the cache (about a minute and
200 MB of downloads from Debian and PyPI; never committed).

No chroot and no binfmt: ``qemu-aarch64 -L <rootfs>`` runs the arm64 Python directly, and a
``sitecustomize`` points ``sys.executable`` at the host-side wrapper script, because TVM's RPC
server re-executes ``sys.executable`` and an arm64 binary cannot be exec'd without binfmt.
Timings taken here are EMULATED: they say nothing about any ARM board.
"""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..assets import cache_dir
from ..errors import SlimdetError
from ..subproc import run_checked

DEBIAN_SUITE = "bookworm"  # its python3 is 3.11, the ABI of the aarch64 wheels below
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3", "libpython3.11")
PYTHON = "usr/bin/python3.11"
SITE = "opt/slimdet/site"
# Host tools, with the Debian packages that provide them.
HOST_TOOLS = {"qemu-aarch64": "qemu-user", "debootstrap": "debootstrap"}
# Runtime-only TVM on the device: the compiler library is 240 MB that a board never needs.
DROPPED_FILES = ("tvm/lib/libtvm_compiler.so",)
SITECUSTOMIZE = """import os, sys
# TVM's RPC server re-executes sys.executable: make that the host-side qemu wrapper.
sys.executable = os.environ.get("SLIMDET_EMULATED_PYTHON", sys.executable)
"""


class EmulatorError(SlimdetError):
    pass


def device_wheels() -> list:
    """The device gets the same TVM, ffi and numpy versions as the host (records and libraries
    made here must load there), plus what the RPC server and the Predictor import."""
    from importlib.metadata import version

    pinned = [f"{name}=={version(name)}" for name in ("apache-tvm", "apache-tvm-ffi", "numpy", "pillow")]
    return [*pinned, "psutil", "cloudpickle", "tornado", "ml_dtypes"]


@dataclass(frozen=True)
class EmulatedPython:
    root: Path

    @property
    def python(self) -> Path:
        """A host executable that runs the arm64 Python under qemu (use it like ``python3``)."""
        return self.root / "bin" / "python3"

    @property
    def runtime_extra_library(self) -> Path:
        # MetaSchedule's RPC runner fills inputs with random_fill_for_measure, which lives here.
        return self.root / "rootfs" / SITE / "tvm" / "lib" / "libtvm_runtime_extra.so"

    def run(self, args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], **kwargs)


def _require_host_tools():
    missing = [f"{tool} (Debian: {package})" for tool, package in HOST_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise EmulatorError("the emulated aarch64 device needs " + ", ".join(missing) +
                            ": apt-get install qemu-user debootstrap")


def _step(message):
    print(f"[emulator] {message}", file=sys.stderr, flush=True)


def _run(cmd, what):
    run_checked(cmd, what, EmulatorError)


def _build_rootfs(rootfs: Path):
    _step(f"debootstrap arm64 {DEBIAN_SUITE} ({', '.join(DEBIAN_PACKAGES)}) into {rootfs}")
    _run(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
          DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR], "debootstrap")
    # --foreign unpacks only the base; the second stage would need a chroot. Unpacking every
    # fetched package is all a user-mode emulator needs.
    debs = sorted((rootfs / "var/cache/apt/archives").glob("*.deb"))
    _step(f"unpacking {len(debs)} packages")
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(rootfs)], f"unpacking {deb.name}")
    for deb in debs:
        deb.unlink()
    wheels = device_wheels()
    _step(f"installing aarch64 wheels: {' '.join(wheels)}")
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(rootfs / SITE),
          "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11", "--implementation", "cp",
          "--only-binary=:all:", *wheels], "pip install of the aarch64 wheels")
    for name in DROPPED_FILES:
        (rootfs / SITE / name).unlink(missing_ok=True)
    (rootfs / SITE / "sitecustomize.py").write_text(SITECUSTOMIZE)


def _write_wrapper(root: Path):
    rootfs = root / "rootfs"
    wrapper = root / "bin" / "python3"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f"""#!/bin/sh
# The arm64 Python of slimdet's emulated device, run by qemu-user. EMULATED: not ARM timings.
export SLIMDET_EMULATED_PYTHON="$0"
export PYTHONPATH="{rootfs / SITE}${{SLIMDET_DEVICE_PYTHONPATH:+:$SLIMDET_DEVICE_PYTHONPATH}}"
export TVM_USE_RUNTIME_LIB=1
exec qemu-aarch64 -L "{rootfs}" "{rootfs / PYTHON}" "$@"
""")
    wrapper.chmod(0o755)


def emulated_aarch64(cache=None) -> EmulatedPython:
    """The emulated device's Python, built on first use. A half-built userland (an interrupted
    build) is never used: it is built aside and moved into place whole."""
    root = Path(cache or cache_dir()) / "aarch64-userland"
    if not (root / "rootfs" / SITE / "sitecustomize.py").exists():
        _require_host_tools()
        building = root.with_name(root.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        _build_rootfs(building / "rootfs")
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
    _write_wrapper(root)  # cheap, and keeps the paths right if the cache moved
    emulated = EmulatedPython(root)
    check = emulated.run(["-c", "import tvm, numpy; print(tvm.__version__)"], capture_output=True, text=True)
    if check.returncode:
        raise EmulatorError(f"the emulated aarch64 Python in {root} does not start: {check.stderr[-2000:]}")
    return emulated
