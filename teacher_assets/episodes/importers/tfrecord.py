"""TFRecord framing, read without TensorFlow, every CRC checked.

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``
(little endian). A bad data CRC spoils one record and the next one can still be read; a bad length
CRC or a short read means the framing is lost, so the rest of that file is reported once.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator, Union

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    import crc32c

    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class RecordError(Exception):
    """One record that cannot be used; ``framing_lost`` when nothing after it in the file can be trusted."""

    def __init__(self, code: str, reason: str, *, framing_lost: bool):
        super().__init__(reason)
        self.code, self.reason, self.framing_lost = code, reason, framing_lost


def iter_records(path: Path) -> Iterator[Union[bytes, RecordError]]:
    """The records of one file in order: payload bytes, or a ``RecordError`` in its place.

    After an error with ``framing_lost`` (or one reading the file) the iterator ends."""
    try:
        yield from _records(path)
    except OSError as exc:
        yield RecordError("unreadable", f"{path.name} cannot be read: {exc}", framing_lost=True)


def _records(path: Path) -> Iterator[Union[bytes, RecordError]]:
    with open(path, "rb") as f:
        n = 0
        while True:
            head = f.read(_HEADER.size)
            if not head:
                return
            if len(head) < _HEADER.size:
                yield RecordError("truncated_record", f"record {n}: file ends inside the record header "
                                  f"({len(head)} of {_HEADER.size} bytes)", framing_lost=True)
                return
            length, length_crc = _HEADER.unpack(head)
            if masked_crc32c(head[:8]) != length_crc:
                yield RecordError("bad_length_crc", f"record {n}: the length field fails its CRC; the rest of "
                                  f"{path.name} cannot be framed", framing_lost=True)
                return
            data = f.read(length)
            foot = f.read(_FOOTER.size)
            if len(data) < length or len(foot) < _FOOTER.size:
                yield RecordError("truncated_record", f"record {n}: file ends inside the record "
                                  f"({len(data)} of {length} data bytes)", framing_lost=True)
                return
            if masked_crc32c(data) != _FOOTER.unpack(foot)[0]:
                yield RecordError("bad_crc", f"record {n}: the data fails its CRC (corrupt bytes)", framing_lost=False)
            else:
                yield data
            n += 1
