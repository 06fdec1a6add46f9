"""What differs between format versions, one class each (spec §5): the layout of the CODE
chunks, the stage map, how a chunk's length is checked and found again after damage, and how
the codes are written. The next format version adds a class here, not branches elsewhere."""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from .. import entropy
from ..errors import FormatError, TablesNeededError
from .chunks import (
    chunk_parts,
    code_length,
    code_limit,
    code_span,
    coded_blocks,
    pack_bits,
    stage_label,
    unpack_bits,
)
from .constants import CHUNK_PREFIX, CODE, CODING_RANGE, CODING_RAW, SMAP
from .header import Header


class FormatVersion:
    """The rules of one format version (the base holds what they share)."""

    number: int = 0
    has_stage_map: bool = False

    def check_header(self, header: Header) -> None:
        """FormatError for a header this version cannot lay out."""

    def coding_tables(self, tables: entropy.BitTables | None) -> entropy.BitTables | None:
        """The tables the range coder starts from: none before version 3 (counts from zero;
        version 1 has no range coder)."""
        return None

    def code_length_problem(
        self, header: Header, counts: np.ndarray | None, stage: int, length: int, pos: int
    ) -> str | None:
        """Why a CODE chunk of ``length`` bytes cannot be the chunk of ``stage``, or None."""
        raise NotImplementedError

    def resync_pattern(
        self, header: Header, counts: np.ndarray | None, stage: int
    ) -> tuple[bytes, int, int]:
        """(bytes to search for, how far before them the chunk starts, the longest the
        chunk may be) of the CODE chunk of ``stage``, for salvage's resync."""
        raise NotImplementedError

    def read_code(
        self,
        body: memoryview,
        header: Header,
        counts: np.ndarray | None,
        earlier: list[np.ndarray],
        pos: int,
        tables: entropy.BitTables | None,
    ) -> list[np.ndarray]:
        """The stages of one CODE chunk (whose stage pair was checked), (n_blocks, bps) each;
        ``tables``: the model's bit tables (version 3 needs them, earlier ones ignore them)."""
        raise NotImplementedError

    def code_chunks(
        self,
        header: Header,
        arrays: list[np.ndarray],
        counts: np.ndarray | None,
        payload_cache: MutableMapping[bytes, bytes] | None,
        tables: entropy.BitTables | None,
    ) -> list[bytes]:
        """The chunk parts of the stage map (if any) and every CODE chunk."""
        raise NotImplementedError


class Version1(FormatVersion):
    """Raw bits: every stage of every block, block-major within the first code."""

    number = 1

    def code_length_problem(self, header, counts, stage, length, pos):
        expected = code_length(header, stage)
        if length != expected:
            return (
                f"chunk 'CODE' ({stage_label(header, stage)}) at byte {pos} has length "
                f"{length}, the header implies {expected}"
            )
        return None

    def resync_pattern(self, header, counts, stage):
        first, count = code_span(header, stage)
        longest = code_length(header, stage)
        return CHUNK_PREFIX.pack(longest, CODE) + bytes([first, count]), 0, longest

    def read_code(self, body, header, counts, earlier, pos, tables):
        n_blocks, bps = header.n_blocks, header.bits_per_stage
        count = body[1]
        flat = unpack_bits(body[2:])
        # Block-major: each block's stage 1 bits, then its stage 2 bits.
        per_block = flat.reshape(n_blocks, count, bps)
        return [per_block[:, k, :].copy() for k in range(count)]

    def code_chunks(self, header, arrays, counts, payload_cache, tables):
        fcs = header.first_code_stages
        first = np.stack(arrays[:fcs], axis=1)  # (n_blocks, fcs, bps): block-major order
        parts = chunk_parts(CODE, bytes([1, fcs]) + pack_bits(first))
        for stage in range(fcs + 1, header.stages + 1):
            parts += chunk_parts(CODE, bytes([stage, 1]) + pack_bits(arrays[stage - 1]))
        return parts


class Version2(FormatVersion):
    """A stage map (each block its own count), and CODE chunks holding only the blocks that
    reach their stage, range-coded with adaptive contexts (or raw when that is smaller)."""

    number = 2
    has_stage_map = True

    def check_header(self, header):
        try:
            entropy.CodeLayout.for_block(header.block_size, header.bits_per_stage)
        except ValueError as e:
            raise FormatError(f"malformed ir2i header: {e}") from e

    def code_length_problem(self, header, counts, stage, length, pos):
        limit = code_limit(header, counts, stage)
        if not 3 <= length <= limit:
            return (
                f"chunk 'CODE' ({stage_label(header, stage)}) at byte {pos} has length "
                f"{length}, the stage map allows 3..{limit}"
            )
        return None

    def resync_pattern(self, header, counts, stage):
        # The length is not known in advance: match the type and find the length before it.
        first, count = code_span(header, stage)
        return CODE + bytes([first, count]), 4, code_limit(header, counts, stage)

    def read_code(self, body, header, counts, earlier, pos, tables):
        assert counts is not None  # the reader refuses a CODE chunk before the stage map
        bps = header.bits_per_stage
        first, count = body[0], body[1]
        coded = coded_blocks(counts, first)
        payload = body[3:]
        if body[2] == CODING_RAW:
            if len(payload) != len(coded) * bps * count // 8:
                raise FormatError(
                    f"raw chunk 'CODE' at byte {pos} has {len(payload)} bytes "
                    f"of bits, its {len(coded)} blocks need "
                    f"{len(coded) * bps * count // 8}"
                )
            parts = list(np.moveaxis(unpack_bits(payload).reshape(len(coded), count, bps), 1, 0))
        elif body[2] == CODING_RANGE:
            layout = entropy.CodeLayout.for_block(header.block_size, bps)
            previous = earlier[first - 2][coded] if first > 1 else None
            try:
                parts = entropy.decode_stage_bits(
                    payload,
                    count,
                    len(coded),
                    previous,
                    layout,
                    first_stage=first,
                    tables=self.coding_tables(tables),
                )
            except entropy.EntropyError as e:
                raise FormatError(f"chunk 'CODE' at byte {pos}: {e}") from None
        else:
            raise FormatError(f"chunk 'CODE' at byte {pos} has unknown coding {body[2]}")
        stages = []
        for part in parts:
            full = np.zeros((header.n_blocks, bps), np.uint8)
            full[coded] = part
            stages.append(full)
        return stages

    def code_chunks(self, header, arrays, counts, payload_cache, tables):
        assert counts is not None
        tables = self.coding_tables(tables)
        layout = entropy.CodeLayout.for_block(header.block_size, header.bits_per_stage)
        counts = counts.astype(np.uint8)
        coded_map = entropy.encode_stage_map(
            counts.reshape(header.blocks_y, header.blocks_x), header.stages
        )
        parts = chunk_parts(SMAP, smaller(counts.tobytes(), coded_map))
        for stage in [1, *range(header.first_code_stages + 1, header.stages + 1)]:
            key = bytes([stage]) + np.packbits(counts >= stage).tobytes()
            payload = payload_cache.get(key) if payload_cache is not None else None
            if payload is None:
                payload = code_payload(
                    header, arrays, coded_blocks(counts, stage), stage, layout, tables
                )
                if payload_cache is not None:
                    payload_cache[key] = payload
            parts += chunk_parts(CODE, payload)
        return parts


class Version3(Version2):
    """Version 2's layout, with the range coder's counts starting from the model's learned
    bit tables (``bittables``) instead of zero; the model digest covers weights and tables."""

    number = 3

    def coding_tables(self, tables):
        if tables is None:
            # The caller reads codes without the model that made them (a programmer error:
            # the codec passes the model's tables once the header names it).
            raise TablesNeededError(
                "this file (format version 3) decodes only with its model's bit tables"
            )
        return tables


VERSIONS: dict[int, FormatVersion] = {1: Version1(), 2: Version2(), 3: Version3()}


def layout_for(version: int) -> FormatVersion:
    return VERSIONS[version]


def read_stage_map(body: memoryview, header: Header, pos: int) -> np.ndarray:
    """Each block's stage count from a SMAP chunk, (n_blocks,) uint8 in 2..stages."""
    payload = body[1:]
    if body[0] == CODING_RAW:
        if len(payload) != header.n_blocks:
            raise FormatError(
                f"raw chunk 'SMAP' at byte {pos} has {len(payload)} counts for "
                f"{header.n_blocks} blocks"
            )
        counts = np.frombuffer(payload, np.uint8).copy()
    elif body[0] == CODING_RANGE:
        try:
            counts = entropy.decode_stage_map(
                payload, header.blocks_y, header.blocks_x, header.stages
            ).ravel()
        except entropy.EntropyError as e:
            raise FormatError(f"chunk 'SMAP' at byte {pos}: {e}") from None
    else:
        raise FormatError(f"chunk 'SMAP' at byte {pos} has unknown coding {body[0]}")
    if counts.min() < header.first_code_stages or counts.max() > header.stages:
        raise FormatError(
            f"chunk 'SMAP' at byte {pos} gives a block a stage count outside "
            f"{header.first_code_stages}..{header.stages}"
        )
    return counts


def code_payload(
    header: Header,
    arrays: list[np.ndarray],
    coded: np.ndarray,
    stage: int,
    layout: entropy.CodeLayout,
    tables: entropy.BitTables | None = None,
) -> bytes:
    """The version-2 (``tables`` None) or version-3 CODE payload of the chunk that starts at
    ``stage``, for the blocks ``coded`` (raster indices)."""
    first_stage, count = code_span(header, stage)
    chunk_stages = [arrays[s - 1][coded] for s in range(stage, stage + count)]
    previous = arrays[stage - 2][coded] if stage > 1 else None
    raw = pack_bits(np.ascontiguousarray(np.stack(chunk_stages, axis=1)))
    ranged = entropy.encode_stage_bits(
        chunk_stages, previous, layout, first_stage=first_stage, tables=tables
    )
    return bytes([first_stage, count]) + smaller(raw, ranged)


def smaller(raw: bytes, ranged: bytes) -> bytes:
    """Version 2 payload: the coding byte and the range-coded data, or the raw data when
    range coding does not make it smaller (so a chunk is never longer than raw + 1 byte)."""
    return bytes([CODING_RANGE]) + ranged if len(ranged) < len(raw) else bytes([CODING_RAW]) + raw
