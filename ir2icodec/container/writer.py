"""Writing files (spec §7): the header, ancillary chunks, then the codes as the format
version lays them out; and truncation to fewer stages without re-encoding."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import replace

import numpy as np

from ..entropy import BitTables
from ..errors import FormatError, UsageError
from .chunks import chunk_parts, is_critical, is_letters
from .constants import (
    DEFAULT_MAX_PIXELS,
    HEAD,
    HEAD_FIXED,
    IEND,
    MAX_CHUNK_LENGTH,
    SIGNATURE,
)
from .header import Header
from .reader import read_container
from .versions import VERSIONS, layout_for


def truncate_stages(
    data: bytes,
    stages: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tables: BitTables | None = None,
) -> bytes:
    """A complete file holding only the first ``stages`` stages of ``data``.

    Stage codes never depend on later stages, so the result is byte for byte the file the
    encoder writes when asked for that many stages, without running any network.
    ``tables``: the bit tables of the model that made the file (format version 3 needs them).
    """
    container = read_container(data, max_pixels=max_pixels, tables=tables)
    header = container.header
    if not header.first_code_stages <= stages <= container.stages_found:
        raise UsageError(
            f"stages must be between {header.first_code_stages} and "
            f"{container.stages_found} (the stages this file holds), got {stages}"
        )
    counts = None if container.stage_counts is None else np.minimum(container.stage_counts, stages)
    return write_container(
        replace(header, stages=stages),
        container.stage_bits[:stages],
        container.ancillary,
        stage_counts=counts,
        version=container.version,
        tables=tables,
    )


def checked_stage(index: int, bits: np.ndarray, header: Header) -> np.ndarray:
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
    version: int | None = None,
    tables: BitTables | None = None,
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
    changed. ``version``: 1, 2 or 3 (default: 1 without stage counts, else 2, or 3 when
    ``tables`` are given); version 3 codes with the model's bit ``tables``, and the header's
    model digest must then be the one that covers them (``OnnxModel.file_digest``).
    """
    if not isinstance(header, Header):
        raise ValueError("header must be a Header")
    if len(stage_bits) != header.stages:
        raise ValueError(f"header declares {header.stages} stages but {len(stage_bits)} were given")
    arrays = [checked_stage(i, bits, header) for i, bits in enumerate(stage_bits, 1)]
    counts = None if stage_counts is None else checked_counts(stage_counts, header)
    if version is None:
        version = 1 if counts is None else 2 if tables is None else 3
    if (version == 1) != (counts is None) or version not in VERSIONS:
        raise ValueError(f"format version {version} with stage counts {counts is not None}")
    layout = layout_for(version)
    layout.coding_tables(tables)  # version 3 without tables: refused before any work
    try:
        layout.check_header(header)
    except FormatError as e:  # the writer's caller made the header: a programmer error
        raise ValueError(str(e)) from None
    parts = [SIGNATURE, *chunk_parts(HEAD, head_data(header, layout.number))]
    # Ancillary chunks go before the codes so that a truncated file still carries them.
    for ctype, payload in (ancillary or {}).items():
        parts += chunk_parts(ctype, checked_ancillary(ctype, payload))
    parts += layout.code_chunks(header, arrays, counts, payload_cache, tables)
    parts += chunk_parts(IEND, b"")
    return b"".join(parts)


def checked_counts(stage_counts: np.ndarray, header: Header) -> np.ndarray:
    """``stage_counts`` as (n_blocks,) ints in first_code_stages..stages, or ValueError."""
    counts = np.asarray(stage_counts).ravel()
    if counts.shape != (header.n_blocks,) or counts.dtype.kind not in "iu":
        raise ValueError(f"stage_counts must be {header.n_blocks} ints")
    if counts.min() < header.first_code_stages or counts.max() > header.stages:
        raise ValueError(f"stage counts must be in {header.first_code_stages}..{header.stages}")
    return counts


def head_data(header: Header, version: int) -> bytes:
    """The HEAD chunk's data."""
    name_bytes = header.model_name.encode("utf-8")
    return (
        HEAD_FIXED.pack(
            version,
            header.flags,
            header.width,
            header.height,
            header.block_size,
            header.bits_per_stage,
            header.stages,
            header.first_code_stages,
            header.band_rows,
            header.model_digest,
            len(name_bytes),
        )
        + name_bytes
    )


def checked_ancillary(ctype: bytes, payload: bytes) -> bytes:
    """An ancillary chunk's data, or ValueError for a type or size the format refuses."""
    if not isinstance(ctype, bytes) or not is_letters(ctype) or is_critical(ctype):
        raise ValueError(
            f"ancillary chunk type {ctype!r} must be 4 ASCII letters, the first lowercase"
        )
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ValueError(f"ancillary chunk {ctype!r} data must be bytes")
    payload = bytes(payload)
    if len(payload) > MAX_CHUNK_LENGTH:
        raise ValueError(f"ancillary chunk {ctype!r} is larger than {MAX_CHUNK_LENGTH} bytes")
    return payload
