"""The numbers of the .ir2i format (format-spec.md): signature, chunk types, field limits."""

from __future__ import annotations

import struct

# PNG's signature with "IR2" in place of "PNG": the high byte catches 7-bit channels,
# CR LF catches LF<->CRLF rewriting, 0x1A stops DOS `type`, the final LF catches LF->CRLF.
SIGNATURE = b"\x89IR2\r\n\x1a\n"
# The newest version read and written. 3: version 2's layout, coded from the model's learned
# bit tables; 2: stage-count map and entropy-coded codes; 1: raw bits. All are read.
FORMAT_VERSION = 3
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
HEAD_FIXED = struct.Struct(">BHIIHHBBH16sB")
CHUNK_PREFIX = struct.Struct(">I4s")
U32 = struct.Struct(">I")
RESYNC_TRIES = 64  # resync search: bounds the work a file full of fake chunk headers causes
# The most chunks a reader walks: a file has 2 + stages + its map and a few ancillary chunks,
# so a file of thousands of tiny chunks is forged, and walking it would cost a Python step
# (and a warning) each.
MAX_CHUNKS = 1024

# Well-known signatures, to tell users what they passed instead of an .ir2i file.
OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (e.g. WebP)"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
