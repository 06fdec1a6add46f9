"""Reader and writer of the ``.ir2i`` container; format-spec.md is the byte-level contract.

The container is shaped like PNG: an 8-byte signature, then chunks that each carry a
CRC-32. Every progressive stage after the first code has its own chunk, so a file cut
after any complete chunk still decodes to the stages it holds, and damage is confined
to the chunk it hits.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from bitarray import bitarray

from . import entropy
from .errors import (
    CorruptDataError,
    FormatError,
    Ir2iError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
    UsageError,
)

# PNG's signature with "IR2" in place of "PNG": the high byte catches 7-bit channels,
# CR LF catches LF<->CRLF rewriting, 0x1A stops DOS `type`, the final LF catches LF->CRLF.
SIGNATURE = b"\x89IR2\r\n\x1a\n"
FORMAT_VERSION = 2  # 2: stage-count map and entropy-coded codes; 1: raw bits, still read
KNOWN_FLAGS = 0x0000  # no format version defines flag bits

BLOCK_SIZE = 32
BITS_PER_STAGE = 128
FIRST_CODE_STAGES = 2
MIN_STAGES = 2
MAX_STAGES = 8
DEFAULT_BAND_ROWS = 16
# 2**28 pixels (~268 MP, e.g. 16384 x 16384): the unpacked stage arrays of such an image
# take at most 8 x 33.5 MB, well within a desktop's memory.
DEFAULT_MAX_PIXELS = 2**28

MAX_CHUNK_LENGTH = 2**31 - 1  # as in PNG: lengths stay positive in signed 32-bit readers
MAX_HEAD_LENGTH = 4096  # any version's HEAD must fit, so a lying length is caught early
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 8, 256
MIN_BITS_PER_STAGE, MAX_BITS_PER_STAGE = 8, 4096
MAX_MODEL_NAME_BYTES = 255

HEAD = b"HEAD"
SMAP = b"SMAP"  # version 2: each block's stage count
CODE = b"CODE"
IEND = b"IEND"
# Version 2 payload codings (the byte after a CODE chunk's stage pair, SMAP's first byte).
CODING_RAW = 0
CODING_RANGE = 1

# version u8, flags u16, width u32, height u32, block_size u16, bits_per_stage u16,
# stages u8, first_code_stages u8, band_rows u16, model_digest 16s, model_name length u8
_HEAD_FIXED = struct.Struct(">BHIIHHBBH16sB")
_CHUNK_PREFIX = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_RESYNC_TRIES = 64  # resync search: bounds the work a file full of fake chunk headers causes
# The most chunks a reader walks: a file has 2 + stages + its map and a few ancillary chunks,
# so a file of thousands of tiny chunks is forged, and walking it would cost a Python step
# (and a warning) each.
MAX_CHUNKS = 1024

# Well-known signatures, to tell users what they passed instead of an .ir2i file.
_OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (e.g. WebP)"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)


@dataclass(frozen=True)
class Header:
    """Everything a decoder needs before the codes; validated on construction."""

    width: int
    height: int
    stages: int
    model_name: str
    model_digest: bytes  # 16 bytes identifying the exact model weights
    block_size: int = BLOCK_SIZE
    bits_per_stage: int = BITS_PER_STAGE
    first_code_stages: int = FIRST_CODE_STAGES
    band_rows: int = DEFAULT_BAND_ROWS
    flags: int = 0

    def __post_init__(self) -> None:
        # An invalid Header is a programmer error on the writing side: fail at construction
        # rather than produce a file that every reader must refuse.
        ints = ("width", "height", "stages", "block_size", "bits_per_stage",
                "first_code_stages", "band_rows", "flags")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"invalid header: {name} must be an int, got {value!r}")
            # numpy ints are stored as Python ints: fixed-width products could overflow.
            object.__setattr__(self, name, int(value))
        if not isinstance(self.model_name, str):
            raise ValueError("invalid header: model_name must be a str")
        if not isinstance(self.model_digest, bytes):
            raise ValueError("invalid header: model_digest must be bytes")
        try:
            name_bytes = self.model_name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("invalid header: model_name is not encodable as UTF-8") from exc
        problem = _header_problem(
            flags=self.flags, width=self.width, height=self.height,
            block_size=self.block_size, bits_per_stage=self.bits_per_stage,
            stages=self.stages, first_code_stages=self.first_code_stages,
            band_rows=self.band_rows, model_digest=self.model_digest, name_bytes=name_bytes,
        )
        if problem is not None:
            raise ValueError(f"invalid header: {problem[1]}")

    @property
    def blocks_y(self) -> int:
        return -(-self.height // self.block_size)

    @property
    def blocks_x(self) -> int:
        return -(-self.width // self.block_size)

    @property
    def n_blocks(self) -> int:
        return self.blocks_y * self.blocks_x


@dataclass(frozen=True)
class Container:
    """What a read found: the header, the complete stages, and what else was there."""

    header: Header
    stage_bits: list[np.ndarray]  # index 0 = stage 1; each (n_blocks, bits_per_stage) uint8 0/1
    ancillary: dict[bytes, bytes]  # ancillary chunks by type, e.g. b"aLPH"
    complete: bool  # every declared stage and the IEND chunk were read intact
    warnings: list[str]  # one-line notes on truncation, skipped damage, ignored bytes
    version: int = 1
    # Version 2: each block's stage count (n_blocks,) uint8 in 2..stages; blocks whose count
    # is below s have all-zero bits in stage_bits[s-1]. None in version 1 (every block has all).
    stage_counts: np.ndarray | None = None

    @property
    def stages_found(self) -> int:
        return len(self.stage_bits)

    def block_stages(self) -> np.ndarray:
        """Stages each block has in this read: its count, capped by the stages present."""
        found = np.full(self.header.n_blocks, self.stages_found, np.uint8)
        return found if self.stage_counts is None else np.minimum(self.stage_counts, found)


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


# --------------------------------------------------------------------------- helpers


def _type_name(ctype: bytes) -> str:
    """Printable form of a chunk type, safe to put in a one-line message."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E else f"\\x{b:02x}" for b in ctype)


def _is_letters(ctype: bytes) -> bool:
    return len(ctype) == 4 and all(65 <= b <= 90 or 97 <= b <= 122 for b in ctype)


def _is_critical(ctype: bytes) -> bool:
    return not ctype[0] & 0x20  # PNG convention: uppercase first letter = critical


def _header_problem(
    *, flags: int, width: int, height: int, block_size: int, bits_per_stage: int,
    stages: int, first_code_stages: int, band_rows: int, model_digest: bytes,
    name_bytes: bytes,
) -> tuple[type[Ir2iError], str] | None:
    """First thing wrong with these header fields, as (error class, detail), or None.

    Shared by the writer (which raises ValueError) and the reader (which raises the
    class), so both sides enforce one rule set.
    """
    if flags & ~KNOWN_FLAGS or not 0 <= flags <= 0xFFFF:
        return UnsupportedVersionError, f"unknown feature flags 0x{flags:04x}"
    for name, value in (("width", width), ("height", height)):
        if not 1 <= value <= 0xFFFFFFFF:
            return FormatError, f"{name} is {value} (must be 1..4294967295)"
    if not (MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE and block_size & (block_size - 1) == 0):
        return FormatError, f"block size is {block_size} (must be a power of 2 in 8..256)"
    if not MIN_BITS_PER_STAGE <= bits_per_stage <= MAX_BITS_PER_STAGE or bits_per_stage % 8:
        return FormatError, (
            f"bits per stage is {bits_per_stage} (must be a multiple of 8 in 8..4096)"
        )
    if not MIN_STAGES <= stages <= MAX_STAGES:
        return FormatError, f"{stages} stages declared (must be {MIN_STAGES}..{MAX_STAGES})"
    if first_code_stages != FIRST_CODE_STAGES:
        return FormatError, (
            f"the first code holds {first_code_stages} stages (must be {FIRST_CODE_STAGES})"
        )
    if not 1 <= band_rows <= 0xFFFF:
        return FormatError, f"band height is {band_rows} block rows (must be 1..65535)"
    if len(model_digest) != 16:
        return FormatError, f"model digest is {len(model_digest)} bytes (must be 16)"
    if not 1 <= len(name_bytes) <= MAX_MODEL_NAME_BYTES:
        return FormatError, f"model name is {len(name_bytes)} bytes (must be 1..255)"
    try:
        name = name_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return FormatError, "model name is not valid UTF-8"
    if not name.isprintable():  # the name gets printed: no terminal control sequences
        return FormatError, "model name contains control characters"
    n_blocks = -(-width // block_size) * -(-height // block_size)
    if 2 + n_blocks * bits_per_stage * first_code_stages // 8 > MAX_CHUNK_LENGTH:
        return FormatError, f"image {width} x {height} is too large for the format"
    return None


def _code_span(header: Header, stage: int) -> tuple[int, int]:
    """(first stage, stage count) carried by the CODE chunk that starts at ``stage``."""
    if stage == 1:
        return 1, header.first_code_stages
    return stage, 1


def _code_length(header: Header, stage: int) -> int:
    """Exact data length of a version-1 CODE chunk starting at ``stage`` (2-byte prefix +
    bits); in version 2, the most a CODE chunk may hold (see ``_code_limit``)."""
    _, count = _code_span(header, stage)
    return 2 + header.n_blocks * header.bits_per_stage * count // 8


def _coded_blocks(counts: np.ndarray, stage: int) -> np.ndarray:
    """Raster indices of the blocks that a version-2 chunk of ``stage`` codes."""
    return np.flatnonzero(counts >= stage)


def _code_limit(header: Header, counts: np.ndarray | None, stage: int) -> int:
    """Version 2: 3-byte prefix + the raw bits of the chunk's blocks, the longest it can be
    (every block's, when the stage map was not decoded)."""
    _, count = _code_span(header, stage)
    blocks = header.n_blocks if counts is None else len(_coded_blocks(counts, stage))
    return 3 + blocks * header.bits_per_stage * count // 8


def _span_label(first: int, count: int) -> str:
    if first >= 1 and count == 1:
        return f"stage {first}"
    if first >= 1 and count > 1:
        return f"stages {first}-{first + count - 1}"
    return f"no valid stage (stage bytes {first}, {count})"


def _stage_label(header: Header, stage: int) -> str:
    return _span_label(*_code_span(header, stage))


def _chunk_parts(ctype: bytes, data: bytes) -> list[bytes]:
    crc = zlib.crc32(data, zlib.crc32(ctype))
    return [_CHUNK_PREFIX.pack(len(data), ctype), data, _U32.pack(crc)]


def _pack_bits(bits01: np.ndarray) -> bytes:
    """MSB-first packing of a C-contiguous uint8 0/1 array, in memory order."""
    packed = bitarray(endian="big")
    packed.pack(memoryview(bits01).cast("B"))
    return packed.tobytes()


def _unpack_bits(buf: memoryview) -> np.ndarray:
    """Inverse of ``_pack_bits``: a flat, writable uint8 0/1 array."""
    bits = bitarray(endian="big")
    bits.frombytes(buf)
    return np.frombuffer(bits.unpack(), dtype=np.uint8).copy()


def _check_signature(data: bytes) -> None:
    if len(data) == 0:
        raise FormatError("not an ir2i file (empty input)")
    if data[:8] == SIGNATURE:
        return
    if len(data) < len(SIGNATURE) and SIGNATURE.startswith(data):
        raise TruncatedError("file is truncated inside the signature: nothing to decode")
    for magic, what in _OTHER_FORMATS:
        if data.startswith(magic):
            raise FormatError(f"not an ir2i file (it looks like {what})")
    if data[1:4] == SIGNATURE[1:4]:
        raise FormatError(
            "not an ir2i file (damaged signature: was it transferred in text mode?)"
        )
    raise FormatError("not an ir2i file (bad signature)")


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    # bytes(b) is b itself for bytes input; other buffers are copied once so that
    # find() and slicing behave the same everywhere.
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def _check_max_pixels(max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")


# Padding to whole blocks may add up to this share of pixels to what the limit counts, plus
# a few blocks: a picture near the limit always passes (a few per mille of padding), a
# 1-pixel-high one declaring the limit does not (32x its pixels in whole blocks).
PADDING_ALLOWANCE = 2
PADDING_SLACK = 2**16


def work_limit(max_pixels: int) -> int:
    """The most padded pixels, and code bits, that a file within ``max_pixels`` may make a
    reader allocate: what bounds a reader's memory and work, whatever the header declares."""
    return PADDING_ALLOWANCE * max_pixels + PADDING_SLACK


def _check_size(width: int, height: int, block_size: int, bits_per_stage: int, stages: int,
                max_pixels: int) -> None:
    """The size guard, from the header alone, before anything proportional to the image is
    allocated: the declared pixels; the padded pixels of the blocks really decoded; and the
    code bits of all stages, at most one per allowed padded pixel (the shipped layout's 8 x
    128 bits per 32 x 32 block is exactly one)."""
    pixels = width * height
    blocks = -(-width // block_size) * -(-height // block_size)
    padded, bits = blocks * block_size * block_size, blocks * bits_per_stage * stages
    if pixels > max_pixels:
        what = f"image is {width} x {height} = {pixels} pixels, above the limit of {max_pixels}"
    elif padded > work_limit(max_pixels):
        what = (f"image is {width} x {height}: {padded} pixels in whole {block_size} x "
                f"{block_size} blocks, above the {work_limit(max_pixels)} that the limit of "
                f"{max_pixels} pixels allows")
    elif bits > work_limit(max_pixels):
        what = (f"image is {width} x {height} with {bits} code bits, above the "
                f"{work_limit(max_pixels)} that the limit of {max_pixels} pixels allows")
    else:
        return
    raise LimitError(f"{what}; raise max_pixels (ir2i --max-pixels) to allow it")


def _parse_head(data: bytes, max_pixels: int) -> tuple[Header, int, int]:
    """Validate signature and HEAD; return the header, the offset after HEAD and the format
    version."""
    _check_max_pixels(max_pixels)
    _check_signature(data)
    pos = len(SIGNATURE)
    cut = "file is truncated inside the header: nothing to decode"
    if len(data) - pos < 8:
        raise TruncatedError(cut)
    length, ctype = _CHUNK_PREFIX.unpack_from(data, pos)
    if ctype != HEAD:
        raise FormatError(
            f"malformed ir2i file: first chunk is '{_type_name(ctype)}', expected 'HEAD'"
        )
    if not 1 <= length <= MAX_HEAD_LENGTH:
        raise FormatError(f"malformed ir2i header: HEAD chunk length {length} is invalid")
    end = pos + 12 + length
    if end > len(data):
        raise TruncatedError(cut)
    body = data[pos + 8 : pos + 8 + length]
    if zlib.crc32(body, zlib.crc32(HEAD)) != _U32.unpack_from(data, end - 4)[0]:
        raise CorruptDataError(f"CRC mismatch in chunk 'HEAD' at byte {pos}: the file is damaged")
    version = body[0]
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"written by a newer ir2i (format version {version}); upgrade"
        )
    if version < 1:
        raise FormatError(f"malformed ir2i header: format version {version} is invalid")
    if length < _HEAD_FIXED.size or length != _HEAD_FIXED.size + body[_HEAD_FIXED.size - 1]:
        raise FormatError(
            f"malformed ir2i header: HEAD chunk length {length} does not match its contents"
        )
    (_, flags, width, height, block_size, bits_per_stage, stages, first_code_stages,
     band_rows, digest, _) = _HEAD_FIXED.unpack_from(body, 0)
    name_bytes = body[_HEAD_FIXED.size :]
    problem = _header_problem(
        flags=flags, width=width, height=height, block_size=block_size,
        bits_per_stage=bits_per_stage, stages=stages, first_code_stages=first_code_stages,
        band_rows=band_rows, model_digest=digest, name_bytes=name_bytes,
    )
    if problem is not None:
        cls, detail = problem
        if cls is UnsupportedVersionError:
            raise UnsupportedVersionError(f"written by a newer ir2i ({detail}); upgrade")
        raise cls(f"malformed ir2i header: {detail}")
    _check_size(width, height, block_size, bits_per_stage, stages, max_pixels)
    header = Header(
        width=width, height=height, stages=stages, model_name=name_bytes.decode("utf-8"),
        model_digest=digest, block_size=block_size, bits_per_stage=bits_per_stage,
        first_code_stages=first_code_stages, band_rows=band_rows, flags=flags,
    )
    if version >= 2:
        try:
            entropy.CodeLayout.for_block(block_size, bits_per_stage)
        except ValueError as e:
            raise FormatError(f"malformed ir2i header: {e}") from e
    return header, end, version


# --------------------------------------------------------------------------- reading


class _Chunk(NamedTuple):
    ctype: bytes
    offset: int
    length: int

    @property
    def data_start(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


class _Problem(NamedTuple):
    """A chunk that cannot be used: ``kind`` is 'cut', 'malformed' or 'crc'."""

    kind: str
    message: str
    is_code: bool  # the damage is at the CODE chunk we were waiting for
    chunk: _Chunk | None


def _crc_ok(data: bytes, chunk: _Chunk) -> bool:
    view = memoryview(data)
    crc = zlib.crc32(view[chunk.offset + 4 : chunk.end - 4])  # type + data
    return crc == _U32.unpack_from(data, chunk.end - 4)[0]


class _Expect(NamedTuple):
    """What the reader waits for next: the stage of the next CODE chunk, and in version 2
    the stage map (``counts`` None until the SMAP chunk is read)."""

    next_stage: int
    version: int
    counts: np.ndarray | None  # None until the map is read, or when it is left coded
    map_read: bool = False

    @property
    def needs_map(self) -> bool:
        return self.version >= 2 and not self.map_read


def _examine(data: bytes, pos: int, header: Header, expect: _Expect) -> _Chunk | _Problem:
    """Structural and CRC checks of the chunk at ``pos``; meaning is left to the caller.

    Lengths are checked against the header and the bytes present before any use, so
    nothing is ever allocated from an untrusted length.
    """
    next_stage = expect.next_stage
    if len(data) - pos < 8:
        return _Problem("cut", "", False, None)
    length, ctype = _CHUNK_PREFIX.unpack_from(data, pos)
    chunk = _Chunk(ctype, pos, length)
    name = _type_name(ctype)
    where = f"chunk '{name}' at byte {pos}"
    if not _is_letters(ctype):
        return _Problem("malformed", f"invalid chunk type '{name}' at byte {pos}", False, chunk)
    all_read = next_stage > header.stages
    if ctype == CODE:
        if all_read:
            return _Problem(
                "malformed", f"{where} follows all {header.stages} declared stages", False, chunk
            )
        label = _stage_label(header, next_stage)
        if expect.needs_map:
            return _Problem("malformed", f"chunk 'CODE' ({label}) at byte {pos} comes before "
                            "the stage map", True, chunk)
        if expect.version == 1:
            expected = _code_length(header, next_stage)
            if length != expected:
                return _Problem(
                    "malformed",
                    f"chunk 'CODE' ({label}) at byte {pos} has length {length}, "
                    f"the header implies {expected}",
                    True, chunk,
                )
        else:
            limit = _code_limit(header, expect.counts, next_stage)
            if not 3 <= length <= limit:
                return _Problem(
                    "malformed",
                    f"chunk 'CODE' ({label}) at byte {pos} has length {length}, "
                    f"the stage map allows 3..{limit}",
                    True, chunk,
                )
    elif ctype == SMAP and expect.version >= 2:
        if not expect.needs_map:
            return _Problem("malformed", f"{where} after the stage map or the first code",
                            False, chunk)
        if not 1 <= length <= 1 + header.n_blocks:
            return _Problem("malformed", f"{where} has length {length}, the header allows "
                            f"1..{1 + header.n_blocks}", True, chunk)
    elif ctype == IEND and length != 0:
        return _Problem("malformed", f"{where} has length {length}, must be 0", False, chunk)
    elif ctype == HEAD:
        return _Problem("malformed", f"second HEAD chunk at byte {pos}", False, chunk)
    elif length > MAX_CHUNK_LENGTH:
        return _Problem("malformed", f"{where} has an impossible length {length}", False, chunk)
    awaited = ctype == CODE or (ctype == SMAP and expect.needs_map)
    if chunk.end > len(data):
        return _Problem("cut", "", awaited, chunk)
    if not _crc_ok(data, chunk):
        if ctype == CODE:
            where = f"chunk 'CODE' ({_stage_label(header, next_stage)}) at byte {pos}"
        return _Problem("crc", f"CRC mismatch in {where}", awaited, chunk)
    return chunk


class _CrcBudget:
    """Bytes that salvage's resync may still run through CRC checks. Fake chunk headers that
    each claim to run to the end of the file would make every candidate cost a CRC over the
    rest of it (quadratic); with this budget, a few times the file size, resync stays linear
    and gives up instead."""

    def __init__(self, file_size: int):
        self.left = 4 * file_size + 2**20

    def spend(self, n: int) -> bool:
        self.left -= n
        return self.left >= 0


def _valid_chunk_at(data: bytes, pos: int, budget: _CrcBudget,
                    max_length: int = MAX_CHUNK_LENGTH) -> bool:
    """A well-formed chunk of at most ``max_length`` bytes with a matching CRC starts at
    ``pos`` (salvage resync test); a length that cannot be right is refused before its CRC."""
    if len(data) - pos < 12:
        return False
    length, ctype = _CHUNK_PREFIX.unpack_from(data, pos)
    chunk = _Chunk(ctype, pos, length)
    return (_is_letters(ctype) and length <= max_length and chunk.end <= len(data)
            and budget.spend(length) and _crc_ok(data, chunk))


def _find_expected(data: bytes, start: int, header: Header, expect: _Expect,
                   budget: _CrcBudget) -> int | None:
    """Offset of the next expected SMAP, CODE (or IEND) chunk at or after ``start``, if any.

    The pattern is the type (plus the stage bytes for CODE, and in version 1 the exact
    length), and a hit only counts when its length fits what is expected and its CRC
    matches, so a false resync needs a 32-bit CRC collision.
    """
    if expect.next_stage > header.stages:
        pattern, back, longest = _CHUNK_PREFIX.pack(0, IEND), 0, 0
    elif expect.needs_map:
        pattern, back, longest = SMAP, 4, 1 + header.n_blocks
    else:
        first, count = _code_span(header, expect.next_stage)
        longest = _code_length(header, expect.next_stage)
        if expect.version == 1:
            pattern = _CHUNK_PREFIX.pack(longest, CODE)
            back = 0
        else:  # the length is not known in advance: match the type and find the length before
            pattern, back = CODE, 4
            longest = _code_limit(header, expect.counts, expect.next_stage)
        pattern += bytes([first, count])
    pos = start + back
    for _ in range(_RESYNC_TRIES):
        if pos >= len(data):
            return None
        hit = data.find(pattern, pos)
        if hit < 0:
            return None
        if hit >= back and _valid_chunk_at(data, hit - back, budget, longest):
            return hit - back
        if budget.left < 0:
            return None
        pos = hit + 1
    return None


def _resume_after(data: bytes, problem: _Problem, header: Header, expect: _Expect,
                  budget: _CrcBudget) -> int | None:
    """Where parsing can resume after a damaged non-CODE chunk, or None.

    Skipping by the declared length keeps intact chunks that follow, but the length is
    not CRC-protected, so the landing point must hold a valid chunk and must not jump
    over the expected CODE chunk found by pattern search.
    """
    chunk = problem.chunk
    assert chunk is not None
    found = _find_expected(data, chunk.offset + 1, header, expect, budget)
    if chunk.length <= MAX_CHUNK_LENGTH and chunk.end <= len(data):
        skip = chunk.end
        lands = skip == len(data) or _valid_chunk_at(data, skip, budget)
        if lands and (found is None or skip <= found):
            return skip
    return found


def read_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Header:
    """Parse and validate only the signature and HEAD (the first ~300 bytes suffice)."""
    header, _, _ = _parse_head(_as_bytes(data), max_pixels)
    return header


# ``codes=False`` decodes the stage map only when it is this cheap (block rows x levels: the
# map decoder's sequential steps), so that looking at any file stays fast.
CHEAP_MAP_STEPS = 4096


def _map_is_cheap(header: Header) -> bool:
    return header.blocks_y * max(header.stages - 2, 0) <= CHEAP_MAP_STEPS \
        and header.n_blocks <= 2**20


def read_container(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, salvage: bool = False,
    max_stages: int | None = None, codes: bool = True,
) -> Container:
    """Parse a whole .ir2i file; see format-spec.md, "Reader rules", for every case.

    With ``salvage=False`` any damage raises. With ``salvage=True`` damaged ancillary
    chunks are dropped and decoding keeps the stages before the first damaged CODE
    chunk; only a damaged signature, HEAD, stage map or first code still raises.
    ``max_stages`` stops after the CODE chunk that completes that stage, as a partial
    download would: later chunks are neither checked nor entropy-decoded (ancillary chunks
    after them are still collected). ``codes=False`` reads the structure only (chunks,
    lengths, CRCs; the stage map when it is cheap, ``CHEAP_MAP_STEPS``): ``stage_bits``
    then holds one empty (0, bits) array per stage present, so that looking at a file never
    costs what decoding it does.
    """
    data = _as_bytes(data)
    header, pos, version = _parse_head(data, max_pixels)
    stage_bits: list[np.ndarray] = []
    ancillary: dict[bytes, bytes] = {}
    warnings: list[str] = []
    complete = False
    damaged = False  # salvage: damage seen, so a missing first code is corruption
    counts: np.ndarray | None = None
    map_read = False
    budget = _CrcBudget(len(data))

    def stop_at_damage(message: str) -> None:
        # Stages after a damaged CODE chunk depend on it, so nothing after it is usable.
        if not stage_bits:
            what = "stage map" if version >= 2 and not map_read else "first code"
            raise CorruptDataError(f"{message}: the {what} is damaged, nothing to decode")
        warnings.append(
            f"{message}: kept stages 1-{len(stage_bits)} of {header.stages}, dropped the rest"
        )

    for _ in range(MAX_CHUNKS):
        next_stage = len(stage_bits) + 1
        all_read = next_stage > header.stages
        expect = _Expect(next_stage, version, counts, map_read)
        found = _examine(data, pos, header, expect)

        if isinstance(found, _Problem):
            problem = found
            if problem.kind == "cut" and not problem.is_code and problem.chunk is not None:
                # A non-CODE chunk running past the end is either a cut or a damaged
                # length; a valid expected chunk further on proves it is damage.
                resume = _find_expected(data, pos + 1, header, expect, budget)
                if resume is not None:
                    problem = _Problem(
                        "malformed",
                        f"chunk '{_type_name(problem.chunk.ctype)}' at byte {pos} claims "
                        f"{problem.chunk.length} bytes, past the end, yet more chunks follow",
                        False, problem.chunk,
                    )
            if problem.kind == "cut":
                if not stage_bits:
                    raise TruncatedError(
                        "file is truncated before the first code is complete: nothing to decode"
                    )
                if all_read:
                    warnings.append(
                        f"file is truncated: all {header.stages} stages present, "
                        "but the end chunk is missing"
                    )
                else:
                    warnings.append(
                        f"file is truncated: {len(stage_bits)} of {header.stages} "
                        "stages present"
                    )
                break
            if not salvage:
                cls = CorruptDataError if problem.kind == "crc" else FormatError
                prefix = "" if problem.kind == "crc" else "malformed ir2i file: "
                raise cls(f"{prefix}{problem.message}: the file is damaged")
            damaged = True
            if all_read:
                warnings.append(
                    f"{problem.message} after the last stage: all {header.stages} stages "
                    "are intact"
                )
                break
            if problem.is_code:
                stop_at_damage(problem.message)
                break
            resume = _resume_after(data, problem, header, expect, budget)
            if resume is None:
                stop_at_damage(f"{problem.message}, and no intact code follows")
                break
            warnings.append(f"dropped damaged bytes {pos}-{resume - 1} ({problem.message})")
            pos = resume
            continue

        chunk = found
        body = memoryview(data)[chunk.data_start : chunk.end - 4]
        if chunk.ctype == CODE:
            first, count = _code_span(header, next_stage)
            try:
                if (body[0], body[1]) != (first, count):
                    raise FormatError(
                        f"chunk 'CODE' at byte {pos} holds {_span_label(body[0], body[1])}, "
                        f"expected {_stage_label(header, next_stage)}")
                if codes:
                    stage_bits.extend(_read_code(body, header, version, counts, stage_bits, pos))
                else:
                    stage_bits.extend(np.zeros((0, header.bits_per_stage), np.uint8)
                                      for _ in range(count))
            except FormatError as e:
                message = str(e)
                if not salvage or (not stage_bits and not damaged):
                    raise FormatError(f"malformed ir2i file: {message}") from None
                stop_at_damage(message)
                break
            if max_stages is not None and len(stage_bits) >= max_stages:
                _collect_ancillary(data, chunk.end, ancillary)
                break
        elif chunk.ctype == SMAP and version >= 2:
            if codes or _map_is_cheap(header):
                try:
                    counts = _read_stage_map(body, header, pos)
                except FormatError as e:
                    raise FormatError(f"malformed ir2i file: {e}") from None
            map_read = True
        elif chunk.ctype == SMAP:
            raise FormatError(f"malformed ir2i file: chunk 'SMAP' at byte {pos} is not part of "
                              f"format version {version}, which the header declares")
        elif chunk.ctype == IEND:
            if not all_read or (version >= 2 and not map_read):
                message = (
                    f"end chunk at byte {pos} after {len(stage_bits)} of "
                    f"{header.stages} declared stages"
                )
                if not salvage or (not stage_bits and not damaged):
                    raise FormatError(f"malformed ir2i file: {message}")
                stop_at_damage(message)
                break
            complete = True  # any damage skipped on the way is already in warnings
            if chunk.end < len(data):
                warnings.append(f"ignored {len(data) - chunk.end} bytes after the end chunk")
            break
        elif _is_critical(chunk.ctype):
            raise UnsupportedVersionError(
                f"file needs chunk '{_type_name(chunk.ctype)}', unknown to this ir2i "
                "(written by a newer ir2i?); upgrade"
            )
        elif chunk.ctype in ancillary:
            warnings.append(
                f"ignored duplicate ancillary chunk '{_type_name(chunk.ctype)}' at byte {pos}"
            )
        else:
            ancillary[chunk.ctype] = bytes(body)
        pos = chunk.end
    else:
        message = f"the file has more than {MAX_CHUNKS} chunks"
        if not salvage or not stage_bits:
            raise FormatError(f"malformed ir2i file: {message}")
        stop_at_damage(message)

    return Container(
        header=header, stage_bits=stage_bits, ancillary=ancillary,
        complete=complete, warnings=warnings, version=version, stage_counts=counts,
    )


def _collect_ancillary(data: bytes, pos: int, ancillary: dict[bytes, bytes]) -> None:
    """Ancillary chunks after ``pos`` (e.g. alpha after the codes: the spec allows them
    anywhere before IEND), for a read that stops at ``max_stages``: chunks are walked by
    their lengths, only the ancillary ones are CRC-checked, and the walk stops quietly at
    the first thing that does not fit, as the unread stages are not this read's business."""
    while len(data) - pos >= 12:
        length, ctype = _CHUNK_PREFIX.unpack_from(data, pos)
        chunk = _Chunk(ctype, pos, length)
        if not _is_letters(ctype) or chunk.end > len(data) or ctype == IEND:
            return
        if not _is_critical(ctype) and ctype not in ancillary and _crc_ok(data, chunk):
            ancillary[ctype] = bytes(data[chunk.data_start : chunk.end - 4])
        pos = chunk.end


def _read_code(body: memoryview, header: Header, version: int, counts: np.ndarray | None,
               earlier: list[np.ndarray], pos: int) -> list[np.ndarray]:
    """The stages of one CODE chunk (whose stage pair was checked), each (n_blocks, bps)."""
    n_blocks, bps = header.n_blocks, header.bits_per_stage
    first, count = body[0], body[1]
    if version == 1:
        flat = _unpack_bits(body[2:])
        # Block-major: each block's stage 1 bits, then its stage 2 bits.
        per_block = flat.reshape(n_blocks, count, bps)
        return [per_block[:, k, :].copy() for k in range(count)]
    assert counts is not None  # _examine refuses a CODE chunk before the stage map
    coded = _coded_blocks(counts, first)
    payload = body[3:]
    if body[2] == CODING_RAW:
        if len(payload) != len(coded) * bps * count // 8:
            raise FormatError(f"raw chunk 'CODE' at byte {pos} has {len(payload)} bytes of "
                              f"bits, its {len(coded)} blocks need "
                              f"{len(coded) * bps * count // 8}")
        parts = list(np.moveaxis(_unpack_bits(payload).reshape(len(coded), count, bps), 1, 0))
    elif body[2] == CODING_RANGE:
        layout = entropy.CodeLayout.for_block(header.block_size, bps)
        previous = earlier[first - 2][coded] if first > 1 else None
        try:
            parts = entropy.decode_stage_bits(payload, count, len(coded), previous, layout)
        except entropy.EntropyError as e:
            raise FormatError(f"chunk 'CODE' at byte {pos}: {e}") from None
    else:
        raise FormatError(f"chunk 'CODE' at byte {pos} has unknown coding {body[2]}")
    stages = []
    for part in parts:
        full = np.zeros((n_blocks, bps), np.uint8)
        full[coded] = part
        stages.append(full)
    return stages


def _read_stage_map(body: memoryview, header: Header, pos: int) -> np.ndarray:
    """Each block's stage count from a SMAP chunk, (n_blocks,) uint8 in 2..stages."""
    payload = body[1:]
    if body[0] == CODING_RAW:
        if len(payload) != header.n_blocks:
            raise FormatError(f"raw chunk 'SMAP' at byte {pos} has {len(payload)} counts for "
                              f"{header.n_blocks} blocks")
        counts = np.frombuffer(payload, np.uint8).copy()
    elif body[0] == CODING_RANGE:
        try:
            counts = entropy.decode_stage_map(payload, header.blocks_y, header.blocks_x,
                                              header.stages).ravel()
        except entropy.EntropyError as e:
            raise FormatError(f"chunk 'SMAP' at byte {pos}: {e}") from None
    else:
        raise FormatError(f"chunk 'SMAP' at byte {pos} has unknown coding {body[0]}")
    if counts.min() < header.first_code_stages or counts.max() > header.stages:
        raise FormatError(f"chunk 'SMAP' at byte {pos} gives a block a stage count outside "
                          f"{header.first_code_stages}..{header.stages}")
    return counts


def chunk_layout(data: bytes) -> list[ChunkInfo]:
    """List the chunks as they lie in the file, up to IEND, the end of the data or
    ``MAX_CHUNKS`` chunks.

    Never raises for bad CRCs or bad chunk contents (that is what it reports); only
    input without the ir2i signature raises FormatError (TruncatedError for a cut one).
    """
    data = _as_bytes(data)
    _check_signature(data)
    layout: list[ChunkInfo] = []
    pos = len(SIGNATURE)
    while len(data) - pos >= 8 and len(layout) < MAX_CHUNKS:
        length, ctype = _CHUNK_PREFIX.unpack_from(data, pos)
        chunk = _Chunk(ctype, pos, length)
        crc_ok = chunk.end <= len(data) and _crc_ok(data, chunk)
        layout.append(ChunkInfo(_type_name(ctype), pos, length, crc_ok))
        if chunk.end > len(data) or ctype == IEND:
            break
        pos = chunk.end
    return layout


# --------------------------------------------------------------------------- writing


def truncate_stages(data: bytes, stages: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """A complete file holding only the first ``stages`` stages of ``data``.

    Stage codes never depend on later stages, so the result is byte for byte the file the
    encoder writes when asked for that many stages, without running any network.
    """
    container = read_container(data, max_pixels=max_pixels)
    header = container.header
    if not header.first_code_stages <= stages <= container.stages_found:
        raise UsageError(f"stages must be between {header.first_code_stages} and "
                         f"{container.stages_found} (the stages this file holds), got {stages}")
    counts = None if container.stage_counts is None \
        else np.minimum(container.stage_counts, stages)
    return write_container(replace(header, stages=stages), container.stage_bits[:stages],
                           container.ancillary, stage_counts=counts)


def _checked_stage(index: int, bits: np.ndarray, header: Header) -> np.ndarray:
    arr = np.asarray(bits)
    shape = (header.n_blocks, header.bits_per_stage)
    if arr.shape != shape:
        raise ValueError(f"stage {index} bits have shape {arr.shape}, expected {shape}")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iu":
            raise ValueError(f"stage {index} bits have dtype {arr.dtype}, expected uint8 0/1")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"stage {index} bits must be 0 or 1")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def write_container(
    header: Header,
    stage_bits: Sequence[np.ndarray],
    ancillary: Mapping[bytes, bytes] | None = None,
    *,
    stage_counts: np.ndarray | None = None,
    payload_cache: MutableMapping[bytes, bytes] | None = None,
) -> bytes:
    """Serialize a complete file: signature, HEAD, ancillary chunks, [SMAP,] CODE chunks, IEND.

    With ``stage_counts`` ((n_blocks,) ints in first_code_stages..stages) the file is format
    version 2: a stage map, then entropy-coded CODE chunks in which stage s holds only the
    blocks whose count is at least s. Without it, version 1 (raw bits, every block every
    stage). Raises ValueError on a programmer error (wrong stage count, shapes, values or
    ancillary chunk types); ``read_container`` of the result returns the same data (with
    the bits of blocks beyond their count read as zeros). ``payload_cache``, shared by calls
    with the same ``stage_bits``, keeps each version-2 CODE payload by its stage and blocks:
    a rate search that writes many allocations then entropy-codes only the chunks that
    changed.
    """
    if not isinstance(header, Header):
        raise ValueError("header must be a Header")
    if len(stage_bits) != header.stages:
        raise ValueError(
            f"header declares {header.stages} stages but {len(stage_bits)} were given"
        )
    arrays = [_checked_stage(i, bits, header) for i, bits in enumerate(stage_bits, 1)]
    version = 1 if stage_counts is None else FORMAT_VERSION
    if stage_counts is not None:
        stage_counts = np.asarray(stage_counts).ravel()
        if stage_counts.shape != (header.n_blocks,) or stage_counts.dtype.kind not in "iu":
            raise ValueError(f"stage_counts must be {header.n_blocks} ints")
        if stage_counts.min() < header.first_code_stages or stage_counts.max() > header.stages:
            raise ValueError(f"stage counts must be in {header.first_code_stages}.."
                             f"{header.stages}")
        layout = entropy.CodeLayout.for_block(header.block_size, header.bits_per_stage)

    name_bytes = header.model_name.encode("utf-8")
    head = _HEAD_FIXED.pack(
        version, header.flags, header.width, header.height, header.block_size,
        header.bits_per_stage, header.stages, header.first_code_stages, header.band_rows,
        header.model_digest, len(name_bytes),
    ) + name_bytes
    parts = [SIGNATURE, *_chunk_parts(HEAD, head)]

    # Ancillary chunks go before the codes so that a truncated file still carries them.
    for ctype, payload in (ancillary or {}).items():
        if not isinstance(ctype, bytes) or not _is_letters(ctype) or _is_critical(ctype):
            raise ValueError(
                f"ancillary chunk type {ctype!r} must be 4 ASCII letters, the first lowercase"
            )
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"ancillary chunk {ctype!r} data must be bytes")
        payload = bytes(payload)
        if len(payload) > MAX_CHUNK_LENGTH:
            raise ValueError(f"ancillary chunk {ctype!r} is larger than {MAX_CHUNK_LENGTH} bytes")
        parts += _chunk_parts(ctype, payload)

    fcs = header.first_code_stages
    if version == 1:
        first = np.stack(arrays[:fcs], axis=1)  # (n_blocks, fcs, bps): block-major order
        parts += _chunk_parts(CODE, bytes([1, fcs]) + _pack_bits(first))
        for stage in range(fcs + 1, header.stages + 1):
            parts += _chunk_parts(CODE, bytes([stage, 1]) + _pack_bits(arrays[stage - 1]))
    else:
        counts = stage_counts.astype(np.uint8)
        coded_map = entropy.encode_stage_map(
            counts.reshape(header.blocks_y, header.blocks_x), header.stages)
        parts += _chunk_parts(SMAP, _smaller(counts.tobytes(), coded_map))
        for stage in [1, *range(fcs + 1, header.stages + 1)]:
            key = bytes([stage]) + np.packbits(counts >= stage).tobytes()
            payload = payload_cache.get(key) if payload_cache is not None else None
            if payload is None:
                payload = _code_payload(header, arrays, _coded_blocks(counts, stage), stage,
                                        layout)
                if payload_cache is not None:
                    payload_cache[key] = payload
            parts += _chunk_parts(CODE, payload)
    parts += _chunk_parts(IEND, b"")
    return b"".join(parts)


def _code_payload(header: Header, arrays: list[np.ndarray], coded: np.ndarray, stage: int,
                  layout: entropy.CodeLayout) -> bytes:
    """The version-2 CODE payload of the chunk that starts at ``stage``, for the blocks
    ``coded`` (raster indices)."""
    first_stage, count = _code_span(header, stage)
    chunk_stages = [arrays[s - 1][coded] for s in range(stage, stage + count)]
    previous = arrays[stage - 2][coded] if stage > 1 else None
    raw = _pack_bits(np.ascontiguousarray(np.stack(chunk_stages, axis=1)))
    ranged = entropy.encode_stage_bits(chunk_stages, previous, layout)
    return bytes([first_stage, count]) + _smaller(raw, ranged)


def _smaller(raw: bytes, ranged: bytes) -> bytes:
    """Version 2 payload: the coding byte and the range-coded data, or the raw data when
    range coding does not make it smaller (so a chunk is never longer than raw + 1 byte)."""
    return bytes([CODING_RANGE]) + ranged if len(ranged) < len(raw) \
        else bytes([CODING_RAW]) + raw
