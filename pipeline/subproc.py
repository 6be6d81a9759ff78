"""Running the external tools slimdet relies on (pip, debootstrap, dpkg, compilers)."""

import subprocess

from .errors import SlimdetError


def run_checked(cmd, what: str, error=SlimdetError, cwd=None) -> subprocess.CompletedProcess:
    """Run ``cmd``; on failure raise ``error`` naming ``what``, the command and its last output."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise error(f"{what} failed ({' '.join(str(c) for c in cmd)}):\n{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc
