"""The value layout: round trips, alignment, zero-copy reads, writing to files, bad input."""

import mmap
import os
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from tray.store import _layout
from tray.store._layout import ALIGN, MAGIC, pack, unpack

# numpy's own in-band pickling loses a non-native byte order of datetimes and strings
dtypes = (npst.scalar_dtypes() | npst.byte_string_dtypes(max_len=4) | npst.unicode_string_dtypes(max_len=4)).filter(
    lambda d: d.isnative or d.kind in "biufc")
IN_BAND_KINDS = "OmM"  # object arrays, datetimes and timedeltas: numpy pickles them in band
shapes = npst.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


@st.composite
def arrays(draw):
    """Arrays in C order, F order, or not contiguous at all (strided views of a bigger one)."""
    arr = draw(npst.arrays(dtypes, shapes))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided" and arr.ndim:
        # numpy pickles a non-contiguous array in band and loses a non-native byte order: native only
        arr = arr.astype(arr.dtype.newbyteorder("="))
        arr = np.repeat(arr, 2, axis=-1)[..., ::2]  # same values, every other element of a copy
    return arr


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
           | st.binary(max_size=300) | st.binary(max_size=300).map(bytearray))
values = st.recursive(
    scalars | arrays(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def assert_same(got, want):
    assert type(got) is type(want), (got, want)
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()  # bitwise (NaN payloads, NaT included)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    else:
        assert got == want


def out_of_band_arrays(value):
    """The arrays in ``value`` that pickle protocol 5 hands out of band (contiguous, not object)."""
    if isinstance(value, np.ndarray):
        contiguous = value.flags.c_contiguous or value.flags.f_contiguous
        return [value] if contiguous and value.dtype.kind not in IN_BAND_KINDS else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [a for v in value for a in out_of_band_arrays(v)]
    return []


@settings(max_examples=150, deadline=None)
@given(values)
def test_round_trip(value):
    packed = pack(value)
    data = packed.to_bytes()
    assert len(data) == packed.size
    assert_same(unpack(data), value)
    assert_same(unpack(memoryview(data)), value)


@settings(max_examples=100, deadline=None)
@given(values)
def test_buffers_are_aligned_and_within_the_layout(value):
    packed = pack(value)
    assert len(packed.buffers) == len(out_of_band_arrays(value))
    end = len(packed.header) + len(packed.pickled)
    for off, buf in zip(packed.offsets, packed.buffers, strict=True):
        assert off % ALIGN == 0 and off >= end and off - end < ALIGN
        end = off + buf.nbytes
    assert packed.size == end
    assert packed.out_of_band == sum(a.nbytes for a in out_of_band_arrays(value))


@settings(max_examples=100, deadline=None)
@given(arr=arrays().filter(lambda a: a.size and out_of_band_arrays(a)))
def test_arrays_read_back_are_read_only_views_of_the_buffer(arr, tmp_path_factory):
    path = tmp_path_factory.mktemp("layout") / "obj"
    with open(path, "wb") as f:
        pack({"a": arr}).write_to(f.fileno())
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    got = unpack(memoryview(mm))["a"]
    assert_same(got, arr)
    assert not got.flags.writeable
    assert np.shares_memory(got, np.frombuffer(mm, np.uint8))  # no copy: it is the mapping's memory
    assert got.ctypes.data % ALIGN == 0  # the mapping is page-aligned, so the offset's alignment is real
    assert got.flags.f_contiguous == arr.flags.f_contiguous and got.flags.c_contiguous == arr.flags.c_contiguous
    with pytest.raises(ValueError, match="read-only"):
        got.flat[0] = got.flat[0]


def test_arrays_read_from_bytes_share_them():
    arr = np.arange(1000, dtype=np.float64)
    data = pack([arr, arr[::-1].copy()]).to_bytes()
    a, b = unpack(data)
    assert np.shares_memory(a, np.frombuffer(data, np.uint8)) and np.shares_memory(b, np.frombuffer(data, np.uint8))
    assert not a.flags.writeable and (a == arr).all() and (b == arr[::-1]).all()


@settings(max_examples=60, deadline=None)
@given(value=values, offset=st.integers(0, 200), max_write=st.integers(1, 300), iov_max=st.integers(1, 4),
       cap=st.none() | st.integers(1, 150))
def test_write_to_writes_exactly_to_bytes(value, offset, max_write, iov_max, cap, tmp_path_factory,
                                          monkeypatch_module):
    """Whatever the batching (iov count, bytes per call) and however short the kernel's writes."""
    monkeypatch_module.setattr(_layout, "_MAX_WRITE", max_write)
    monkeypatch_module.setattr(_layout, "_IOV_MAX", iov_max)
    real = os.pwritev
    if cap is not None:  # the kernel writes at most `cap` bytes per call
        monkeypatch_module.setattr(os, "pwritev",
                                   lambda fd, bufs, pos: os.pwrite(fd, b"".join(bytes(b) for b in bufs)[:cap], pos))
    try:
        packed = pack(value)
        path = tmp_path_factory.mktemp("layout") / "obj"
        with open(path, "wb") as f:
            packed.write_to(f.fileno(), offset)
        assert path.read_bytes() == bytes(offset) + packed.to_bytes()
    finally:
        monkeypatch_module.undo()
        assert os.pwritev is real


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@settings(max_examples=100, deadline=None)
@given(value=values, data=st.data())
def test_a_truncated_layout_raises_value_error(value, data):
    full = pack(value).to_bytes()
    cut = data.draw(st.integers(0, len(full) - 1))
    with pytest.raises(ValueError):
        unpack(full[:cut])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_value_error(garbage):
    with pytest.raises(ValueError):
        unpack(garbage)


@pytest.mark.parametrize("pickled", [b"", b"\xff\xff\xff", b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00"])
def test_a_bad_pickle_behind_a_good_header_raises_value_error(pickled):
    data = _layout._HEAD.pack(MAGIC, 0, len(pickled)) + pickled
    with pytest.raises(ValueError, match="corrupted"):
        unpack(data)


def test_spans_that_lie_outside_the_layout_or_overlap_the_pickle_raise_value_error():
    good = pack(np.arange(100)).to_bytes()
    (off, length), head = _layout._SPAN.unpack_from(good, _layout._HEAD.size), _layout._HEAD.size
    for bad_off, bad_len in [(off, length + 1), (len(good), 1), (0, length), (2**63, 2**63)]:
        bad = good[:head] + _layout._SPAN.pack(bad_off, bad_len) + good[head + _layout._SPAN.size:]
        with pytest.raises(ValueError, match="outside"):
            unpack(bad)
    huge_count = _layout._HEAD.pack(MAGIC, 2**32 - 1, 0)  # claims 4 billion buffers
    with pytest.raises(ValueError, match="truncated"):
        unpack(huge_count + bytes(64))


def test_an_unpicklable_value_raises_type_error_naming_it():
    with pytest.raises(TypeError, match=r"cannot serialize \{'lock': <unlocked _thread.lock.*_thread.lock") as info:
        pack({"lock": threading.Lock()})
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(TypeError, match=r"cannot serialize \[0, 1, 2.*\.\.\.: ") as info:  # a long repr is cut
        pack([*range(1000), threading.Lock()])
    assert len(str(info.value).split(": ")[0]) < 150


def test_bytes_and_bytearray_keep_their_types():
    got = unpack(pack([b"x" * 10, bytearray(b"y" * 10), memoryview(b"z" * 3).tobytes()]).to_bytes())
    assert got == [b"x" * 10, bytearray(b"y" * 10), b"zzz"] and type(got[1]) is bytearray


def test_pickle_stream_is_plain_protocol_5():
    packed = pack(np.zeros(3))
    assert packed.pickled[:2] == b"\x80\x05"
    assert pickle.loads(packed.pickled, buffers=packed.buffers).tolist() == [0.0, 0.0, 0.0]
