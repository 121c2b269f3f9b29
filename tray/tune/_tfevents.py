"""TensorBoard event files written directly: TFRecords of ``Event`` protobufs holding scalar
summaries, encoded here by hand (a few fields of the wire format) so that writing them imports
neither tensorboardX nor protobuf — ``import tensorboardX`` pulls in torch, a second of start-up.

Record: ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``.
Event: ``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string), ``summary``
(5, Summary); Summary: repeated ``value`` (1); Value: ``tag`` (1, string), ``simple_value`` (2, float).
"""

from __future__ import annotations

import os
import socket
import struct
import time


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # CRC-32C (Castagnoli), reflected
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    x = crc32c(data)
    return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(key: int, payload: bytes) -> bytes:
    return bytes([key]) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int = 0, file_version: str | None = None,
                 scalars: list[tuple[str, float]] | None = None) -> bytes:
    out = b"\x09" + struct.pack("<d", wall_time)
    if step:
        out += b"\x10" + _varint(step)
    if file_version is not None:
        out += _len_field(0x1A, file_version.encode())
    if scalars is not None:
        values = b"".join(_len_field(0x0A, _len_field(0x0A, tag.encode()) + b"\x15" + struct.pack("<f", value))
                          for tag, value in scalars)
        out += _len_field(0x2A, values)
    return out


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


class EventFile:
    """One ``events.out.tfevents.<time>.<host>`` file in ``directory``."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._file = open(os.path.join(directory, name), "ab")  # noqa: SIM115 - open for the trial's life
        self._file.write(record(encode_event(time.time(), file_version="brain.Event:2")))

    def scalars(self, step: int, values: list[tuple[str, float]]) -> None:
        self._file.write(record(encode_event(time.time(), int(step), scalars=values)))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
