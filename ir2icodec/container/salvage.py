"""Salvage's resync: finding the next usable chunk after damage, in work linear in the file
size (spec §8.2 step 4, §8.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import chunks
from .chunks import Chunk, is_letters
from .constants import CHUNK_PREFIX, IEND, MAX_CHUNK_LENGTH, RESYNC_TRIES, SMAP
from .header import Header

if TYPE_CHECKING:
    from .reader import Expect, Problem


class CrcBudget:
    """Bytes that salvage's resync may still run through CRC checks. Fake chunk headers that
    each claim to run to the end of the file would make every candidate cost a CRC over the
    rest of it (quadratic); with this budget, a few times the file size, resync stays linear
    and gives up instead."""

    def __init__(self, file_size: int):
        self.left = 4 * file_size + 2**20

    def spend(self, n: int) -> bool:
        self.left -= n
        return self.left >= 0


def valid_chunk_at(
    data: bytes, pos: int, budget: CrcBudget, max_length: int = MAX_CHUNK_LENGTH
) -> bool:
    """A well-formed chunk of at most ``max_length`` bytes with a matching CRC starts at
    ``pos`` (salvage resync test); a length that cannot be right is refused before its CRC."""
    if len(data) - pos < 12:
        return False
    length, ctype = CHUNK_PREFIX.unpack_from(data, pos)
    chunk = Chunk(ctype, pos, length)
    return (
        is_letters(ctype)
        and length <= max_length
        and chunk.end <= len(data)
        and budget.spend(length)
        and chunks.crc_ok(data, chunk)
    )


def find_expected(
    data: bytes, start: int, header: Header, expect: Expect, budget: CrcBudget
) -> int | None:
    """Offset of the next expected SMAP, CODE (or IEND) chunk at or after ``start``, if any.

    The pattern is the type (plus the stage bytes for CODE, and in version 1 the exact
    length), and a hit only counts when its length fits what is expected and its CRC
    matches, so a false resync needs a 32-bit CRC collision.
    """
    if expect.next_stage > header.stages:
        pattern, back, longest = CHUNK_PREFIX.pack(0, IEND), 0, 0
    elif expect.needs_map:
        pattern, back, longest = SMAP, 4, 1 + header.n_blocks
    else:
        pattern, back, longest = expect.version.resync_pattern(
            header, expect.counts, expect.next_stage
        )
    pos = start + back
    for _ in range(RESYNC_TRIES):
        if pos >= len(data):
            return None
        hit = data.find(pattern, pos)
        if hit < 0:
            return None
        if hit >= back and valid_chunk_at(data, hit - back, budget, longest):
            return hit - back
        if budget.left < 0:
            return None
        pos = hit + 1
    return None


def resume_after(
    data: bytes, problem: Problem, header: Header, expect: Expect, budget: CrcBudget
) -> int | None:
    """Where parsing can resume after a damaged non-CODE chunk, or None.

    Skipping by the declared length keeps intact chunks that follow, but the length is
    not CRC-protected, so the landing point must hold a valid chunk and must not jump
    over the expected CODE chunk found by pattern search.
    """
    chunk = problem.chunk
    assert chunk is not None
    found = find_expected(data, chunk.offset + 1, header, expect, budget)
    if chunk.length <= MAX_CHUNK_LENGTH and chunk.end <= len(data):
        skip = chunk.end
        lands = skip == len(data) or valid_chunk_at(data, skip, budget)
        if lands and (found is None or skip <= found):
            return skip
    return found
