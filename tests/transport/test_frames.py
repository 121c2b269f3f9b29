"""Frames and envelopes: round trips, limits, and a fuzz of the decoder with arbitrary input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.transport import FrameDecoder, FrameError, FrameTooLarge, ProtocolError
from tray.transport._codec import Kind, decode_envelope, dumps, encode, loads
from tray.transport._frames import frame_header


def _stream(frames: list[bytes]) -> bytes:
    return b"".join(frame_header(len(f)) + f for f in frames)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


def _decode_all(dec: FrameDecoder, chunks: list[bytes], via_view: bool) -> list[bytes]:
    """Feed chunks the way the peer does: big frames' bodies through pending_view/filled."""
    out: list[bytes] = []
    for chunk in chunks:
        mv = memoryview(chunk)
        while mv:
            pv = dec.pending_view() if via_view else None
            if pv is not None:
                n = min(len(pv), len(mv))
                pv[:n] = mv[:n]
                mv = mv[n:]
                f = dec.filled(n)
                if f is not None:
                    out.append(bytes(f))
            else:
                out += [bytes(f) for f in dec.feed(mv)]
                break
    return out


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.one_of(st.binary(max_size=300), st.integers(65_536, 70_000).map(lambda n: b"\x07" * n)), max_size=8
    ),
    cuts=st.lists(st.integers(0, 10**6), max_size=20),
    via_view=st.booleans(),
)
def test_valid_streams_split_anywhere_decode_to_the_same_frames(
    frames: list[bytes], cuts: list[int], via_view: bool
) -> None:
    data = _stream(frames)
    dec = FrameDecoder(max_frame=1 << 20)
    assert _decode_all(dec, _split(data, cuts), via_view) == frames
    assert dec.buffered == 0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 10**6), max_size=20), max_frame=st.integers(1, 600))
def test_arbitrary_bytes_only_yield_frames_or_frame_errors(data: bytes, cuts: list[int], max_frame: int) -> None:
    """Garbage never crashes the decoder with anything but FrameError, nor yields an oversized frame;
    and whatever it yields re-encodes to a prefix of the input."""
    dec = FrameDecoder(max_frame=max_frame)
    got: list[bytes] = []
    try:
        for chunk in _split(data, cuts):
            got += [bytes(f) for f in dec.feed(chunk)]
    except FrameError:
        pass
    assert all(len(f) <= max_frame for f in got)
    assert data.startswith(_stream(got))


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=200))
def test_arbitrary_envelopes_are_rejected_cleanly(frame: bytes) -> None:
    try:
        env = decode_envelope(frame, 1 << 20)
    except ProtocolError:
        return
    assert env[0] in Kind.ALL


def test_oversized_frame_is_refused_before_allocation() -> None:
    dec = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameTooLarge):
        dec.feed(frame_header(2**32 - 1))


def test_envelope_validation() -> None:
    import msgpack

    with pytest.raises(ProtocolError, match="unknown message kind"):
        decode_envelope(msgpack.packb([99, 0, None, None, None, []]), 1 << 20)
    with pytest.raises(ProtocolError):
        decode_envelope(b"\xc1garbage", 1 << 20)
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_envelope(msgpack.packb([Kind.TELL, 0, "a:1", "m", b"", [1 << 30]]), 1 << 20)


def test_out_of_band_buffers_are_separate_frames_without_copies() -> None:
    arr = np.arange(100_000, dtype=np.int64)
    big = b"x" * 200_000
    payload, bufs = dumps(((arr, big), {}))
    assert len(payload) < 1000  # the data is not in the pickle
    assert sum(b.nbytes for b in bufs) == arr.nbytes + len(big)
    assert any(np.shares_memory(np.frombuffer(b, dtype=np.uint8), arr) for b in bufs)  # no copy made
    frames = encode(Kind.TELL, 0, "x:1", "m", payload, bufs, max_chunk=1 << 20)
    assert any(f is b or (isinstance(f, memoryview) and f.obj is b.obj) for f in frames for b in bufs)
    (arr2, big2), _ = loads(payload, [bytes(b) for b in bufs])
    assert (arr2 == arr).all() and big2 == big


def test_buffers_above_the_chunk_size_are_split_and_reassembled() -> None:
    blob = bytes(range(256)) * 1000
    payload, bufs = dumps(blob)
    frames = encode(Kind.TELL, 0, "x:1", "m", payload, bufs, max_chunk=4096)
    dec = FrameDecoder(max_frame=8192)
    out = dec.feed(b"".join(bytes(f) for f in frames))
    env = decode_envelope(out[0], 1 << 30)
    assert env[5] == [len(blob)] and len(out) == 1 + -(-len(blob) // 4096)
    assert loads(env[4], [b"".join(out[1:])]) == blob
