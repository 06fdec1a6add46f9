"""Reading a whole file: chunk by chunk, strict or salvaging, stopping where a partial
download would (spec §8). The rules that differ by format version live in versions.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..entropy import BitTables
from ..errors import CorruptDataError, FormatError, TruncatedError, UnsupportedVersionError
from . import chunks
from .chunks import Chunk, code_span, is_critical, is_letters, span_label, stage_label, type_name
from .constants import (
    CHUNK_PREFIX,
    CODE,
    DEFAULT_MAX_PIXELS,
    HEAD,
    IEND,
    MAX_CHUNK_LENGTH,
    MAX_CHUNKS,
    SMAP,
)
from .header import Header, as_bytes, parse_head
from .salvage import CrcBudget, find_expected, resume_after
from .versions import FormatVersion, layout_for, read_stage_map

# ``codes=False`` decodes the stage map only when it is this cheap (block rows x levels: the
# map decoder's sequential steps), so that looking at any file stays fast.
CHEAP_MAP_STEPS = 4096


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


class Problem(NamedTuple):
    """A chunk that cannot be used: ``kind`` is 'cut', 'malformed' or 'crc'."""

    kind: str
    message: str
    is_code: bool  # the damage is at the CODE chunk we were waiting for
    chunk: Chunk | None


class Expect(NamedTuple):
    """What the reader waits for next: the stage of the next CODE chunk, and in a version
    with a stage map, that map (``counts`` None until it is read, or when left coded)."""

    next_stage: int
    version: FormatVersion
    counts: np.ndarray | None
    map_read: bool = False

    @property
    def needs_map(self) -> bool:
        return self.version.has_stage_map and not self.map_read


def _meaning_problem(
    ctype: bytes, length: int, pos: int, header: Header, expect: Expect
) -> tuple[str, bool] | None:
    """What is wrong with a chunk's type and length where it stands, as (message, whether
    it is the awaited chunk), or None."""
    where = f"chunk '{type_name(ctype)}' at byte {pos}"
    if ctype == CODE:
        if expect.next_stage > header.stages:
            return f"{where} follows all {header.stages} declared stages", False
        if expect.needs_map:
            return (
                f"chunk 'CODE' ({stage_label(header, expect.next_stage)}) at byte {pos} "
                "comes before the stage map",
                True,
            )
        problem = expect.version.code_length_problem(
            header, expect.counts, expect.next_stage, length, pos
        )
        return (problem, True) if problem else None
    if ctype == SMAP and expect.version.has_stage_map:
        if not expect.needs_map:
            return f"{where} after the stage map or the first code", False
        if not 1 <= length <= 1 + header.n_blocks:
            return (
                f"{where} has length {length}, the header allows 1..{1 + header.n_blocks}",
                True,
            )
        return None
    if ctype == IEND and length != 0:
        return f"{where} has length {length}, must be 0", False
    if ctype == HEAD:
        return f"second HEAD chunk at byte {pos}", False
    if length > MAX_CHUNK_LENGTH:
        return f"{where} has an impossible length {length}", False
    return None


def examine(data: bytes, pos: int, header: Header, expect: Expect) -> Chunk | Problem:
    """Structural and CRC checks of the chunk at ``pos``; meaning is left to the caller.

    Lengths are checked against the header and the bytes present before any use, so
    nothing is ever allocated from an untrusted length.
    """
    if len(data) - pos < 8:
        return Problem("cut", "", False, None)
    length, ctype = CHUNK_PREFIX.unpack_from(data, pos)
    chunk = Chunk(ctype, pos, length)
    if not is_letters(ctype):
        return Problem(
            "malformed", f"invalid chunk type '{type_name(ctype)}' at byte {pos}", False, chunk
        )
    wrong = _meaning_problem(ctype, length, pos, header, expect)
    if wrong is not None:
        return Problem("malformed", wrong[0], wrong[1], chunk)
    awaited = ctype == CODE or (ctype == SMAP and expect.needs_map)
    if chunk.end > len(data):
        return Problem("cut", "", awaited, chunk)
    if not chunks.crc_ok(data, chunk):
        where = f"chunk '{type_name(ctype)}' at byte {pos}"
        if ctype == CODE:
            where = f"chunk 'CODE' ({stage_label(header, expect.next_stage)}) at byte {pos}"
        return Problem("crc", f"CRC mismatch in {where}", awaited, chunk)
    return chunk


def map_is_cheap(header: Header) -> bool:
    return (
        header.blocks_y * max(header.stages - 2, 0) <= CHEAP_MAP_STEPS and header.n_blocks <= 2**20
    )


def collect_ancillary(data: bytes, pos: int, ancillary: dict[bytes, bytes]) -> None:
    """Ancillary chunks after ``pos`` (e.g. alpha after the codes: the spec allows them
    anywhere before IEND), for a read that stops at ``max_stages``: chunks are walked by
    their lengths, only the ancillary ones are CRC-checked, and the walk stops quietly at
    the first thing that does not fit, as the unread stages are not this read's business."""
    while len(data) - pos >= 12:
        length, ctype = CHUNK_PREFIX.unpack_from(data, pos)
        chunk = Chunk(ctype, pos, length)
        if not is_letters(ctype) or chunk.end > len(data) or ctype == IEND:
            return
        if not is_critical(ctype) and ctype not in ancillary and chunks.crc_ok(data, chunk):
            ancillary[ctype] = bytes(data[chunk.data_start : chunk.end - 4])
        pos = chunk.end


class _Reader:
    """One read of one file: the state the chunk loop carries from chunk to chunk."""

    def __init__(
        self,
        data: bytes,
        header: Header,
        pos: int,
        version: int,
        salvage: bool,
        max_stages: int | None,
        codes: bool,
        tables: BitTables | None,
    ):
        self.data, self.header, self.pos = data, header, pos
        self.tables = tables
        self.version, self.layout = version, layout_for(version)
        self.salvage, self.max_stages, self.codes = salvage, max_stages, codes
        self.stage_bits: list[np.ndarray] = []
        self.ancillary: dict[bytes, bytes] = {}
        self.warnings: list[str] = []
        self.complete = False
        self.damaged = False  # salvage: damage seen, so a missing first code is corruption
        self.counts: np.ndarray | None = None
        self.map_read = False
        self.budget = CrcBudget(len(data))

    @property
    def expect(self) -> Expect:
        return Expect(len(self.stage_bits) + 1, self.layout, self.counts, self.map_read)

    def run(self) -> Container:
        for _ in range(MAX_CHUNKS):
            found = examine(self.data, self.pos, self.header, self.expect)
            done = self.on_problem(found) if isinstance(found, Problem) else self.on_chunk(found)
            if done:
                break
        else:
            message = f"the file has more than {MAX_CHUNKS} chunks"
            if not self.salvage or not self.stage_bits:
                raise FormatError(f"malformed ir2i file: {message}")
            self.stop_at_damage(message)
        return Container(
            header=self.header,
            stage_bits=self.stage_bits,
            ancillary=self.ancillary,
            complete=self.complete,
            warnings=self.warnings,
            version=self.version,
            stage_counts=self.counts,
        )

    def stop_at_damage(self, message: str) -> None:
        # Stages after a damaged CODE chunk depend on it, so nothing after it is usable.
        if not self.stage_bits:
            what = "stage map" if self.layout.has_stage_map and not self.map_read else "first code"
            raise CorruptDataError(f"{message}: the {what} is damaged, nothing to decode")
        self.warnings.append(
            f"{message}: kept stages 1-{len(self.stage_bits)} of "
            f"{self.header.stages}, dropped the rest"
        )

    # ------------------------------------------------------------------ damage and cuts

    def on_problem(self, problem: Problem) -> bool:
        """Handle a chunk that cannot be used; True when the read ends here."""
        expect = self.expect
        # A non-CODE chunk running past the end is either a cut or a damaged length; a valid
        # expected chunk further on proves it is damage.
        if (
            problem.kind == "cut"
            and not problem.is_code
            and problem.chunk is not None
            and find_expected(self.data, self.pos + 1, self.header, expect, self.budget) is not None
        ):
            problem = Problem(
                "malformed",
                f"chunk '{type_name(problem.chunk.ctype)}' at byte "
                f"{self.pos} claims {problem.chunk.length} bytes, past the end, yet more "
                "chunks follow",
                False,
                problem.chunk,
            )
        if problem.kind == "cut":
            return self.on_cut(expect)
        if not self.salvage:
            cls = CorruptDataError if problem.kind == "crc" else FormatError
            prefix = "" if problem.kind == "crc" else "malformed ir2i file: "
            raise cls(f"{prefix}{problem.message}: the file is damaged")
        self.damaged = True
        if expect.next_stage > self.header.stages:
            self.warnings.append(
                f"{problem.message} after the last stage: all "
                f"{self.header.stages} stages are intact"
            )
            return True
        if problem.is_code:
            self.stop_at_damage(problem.message)
            return True
        resume = resume_after(self.data, problem, self.header, expect, self.budget)
        if resume is None:
            self.stop_at_damage(f"{problem.message}, and no intact code follows")
            return True
        self.warnings.append(f"dropped damaged bytes {self.pos}-{resume - 1} ({problem.message})")
        self.pos = resume
        return False

    def on_cut(self, expect: Expect) -> bool:
        if not self.stage_bits:
            raise TruncatedError(
                "file is truncated before the first code is complete: nothing to decode"
            )
        if expect.next_stage > self.header.stages:
            self.warnings.append(
                f"file is truncated: all {self.header.stages} stages "
                "present, but the end chunk is missing"
            )
        else:
            self.warnings.append(
                f"file is truncated: {len(self.stage_bits)} of {self.header.stages} stages present"
            )
        return True

    # ------------------------------------------------------------------ intact chunks

    def on_chunk(self, chunk: Chunk) -> bool:
        """Take the meaning of an intact chunk; True when the read ends here."""
        body = memoryview(self.data)[chunk.data_start : chunk.end - 4]
        if chunk.ctype == CODE:
            if self.on_code(body):
                return True
            if self.max_stages is not None and len(self.stage_bits) >= self.max_stages:
                collect_ancillary(self.data, chunk.end, self.ancillary)
                return True
        elif chunk.ctype == SMAP:
            self.on_stage_map(body)
        elif chunk.ctype == IEND:
            return self.on_end(chunk)
        elif is_critical(chunk.ctype):
            raise UnsupportedVersionError(
                f"file needs chunk '{type_name(chunk.ctype)}', unknown to this ir2i "
                "(written by a newer ir2i?); upgrade"
            )
        elif chunk.ctype in self.ancillary:
            self.warnings.append(
                f"ignored duplicate ancillary chunk '{type_name(chunk.ctype)}' at byte {self.pos}"
            )
        else:
            self.ancillary[chunk.ctype] = bytes(body)
        self.pos = chunk.end
        return False

    def on_code(self, body: memoryview) -> bool:
        """Read a CODE chunk's stages; True when damage ends the read (salvage)."""
        next_stage = len(self.stage_bits) + 1
        first, count = code_span(self.header, next_stage)
        try:
            if (body[0], body[1]) != (first, count):
                raise FormatError(
                    f"chunk 'CODE' at byte {self.pos} holds {span_label(body[0], body[1])}, "
                    f"expected {stage_label(self.header, next_stage)}"
                )
            if self.codes:
                self.stage_bits.extend(
                    self.layout.read_code(
                        body, self.header, self.counts, self.stage_bits, self.pos, self.tables
                    )
                )
            else:
                self.stage_bits.extend(
                    np.zeros((0, self.header.bits_per_stage), np.uint8) for _ in range(count)
                )
        except FormatError as e:
            if not self.salvage or (not self.stage_bits and not self.damaged):
                raise FormatError(f"malformed ir2i file: {e}") from None
            self.stop_at_damage(str(e))
            return True
        return False

    def on_stage_map(self, body: memoryview) -> None:
        if not self.layout.has_stage_map:
            raise FormatError(
                f"malformed ir2i file: chunk 'SMAP' at byte {self.pos} is not "
                f"part of format version {self.version}, which the header "
                "declares"
            )
        if self.codes or map_is_cheap(self.header):
            try:
                self.counts = read_stage_map(body, self.header, self.pos)
            except FormatError as e:
                raise FormatError(f"malformed ir2i file: {e}") from None
        self.map_read = True

    def on_end(self, chunk: Chunk) -> bool:
        if len(self.stage_bits) < self.header.stages or self.expect.needs_map:
            message = (
                f"end chunk at byte {self.pos} after {len(self.stage_bits)} of "
                f"{self.header.stages} declared stages"
            )
            if not self.salvage or (not self.stage_bits and not self.damaged):
                raise FormatError(f"malformed ir2i file: {message}")
            self.stop_at_damage(message)
            return True
        self.complete = True  # any damage skipped on the way is already in warnings
        if chunk.end < len(self.data):
            self.warnings.append(f"ignored {len(self.data) - chunk.end} bytes after the end chunk")
        return True


def read_container(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    salvage: bool = False,
    max_stages: int | None = None,
    codes: bool = True,
    tables: BitTables | None = None,
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
    costs what decoding it does. ``tables``: the bit tables of the model that made the file,
    which the codes of format version 3 need (``TablesNeededError`` without them).
    """
    data = as_bytes(data)
    header, pos, version = parse_head(data, max_pixels)
    if codes:
        layout_for(version).coding_tables(tables)  # refuse at once, not at the first CODE
    return _Reader(data, header, pos, version, salvage, max_stages, codes, tables).run()
