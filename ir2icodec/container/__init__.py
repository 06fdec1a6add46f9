"""Reader and writer of the ``.ir2i`` container; format-spec.md is the byte-level contract.

The container is shaped like PNG: an 8-byte signature, then chunks that each carry a
CRC-32. Every progressive stage after the first code has its own chunk, so a file cut
after any complete chunk still decodes to the stages it holds, and damage is confined
to the chunk it hits.

- ``constants``: the format's numbers; ``header``: signature, HEAD and the size guard;
- ``chunks``: chunk layout, CRCs, bit packing; ``versions``: one class per format version;
- ``reader``: ``read_container``; ``salvage``: resync after damage;
- ``writer``: ``write_container``, ``truncate_stages``.
"""

from .. import entropy  # noqa: F401 - the coder the version classes use (tests patch it)
from .chunks import ChunkInfo, chunk_layout
from .constants import (
    BITS_PER_STAGE,
    BLOCK_SIZE,
    CODE,
    CODING_RANGE,
    CODING_RAW,
    DEFAULT_BAND_ROWS,
    DEFAULT_MAX_PIXELS,
    FIRST_CODE_STAGES,
    FORMAT_VERSION,
    HEAD,
    IEND,
    KNOWN_FLAGS,
    MAX_BITS_PER_STAGE,
    MAX_BLOCK_SIZE,
    MAX_CHUNK_LENGTH,
    MAX_CHUNKS,
    MAX_HEAD_LENGTH,
    MAX_MODEL_NAME_BYTES,
    MAX_STAGES,
    MIN_BITS_PER_STAGE,
    MIN_BLOCK_SIZE,
    MIN_STAGES,
    SIGNATURE,
    SMAP,
)
from .header import (
    PADDING_ALLOWANCE,
    PADDING_SLACK,
    Header,
    read_header,
    read_header_and_version,
    work_limit,
)
from .reader import CHEAP_MAP_STEPS, Container, read_container
from .versions import VERSIONS, FormatVersion
from .writer import truncate_stages, write_container

__all__ = [
    "BITS_PER_STAGE",
    "BLOCK_SIZE",
    "CHEAP_MAP_STEPS",
    "CODE",
    "CODING_RANGE",
    "CODING_RAW",
    "DEFAULT_BAND_ROWS",
    "DEFAULT_MAX_PIXELS",
    "FIRST_CODE_STAGES",
    "FORMAT_VERSION",
    "HEAD",
    "IEND",
    "KNOWN_FLAGS",
    "MAX_BITS_PER_STAGE",
    "MAX_BLOCK_SIZE",
    "MAX_CHUNK_LENGTH",
    "MAX_CHUNKS",
    "MAX_HEAD_LENGTH",
    "MAX_MODEL_NAME_BYTES",
    "MAX_STAGES",
    "MIN_BITS_PER_STAGE",
    "MIN_BLOCK_SIZE",
    "MIN_STAGES",
    "PADDING_ALLOWANCE",
    "PADDING_SLACK",
    "SIGNATURE",
    "SMAP",
    "VERSIONS",
    "ChunkInfo",
    "Container",
    "FormatVersion",
    "Header",
    "chunk_layout",
    "read_container",
    "read_header_and_version",
    "read_header",
    "truncate_stages",
    "work_limit",
    "write_container",
]
