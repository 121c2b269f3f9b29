"""Spilling onto a full disk: a clear error, and nothing already stored is lost."""

import subprocess

import numpy as np
import pytest

import tray
from tray.exceptions import ObjectStoreFullError

MiB = 1 << 20


def _mount_tiny_tmpfs(path):
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else proc.stderr.strip() or "mount failed"


def test_a_full_spill_disk_is_a_clear_error(tmp_path):
    disk = tmp_path / "tiny"
    disk.mkdir()
    why = _mount_tiny_tmpfs(disk)
    if why is not None:
        pytest.skip(f"cannot mount a 4 MiB tmpfs to fill up here: {why}")
    try:
        tray.init(num_cpus=1, object_store_memory=64 * MiB, object_spilling_directory=str(disk))
        try:
            refs = [tray.put(np.zeros(20 * MiB // 8)) for _ in range(3)]
            with pytest.raises(ObjectStoreFullError, match="disk is full"):
                refs.append(tray.put(np.ones(20 * MiB // 8)))
            assert tray.get(refs[0])[0] == 0.0  # what was stored is intact
        finally:
            tray.shutdown()
    finally:
        subprocess.run(["umount", str(disk)], check=False)
