"""The signature and the HEAD chunk: parsing, validation and the size guard (spec §2, §4, §8.1)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import (
    CorruptDataError,
    FormatError,
    Ir2iError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)
from .constants import (
    BITS_PER_STAGE,
    BLOCK_SIZE,
    CHUNK_PREFIX,
    DEFAULT_BAND_ROWS,
    DEFAULT_MAX_PIXELS,
    FIRST_CODE_STAGES,
    FORMAT_VERSION,
    HEAD,
    HEAD_FIXED,
    KNOWN_FLAGS,
    MAX_BITS_PER_STAGE,
    MAX_BLOCK_SIZE,
    MAX_CHUNK_LENGTH,
    MAX_HEAD_LENGTH,
    MAX_MODEL_NAME_BYTES,
    MAX_STAGES,
    MIN_BITS_PER_STAGE,
    MIN_BLOCK_SIZE,
    MIN_STAGES,
    OTHER_FORMATS,
    SIGNATURE,
    U32,
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
        ints = (
            "width",
            "height",
            "stages",
            "block_size",
            "bits_per_stage",
            "first_code_stages",
            "band_rows",
            "flags",
        )
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
        problem = header_problem(
            flags=self.flags,
            width=self.width,
            height=self.height,
            block_size=self.block_size,
            bits_per_stage=self.bits_per_stage,
            stages=self.stages,
            first_code_stages=self.first_code_stages,
            band_rows=self.band_rows,
            model_digest=self.model_digest,
            name_bytes=name_bytes,
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


def type_name(ctype: bytes) -> str:
    """Printable form of a chunk type, safe to put in a one-line message."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E else f"\\x{b:02x}" for b in ctype)


def header_problem(
    *,
    flags: int,
    width: int,
    height: int,
    block_size: int,
    bits_per_stage: int,
    stages: int,
    first_code_stages: int,
    band_rows: int,
    model_digest: bytes,
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


def check_signature(data: bytes) -> None:
    if len(data) == 0:
        raise FormatError("not an ir2i file (empty input)")
    if data[:8] == SIGNATURE:
        return
    if len(data) < len(SIGNATURE) and SIGNATURE.startswith(data):
        raise TruncatedError("file is truncated inside the signature: nothing to decode")
    for magic, what in OTHER_FORMATS:
        if data.startswith(magic):
            raise FormatError(f"not an ir2i file (it looks like {what})")
    if data[1:4] == SIGNATURE[1:4]:
        raise FormatError("not an ir2i file (damaged signature: was it transferred in text mode?)")
    raise FormatError("not an ir2i file (bad signature)")


def as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    # bytes(b) is b itself for bytes input; other buffers are copied once so that
    # find() and slicing behave the same everywhere.
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def check_max_pixels(max_pixels: int) -> None:
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


def check_size(
    width: int, height: int, block_size: int, bits_per_stage: int, stages: int, max_pixels: int
) -> None:
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
        what = (
            f"image is {width} x {height}: {padded} pixels in whole {block_size} x "
            f"{block_size} blocks, above the {work_limit(max_pixels)} that the limit of "
            f"{max_pixels} pixels allows"
        )
    elif bits > work_limit(max_pixels):
        what = (
            f"image is {width} x {height} with {bits} code bits, above the "
            f"{work_limit(max_pixels)} that the limit of {max_pixels} pixels allows"
        )
    else:
        return
    raise LimitError(f"{what}; raise max_pixels (ir2i --max-pixels) to allow it")


def parse_head(data: bytes, max_pixels: int) -> tuple[Header, int, int]:
    """Validate signature and HEAD; return the header, the offset after HEAD and the format
    version."""
    check_max_pixels(max_pixels)
    check_signature(data)
    pos = len(SIGNATURE)
    cut = "file is truncated inside the header: nothing to decode"
    if len(data) - pos < 8:
        raise TruncatedError(cut)
    length, ctype = CHUNK_PREFIX.unpack_from(data, pos)
    if ctype != HEAD:
        raise FormatError(
            f"malformed ir2i file: first chunk is '{type_name(ctype)}', expected 'HEAD'"
        )
    if not 1 <= length <= MAX_HEAD_LENGTH:
        raise FormatError(f"malformed ir2i header: HEAD chunk length {length} is invalid")
    end = pos + 12 + length
    if end > len(data):
        raise TruncatedError(cut)
    body = data[pos + 8 : pos + 8 + length]
    if zlib.crc32(body, zlib.crc32(HEAD)) != U32.unpack_from(data, end - 4)[0]:
        raise CorruptDataError(f"CRC mismatch in chunk 'HEAD' at byte {pos}: the file is damaged")
    version = body[0]
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"written by a newer ir2i (format version {version}); upgrade"
        )
    if version < 1:
        raise FormatError(f"malformed ir2i header: format version {version} is invalid")
    if length < HEAD_FIXED.size or length != HEAD_FIXED.size + body[HEAD_FIXED.size - 1]:
        raise FormatError(
            f"malformed ir2i header: HEAD chunk length {length} does not match its contents"
        )
    (
        _,
        flags,
        width,
        height,
        block_size,
        bits_per_stage,
        stages,
        first_code_stages,
        band_rows,
        digest,
        _,
    ) = HEAD_FIXED.unpack_from(body, 0)
    name_bytes = body[HEAD_FIXED.size :]
    problem = header_problem(
        flags=flags,
        width=width,
        height=height,
        block_size=block_size,
        bits_per_stage=bits_per_stage,
        stages=stages,
        first_code_stages=first_code_stages,
        band_rows=band_rows,
        model_digest=digest,
        name_bytes=name_bytes,
    )
    if problem is not None:
        cls, detail = problem
        if cls is UnsupportedVersionError:
            raise UnsupportedVersionError(f"written by a newer ir2i ({detail}); upgrade")
        raise cls(f"malformed ir2i header: {detail}")
    check_size(width, height, block_size, bits_per_stage, stages, max_pixels)
    header = Header(
        width=width,
        height=height,
        stages=stages,
        model_name=name_bytes.decode("utf-8"),
        model_digest=digest,
        block_size=block_size,
        bits_per_stage=bits_per_stage,
        first_code_stages=first_code_stages,
        band_rows=band_rows,
        flags=flags,
    )
    version_of(version).check_header(header)
    return header, end, version


def read_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Header:
    """Parse and validate only the signature and HEAD (the first ~300 bytes suffice)."""
    header, _, _ = parse_head(as_bytes(data), max_pixels)
    return header


def read_header_and_version(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Header, int]:
    """The header and the format version (which tells what the model digest covers)."""
    header, _, version = parse_head(as_bytes(data), max_pixels)
    return header, version


def version_of(version: int):
    """The layout class of a format version (imported late: versions.py needs Header)."""
    from .versions import layout_for

    return layout_for(version)
