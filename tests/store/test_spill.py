"""Spill files: round trip, every kind of damage is SpillCorrupt, a full disk is SpillDiskFull."""

import errno
import os

import numpy as np
import pytest

from tray.store import _spill
from tray.store._layout import pack, unpack
from tray.store._spill import SpillCorrupt, SpillDiskFull, restore, spill

HEAD = _spill._HEAD.size


@pytest.fixture
def obj(tmp_path):
    """An object file (as in /dev/shm) holding a packed array; (path, its bytes)."""
    data = pack({"x": np.arange(5000, dtype=np.int32), "s": "hello"}).to_bytes()
    path = tmp_path / "obj"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def spilled(obj, tmp_path):
    dst = tmp_path / "spill" / "obj"
    spill(str(obj[0]), str(dst))
    return dst


def test_spill_and_restore_round_trip(obj, tmp_path):
    src, data = obj
    dst = tmp_path / "new" / "dir" / "obj"  # the spill directory is made if need be
    assert spill(str(src), str(dst)) == len(data)
    assert dst.stat().st_size == HEAD + len(data)
    back = tmp_path / "back"
    assert restore(str(dst), str(back)) == len(data)
    assert back.read_bytes() == data
    got = unpack(back.read_bytes())
    assert (got["x"] == np.arange(5000)).all() and got["s"] == "hello"
    assert dst.exists()  # the spill copy stays (a later spill of the same object is free)


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "empty":
        data = b""
    elif how == "short header":
        data = data[: HEAD - 1]
    elif how == "truncated body":
        data = data[:-1]
    elif how == "extra byte":
        data = data + b"\0"
    elif how == "bad magic":
        data[:4] = b"NOPE"
    elif how == "size field":
        data[4] ^= 0x01
    elif how == "crc field":
        data[12] ^= 0xFF
    elif how.startswith("body byte"):
        pos = HEAD + int(how.split()[-1]) % (len(data) - HEAD)
        data[pos] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, message", [
    ("empty", "truncated"),
    ("short header", "truncated"),
    ("truncated body", "truncated"),
    ("extra byte", "wrong size"),  # the size field says how long it must be
    ("bad magic", "not a tray spill file"),
    ("size field", "truncated|wrong size"),
    ("crc field", "checksum"),
    ("body byte 0", "checksum"),
    ("body byte 777", "checksum"),
    ("body byte -1", "checksum"),
])
def test_a_damaged_spill_file_is_spill_corrupt(spilled, tmp_path, how, message):
    _damage(spilled, how)
    back = tmp_path / "back"
    with pytest.raises(SpillCorrupt, match=message) as info:
        restore(str(spilled), str(back))
    assert str(spilled) in str(info.value)  # names the file
    assert not back.exists()  # nothing half-restored


def test_a_missing_spill_file_is_spill_corrupt(tmp_path):
    with pytest.raises(SpillCorrupt, match="missing"):
        restore(str(tmp_path / "nothing"), str(tmp_path / "back"))
    assert not (tmp_path / "back").exists()


def _fail_writes_after(monkeypatch, n, err):
    """The (n+1)-th and later ``os.pwrite`` calls fail with ``err``."""
    real, calls = os.pwrite, [0]

    def pwrite(fd, data, pos):
        calls[0] += 1
        if calls[0] > n:
            raise OSError(err, os.strerror(err))
        return real(fd, data, pos)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return calls


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("after", [0, 1])  # the header fails, or the body after the header went
def test_a_full_disk_is_spill_disk_full_and_leaves_no_file(obj, tmp_path, monkeypatch, err, after):
    src, data = obj
    dst = tmp_path / "spill" / "obj"
    calls = _fail_writes_after(monkeypatch, after, err)
    with pytest.raises(SpillDiskFull) as info:
        spill(str(src), str(dst))
    assert calls[0] == after + 1
    assert isinstance(info.value, OSError) and info.value.errno == err
    assert "disk is full" in str(info.value) and str(dst.parent) in str(info.value)
    assert f"{len(data):,}-byte" in str(info.value)
    assert not dst.exists()
    assert src.read_bytes() == data  # the object itself is untouched


def test_no_room_for_the_spill_file_itself_is_spill_disk_full(obj, tmp_path, monkeypatch):
    src, _ = obj
    dst = tmp_path / "spill" / "obj"
    real_open = os.open

    def fake_open(path, flags, *args):
        if str(path) == str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(SpillDiskFull):
        spill(str(src), str(dst))
    assert not dst.exists()


def test_another_write_error_is_not_called_a_full_disk(obj, tmp_path, monkeypatch):
    src, _ = obj
    dst = tmp_path / "spill" / "obj"
    _fail_writes_after(monkeypatch, 1, errno.EIO)
    with pytest.raises(OSError) as info:
        spill(str(src), str(dst))
    assert type(info.value) is OSError and info.value.errno == errno.EIO
    assert not dst.exists()


def test_a_failed_restore_leaves_no_partial_file(spilled, tmp_path, monkeypatch):
    back = tmp_path / "back"
    _fail_writes_after(monkeypatch, 0, errno.ENOSPC)
    with pytest.raises(OSError) as info:
        restore(str(spilled), str(back))
    assert info.value.errno == errno.ENOSPC and not isinstance(info.value, SpillCorrupt)
    assert not back.exists()
    monkeypatch.undo()
    restore(str(spilled), str(back))  # the spill file is intact: a later restore works
    assert unpack(back.read_bytes())["s"] == "hello"


def test_writes_larger_than_one_call_are_split(obj, tmp_path, monkeypatch):
    """A short write (or a body over the per-call cap) continues where it stopped."""
    src, data = obj
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, buf, pos: real(fd, bytes(buf)[:1000], pos))
    dst = tmp_path / "spill" / "obj"
    spill(str(src), str(dst))
    back = tmp_path / "back"
    restore(str(dst), str(back))
    assert back.read_bytes() == data
