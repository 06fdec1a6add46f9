"""Chunks: their layout in the file, CRCs, bit packing, and which stages a CODE chunk carries
(spec §3, §5)."""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np
from bitarray import bitarray

from .constants import CHUNK_PREFIX, IEND, MAX_CHUNKS, SIGNATURE, U32
from .header import Header, as_bytes, check_signature, type_name


class ChunkInfo(NamedTuple):
    """One chunk as laid out in the file (for ``ir2i info``).

    ``type`` is printable: bytes outside ``!``..``~`` appear as ``\\xNN``. ``offset`` is
    the byte position of the chunk's length field, ``length`` the declared data length.
    A chunk cut by the end of the file has ``offset + 12 + length > len(data)`` and
    ``crc_ok`` False.
    """

    type: str
    offset: int
    length: int
    crc_ok: bool


class Chunk(NamedTuple):
    ctype: bytes
    offset: int
    length: int

    @property
    def data_start(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


def is_letters(ctype: bytes) -> bool:
    return len(ctype) == 4 and all(65 <= b <= 90 or 97 <= b <= 122 for b in ctype)


def is_critical(ctype: bytes) -> bool:
    return not ctype[0] & 0x20  # PNG convention: uppercase first letter = critical


def chunk_parts(ctype: bytes, data: bytes) -> list[bytes]:
    crc = zlib.crc32(data, zlib.crc32(ctype))
    return [CHUNK_PREFIX.pack(len(data), ctype), data, U32.pack(crc)]


def pack_bits(bits01: np.ndarray) -> bytes:
    """MSB-first packing of a C-contiguous uint8 0/1 array, in memory order."""
    packed = bitarray(endian="big")
    packed.pack(memoryview(bits01).cast("B"))
    return packed.tobytes()


def unpack_bits(buf: memoryview) -> np.ndarray:
    """Inverse of ``pack_bits``: a flat, writable uint8 0/1 array."""
    bits = bitarray(endian="big")
    bits.frombytes(buf)
    return np.frombuffer(bits.unpack(), dtype=np.uint8).copy()


def crc_ok(data: bytes, chunk: Chunk) -> bool:
    view = memoryview(data)
    crc = zlib.crc32(view[chunk.offset + 4 : chunk.end - 4])  # type + data
    return crc == U32.unpack_from(data, chunk.end - 4)[0]


def code_span(header: Header, stage: int) -> tuple[int, int]:
    """(first stage, stage count) carried by the CODE chunk that starts at ``stage``."""
    if stage == 1:
        return 1, header.first_code_stages
    return stage, 1


def code_length(header: Header, stage: int) -> int:
    """Exact data length of a version-1 CODE chunk starting at ``stage`` (2-byte prefix +
    bits); in version 2, the most a CODE chunk may hold (see ``code_limit``)."""
    _, count = code_span(header, stage)
    return 2 + header.n_blocks * header.bits_per_stage * count // 8


def coded_blocks(counts: np.ndarray, stage: int) -> np.ndarray:
    """Raster indices of the blocks that a version-2 chunk of ``stage`` codes."""
    return np.flatnonzero(counts >= stage)


def code_limit(header: Header, counts: np.ndarray | None, stage: int) -> int:
    """Version 2: 3-byte prefix + the raw bits of the chunk's blocks, the longest it can be
    (every block's, when the stage map was not decoded)."""
    _, count = code_span(header, stage)
    blocks = header.n_blocks if counts is None else len(coded_blocks(counts, stage))
    return 3 + blocks * header.bits_per_stage * count // 8


def span_label(first: int, count: int) -> str:
    if first >= 1 and count == 1:
        return f"stage {first}"
    if first >= 1 and count > 1:
        return f"stages {first}-{first + count - 1}"
    return f"no valid stage (stage bytes {first}, {count})"


def stage_label(header: Header, stage: int) -> str:
    return span_label(*code_span(header, stage))


def chunk_layout(data: bytes) -> list[ChunkInfo]:
    """List the chunks as they lie in the file, up to IEND, the end of the data or
    ``MAX_CHUNKS`` chunks.

    Never raises for bad CRCs or bad chunk contents (that is what it reports); only
    input without the ir2i signature raises FormatError (TruncatedError for a cut one).
    """
    data = as_bytes(data)
    check_signature(data)
    layout: list[ChunkInfo] = []
    pos = len(SIGNATURE)
    while len(data) - pos >= 8 and len(layout) < MAX_CHUNKS:
        length, ctype = CHUNK_PREFIX.unpack_from(data, pos)
        chunk = Chunk(ctype, pos, length)
        intact = chunk.end <= len(data) and crc_ok(data, chunk)
        layout.append(ChunkInfo(type_name(ctype), pos, length, intact))
        if chunk.end > len(data) or ctype == IEND:
            break
        pos = chunk.end
    return layout
