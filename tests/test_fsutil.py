"""Atomic writes keep the usual file mode: an exported library others cannot read is no export."""

import os

from pipeline.fsutil import atomic_write_bytes, atomic_write_via


def test_atomically_written_files_get_the_umask_mode_not_mkstemps_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        a = atomic_write_bytes(tmp_path / "a.json", b"{}")
        b = atomic_write_via(tmp_path / "b.so", lambda p: open(p, "wb").write(b"lib"))
    finally:
        os.umask(old)
    assert (a.stat().st_mode & 0o777) == 0o644 and (b.stat().st_mode & 0o777) == 0o644
    assert b.read_bytes() == b"lib"
