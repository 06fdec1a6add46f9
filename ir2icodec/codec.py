"""Encoding and decoding whole images with a model bundle: the IR2I coding procedure.

Per band of block rows: the first code (stages 1-2) runs diagonal by diagonal, each block
inpainted from the 8-bit stage-2 reconstruction of its decoded neighbours (never the
original); then stages 3..N run for the whole band at once. The encoder runs the decoder's
computation to get exactly the context the decoder will see, so a decoder on the same machine
reproduces the encoder's reconstruction bit for bit.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from . import blocks as blk
from . import entropy
from .container import (
    DEFAULT_BAND_ROWS,
    DEFAULT_MAX_PIXELS,
    FIRST_CODE_STAGES,
    MIN_STAGES,
    Container,
    Header,
    read_container,
    read_header_and_version,
    write_container,
)
from .errors import CorruptDataError, ModelMismatchError, UsageError
from .metadata import Metadata, from_chunks
from .postfilter import apply as apply_postfilter
from .ratecontrol import (
    DEFAULT_DISTORTION,
    DEFAULT_QUALITY,
    QUALITY_RANGE,
    Distortion,
    allocate,
    block_distortion,
    lowest_distortion_counts,
    quality_to_lambda,
    search_lambda,
)
from .runtime import OnnxModel, State
from .tuning import rate_control_distortion

Schedule = Literal["wavefront", "raster"]
Progress = Callable[[int], None]  # called with the number of block-stages just coded
StageCosts = Literal["flat", "coded"]  # what rate control takes a stage to cost
DEFAULT_STAGE_COSTS: StageCosts = "flat"
ALPHA_CHUNK = b"aLPH"  # ancillary: the alpha plane, zlib-compressed (lossless)


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    reconstruction: np.ndarray | None  # (H, W, 3) uint8: what --no-filter decodes (None when
    # not kept: it costs a copy of the image per stage count while encoding)
    stage_map: np.ndarray  # (blocks_y, blocks_x): each block's stage count
    # A size target above what the model's best picture takes: the file is that picture,
    # smaller than the target (False whenever no target was given).
    target_above_top: bool = False


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8 when the file carries alpha
    stages: int  # stages decoded
    container: Container
    warnings: list[str] = field(default_factory=list)
    stage_map: np.ndarray | None = None  # (blocks_y, blocks_x): stages each block decoded
    filtered: bool = False  # the model's post-filter ran on ``rgb``

    @property
    def metadata(self) -> Metadata:
        """The colour profile, EXIF and XMP the file carries."""
        return from_chunks(self.container.ancillary)


# Blocks whose first code is done wait in a batch for stages 3..; the batch runs once it
# holds this many (and at the end). Later stages have no dependency between blocks, so the
# batches change nothing in the result, and they bound the stage state held at once
# (about 40 KB per block for compact models) whatever the image's width.
LATER_STAGES_BATCH = 1024
# Blocks a worker takes at once through stages 3..: the state passed between stages (~40 KB
# a block) of this many stays in the core's cache. 512 blocks at once ran stages 3-8 in 443 ms
# against 292 ms in parts of 96 (one thread, compact-7, a one-off timing); with both workers
# busy, smaller parts still gain: kodim23's whole decode took 0.302 / 0.299 / 0.293 / 0.301 s
# in parts of 16 / 24 / 32 / 48 blocks (compact-9, a one-off timing, median of 21 interleaved
# rounds), and `benchmarks.speed --baseline` put 32 against 96 at 0.86x with the entropy
# decoder's and the pixel conversions' speed-ups of the same change.
LATER_STAGES_PART = 32


@dataclass
class _FirstCoded:
    """What stages 3.. need from the first code, for the blocks gathered so far."""

    coords: list[np.ndarray] = field(default_factory=list)
    glob: list[np.ndarray] = field(default_factory=list)
    inpainting: list[np.ndarray] = field(default_factory=list)
    recon: list[np.ndarray] = field(default_factory=list)
    dec_state: list[State] = field(default_factory=list)
    enc_state: list[State | None] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(g) for g in self.glob)

    def add(self, coords, glob, inp, recon, dec_state, enc_state) -> None:
        for field_list, value in zip(
            (self.coords, self.glob, self.inpainting, self.recon, self.dec_state, self.enc_state),
            (coords, glob, inp, recon, dec_state, enc_state),
        ):
            field_list.append(value)

    def take(self) -> _Batch:
        """The gathered blocks as one batch; empties the gathering."""

        def states(parts: list) -> State | None:
            if not parts or parts[0] is None:
                return None
            return [np.concatenate(layer) for layer in zip(*parts)]

        batch = _Batch(
            np.concatenate(self.coords),
            np.concatenate(self.glob),
            np.concatenate(self.inpainting),
            np.concatenate(self.recon),
            states(self.dec_state),
            states(self.enc_state),
        )
        for gathered in (
            self.coords,
            self.glob,
            self.inpainting,
            self.recon,
            self.dec_state,
            self.enc_state,
        ):
            gathered.clear()
        return batch


@dataclass
class _Batch:
    """Blocks at one point of their stages: coordinates, indices, inpainting estimate,
    reconstruction and the state passed to the next stage."""

    coords: np.ndarray
    glob: np.ndarray
    inpainting: np.ndarray
    recon: np.ndarray
    dec_state: State | None
    enc_state: State | None

    def subset(self, keep: np.ndarray | slice) -> _Batch:
        def states(state: State | None) -> State | None:
            return [x[keep] for x in state] if state else state

        return _Batch(
            self.coords[keep],
            self.glob[keep],
            self.inpainting[keep],
            self.recon[keep],
            states(self.dec_state),
            states(self.enc_state),
        )


def _run_stages(
    model: OnnxModel,
    stage_numbers: range,
    inpainting: np.ndarray,
    recon: np.ndarray | None,
    dec_state: State | None,
    enc_state: State | None,
    targets: np.ndarray | None,
    codes: np.ndarray,
    rows: np.ndarray,
) -> tuple[np.ndarray | None, State | None, State | None]:
    """Run stages on one batch of blocks, on the calling thread (the callers run one batch
    per CPU worker). Encoding (targets given) writes the codes it makes into
    ``codes[s-1, rows]``; decoding reads them from there (int8 +-1, a quarter of float32's
    memory; the networks get them as float32). Both then decode the codes, so the
    encoder tracks the decoder's reconstruction exactly."""
    for s in stage_numbers:
        if targets is not None:
            residual = targets - (inpainting if recon is None else recon)
            code, enc_state = model.encode_stage(s, residual, enc_state, split=False)
            codes[s - 1, rows] = code
        recon, dec_state = model.decode_stage(
            s, codes[s - 1, rows].astype(np.float32), inpainting, dec_state, split=False
        )
    return recon, dec_state, enc_state


StageHook = Callable[[int, np.ndarray, np.ndarray], None]  # (stage, block indices, uint8 blocks)


def _code_image(
    model: OnnxModel,
    blocks_y: int,
    blocks_x: int,
    stages: int,
    band_rows: int,
    codes: np.ndarray,
    source: np.ndarray | None,
    schedule: Schedule,
    progress: Progress | None = None,
    block_stages: np.ndarray | None = None,
    on_stage: StageHook | None = None,
) -> np.ndarray:
    """The shared procedure of encoder (``source`` = padded image) and decoder (None).

    ``block_stages`` (n_blocks,) gives each block's stage count (default: ``stages`` for
    all); stages beyond a block's count are not run. ``on_stage`` sees each stage's 8-bit
    reconstruction of the blocks that ran it, from stage 2 on (the encoder's rate control).
    Returns the padded (H, W, 3) uint8 reconstruction.

    The first code runs band by band in anti-diagonals (each block's inpainting needs its
    decoded neighbours); stages 3.. run on batches of the finished blocks. Each batch is cut
    into one part per CPU worker, and a worker runs every network of its part in turn: one
    dispatch per batch instead of one per network, no state gathered between stages.
    """
    b = model.block_size
    later = range(FIRST_CODE_STAGES + 1, stages + 1)
    final = np.zeros((blocks_y * b, blocks_x * b, 3), np.uint8)
    # the stage-2 pixels the inpainting reads, one band at a time
    canvas = blk.BandCanvas(min(band_rows or blocks_y, blocks_y), blocks_x, b)
    stage2_image = final if not later else None  # without later stages: the picture
    finished = _FirstCoded() if later else None  # blocks waiting for stages 3..

    def run_later_stages() -> None:
        _code_later_stages(
            model, later, finished.take(), source, codes, final, progress, block_stages, on_stage
        )

    for rows in blk.bands(blocks_y, band_rows):
        canvas.start_band(rows)
        if schedule == "raster":
            batches = blk.raster(rows, blocks_x)
        elif model.has_inpainting:
            batches = blk.diagonals(rows, blocks_x)
        else:  # without inpainting no block depends on another
            batches = [np.array([(r, c) for r in rows for c in range(blocks_x)])]
        for coords in batches:
            _code_first(
                model, coords, blocks_x, canvas, stage2_image, source, codes, on_stage, finished
            )
            if progress is not None:
                progress(len(coords) * FIRST_CODE_STAGES)
            if finished is not None and len(finished) >= LATER_STAGES_BATCH:
                run_later_stages()
    if finished is not None and len(finished):
        run_later_stages()
    return final


def _code_first(
    model: OnnxModel,
    coords: np.ndarray,
    blocks_x: int,
    canvas: blk.BandCanvas,
    stage2_image: np.ndarray | None,
    source: np.ndarray | None,
    codes: np.ndarray,
    on_stage: StageHook | None,
    finished: _FirstCoded | None,
) -> None:
    """The first code (inpainting, stages 1-2) of a batch of blocks that do not depend on
    each other; their stage-2 pixels go into ``canvas`` (the next batches' context) and
    ``stage2_image`` (the picture, when there are no later stages), and what their later
    stages need into ``finished`` (None: no later stages)."""
    b = model.block_size
    glob = blk.block_index(coords, blocks_x)

    def first_code(part: slice) -> tuple:
        # Reads the canvas only where earlier batches wrote (the inpainting context);
        # this batch's blocks are placed after every part is done.
        inp = model.inpaint(canvas.contexts(coords[part]), split=False)
        targets = (
            blk.to_unit(blk.extract_blocks(source, coords[part], b)) if source is not None else None
        )
        first = range(1, FIRST_CODE_STAGES + 1)
        return inp, *_run_stages(model, first, inp, None, None, None, targets, codes, glob[part])

    parts = model.worker_parts(np.ones(len(coords)))
    for part, (inp, recon, dec_state, enc_state) in zip(
        parts, model.map_parallel(first_code, parts)
    ):
        stage2 = blk.to_uint8(recon)
        canvas.place(coords[part], stage2)
        if stage2_image is not None:
            blk.place_blocks(stage2_image, coords[part], stage2, b)
        if on_stage is not None:
            on_stage(FIRST_CODE_STAGES, glob[part], stage2)
        if finished is not None:
            finished.add(coords[part], glob[part], inp, recon, dec_state, enc_state)


# stage, blocks that ran it, and the coords, raster indices and 8-bit pixels of those returned
StageResult = tuple[int, int, np.ndarray, np.ndarray, np.ndarray]


def _later_stages_of_part(
    model: OnnxModel,
    later: range,
    batch: _Batch,
    wanted: np.ndarray,
    source: np.ndarray | None,
    codes: np.ndarray,
    every_stage: bool,
) -> list[StageResult]:
    """Stages 3.. of one worker's part of a batch; a block drops out after its count.
    Returns the 8-bit blocks for the caller to place: of every stage with ``every_stage``
    (the encoder's rate control looks at each), else only each block's last (the picture;
    the stages before it would be overwritten)."""
    b = model.block_size
    targets = (
        blk.to_unit(blk.extract_blocks(source, batch.coords, b)) if source is not None else None
    )
    results: list[StageResult] = []
    for s in later:
        keep = wanted >= s
        if not keep.any():
            break
        if not keep.all():  # the working set only shrinks: subset it once per stage
            batch, wanted = batch.subset(keep), wanted[keep]
            targets = targets[keep] if targets is not None else None
        recon, dec_state, enc_state = _run_stages(
            model,
            range(s, s + 1),
            batch.inpainting,
            batch.recon,
            batch.dec_state,
            batch.enc_state,
            targets,
            codes,
            batch.glob,
        )
        batch = _Batch(batch.coords, batch.glob, batch.inpainting, recon, dec_state, enc_state)
        shown = slice(None) if every_stage else wanted == s  # (none, mostly, until the last)
        pixels = blk.to_uint8(recon[shown])
        results.append((s, len(batch.glob), batch.coords[shown], batch.glob[shown], pixels))
    return results


def _code_later_stages(
    model: OnnxModel,
    later: range,
    batch: _Batch,
    source: np.ndarray | None,
    codes: np.ndarray,
    final: np.ndarray,
    progress: Progress | None,
    block_stages: np.ndarray | None,
    on_stage: StageHook | None,
) -> None:
    """Stages 3.. of a batch: its blocks cut into parts of equal work (at least one per
    worker, about ``LATER_STAGES_PART`` blocks at most), the workers taking them in turn."""
    b = model.block_size
    wanted = (
        np.full(len(batch.glob), later.stop - 1)
        if block_stages is None
        else block_stages[batch.glob]
    )
    blk.place_blocks(final, batch.coords, blk.to_uint8(batch.recon), b)  # those stopping at 2
    parts = model.worker_parts(np.maximum(wanted - FIRST_CODE_STAGES, 0), LATER_STAGES_PART)
    for results in model.map_parallel(
        lambda part: _later_stages_of_part(
            model, later, batch.subset(part), wanted[part], source, codes, on_stage is not None
        ),
        parts,
    ):
        for s, ran, coords, stage_glob, pixels in results:
            blk.place_blocks(final, coords, pixels, b)
            if on_stage is not None:
                on_stage(s, stage_glob, pixels)
            if progress is not None:
                progress(ran)


def _check_stages(stages: int, model: OnnxModel, what: str) -> None:
    if not MIN_STAGES <= stages <= model.stages:
        raise UsageError(
            f"{what} must be a whole number of stages from {MIN_STAGES} to "
            f"{model.stages}, got {stages}"
        )


@dataclass(frozen=True)
class StageAnalysis:
    """Everything rate control needs, from one run of every stage up to ``cap`` on an image:
    each block's distortion and 8-bit reconstruction after each stage count, and the codes.
    ``write`` and ``reconstruction`` then serve any allocation without running a network."""

    header: Header  # with stages = cap
    stage_bits: list[np.ndarray]  # cap x (n_blocks, bits) uint8 0/1
    distortion: np.ndarray  # (n_blocks, cap - 1): column j = after 2 + j stages
    pixels: np.ndarray | None  # (cap - 1, n_blocks, b, b, 3) uint8, unless not kept
    ancillary: dict[bytes, bytes] | None
    kind: Distortion = DEFAULT_DISTORTION  # what ``distortion`` measures
    # What each stage costs: the flat bits per stage, or (n_blocks, cap - 1) each block's
    # bits beyond the first code, as the entropy coder would spend them (costs="coded").
    stage_costs: int | np.ndarray | None = None
    # The model's bit tables: files are format version 3 with them, version 2 without.
    tables: entropy.BitTables | None = None

    def write(
        self, counts: np.ndarray, payload_cache: MutableMapping[bytes, bytes] | None = None
    ) -> bytes:
        """The .ir2i file (format version 3 with the model's bit tables, else 2) with these
        per-block stage counts (``payload_cache``: see ``write_container``)."""
        top = int(counts.max())
        return write_container(
            replace(self.header, stages=top),
            self.stage_bits[:top],
            self.ancillary,
            stage_counts=counts,
            payload_cache=payload_cache,
            tables=self.tables,
        )

    def reconstruction(self, counts: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8: what a decoder of that file shows without the post-filter."""
        if self.pixels is None:
            raise ValueError("this analysis did not keep the stage pixels (keep_pixels=False)")
        h, w, b = self.header.height, self.header.width, self.header.block_size
        by, bx = self.header.blocks_y, self.header.blocks_x
        n = by * bx
        chosen = self.pixels[counts.astype(np.intp) - FIRST_CODE_STAGES, np.arange(n)]
        padded = np.empty((by * b, bx * b, 3), np.uint8)
        blk.place_blocks(padded, blk.raster_coords(by, bx), chosen, b)
        return padded[:h, :w]

    def top_counts(self) -> np.ndarray:
        """Per-block stage counts of the lowest distortion this analysis can buy."""
        bits = self.header.bits_per_stage if self.stage_costs is None else self.stage_costs
        return lowest_distortion_counts(self.distortion, bits, FIRST_CODE_STAGES)

    def counts_for(
        self,
        *,
        stages: int | None = None,
        quality: float | None = None,
        target_bytes: float | None = None,
        payload_cache: MutableMapping[bytes, bytes] | None = None,
    ) -> np.ndarray:
        """Per-block stage counts (n_blocks,) for one rate setting (exactly one given).
        ``payload_cache``: the chunks a size target's search coded, for the caller's ``write``
        of the chosen counts."""
        cap = self.header.stages
        bits = self.header.bits_per_stage if self.stage_costs is None else self.stage_costs
        if stages is not None:
            return np.full(self.header.n_blocks, min(stages, cap), np.uint8)
        if quality is not None:
            return allocate(
                self.distortion, quality_to_lambda(quality, self.kind), bits, FIRST_CODE_STAGES
            )
        if target_bytes is None:
            raise ValueError("give stages, quality or target_bytes")
        # The search writes dozens of allocations that differ in a few chunks (the first code's
        # never changes): each chunk is entropy-coded once per set of blocks it holds.
        payloads = {} if payload_cache is None else payload_cache
        top = self.top_counts()
        if len(self.write(top, payloads)) <= target_bytes:
            return top  # the target buys more than the best picture takes: no search
        counts, _ = search_lambda(
            self.distortion,
            bits,
            FIRST_CODE_STAGES,
            lambda c: len(self.write(c, payloads)),
            target_bytes,
        )
        return counts


def analyse(
    rgb: np.ndarray,
    model: OnnxModel,
    cap: int | None = None,
    *,
    distortion: Distortion | None = None,
    alpha: np.ndarray | None = None,
    extra_chunks: dict[bytes, bytes] | None = None,
    band_rows: int = DEFAULT_BAND_ROWS,
    schedule: Schedule = "wavefront",
    progress: Progress | None = None,
    keep_pixels: bool = True,
    costs: StageCosts = DEFAULT_STAGE_COSTS,
) -> StageAnalysis:
    """Run stages 1..``cap`` on every block of an (H, W, 3) uint8 image, measuring each block
    after each stage (only pixels inside the image count). ``keep_pixels`` keeps every
    stage count's 8-bit blocks for ``reconstruction`` (about 1 GiB at 50 megapixels).
    ``costs``: what rate control takes a stage to cost, "flat" (its raw bits) or "coded"
    (each block's own, as the entropy coder would spend them). ``distortion``: the block
    distortion rate control weighs (default: the one the model's tune asks for)."""
    cap = model.stages if cap is None else cap
    distortion = distortion or rate_control_distortion(model.tune)
    _check_stages(cap, model, "stages")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise UsageError("the image must be a non-empty (H, W, 3) uint8 array")
    h, w = rgb.shape[:2]
    b = model.block_size
    by, bx = blk.blocks_shape(h, w, b)
    n_blocks = by * bx
    codes = np.empty((cap, n_blocks, *model.code_shape), np.int8)
    padded = blk.pad_to_blocks(rgb, b)
    coords = blk.raster_coords(by, bx)
    pixels = (
        np.empty((cap - FIRST_CODE_STAGES + 1, n_blocks, b, b, 3), np.uint8)
        if keep_pixels
        else None
    )
    dist = np.empty((n_blocks, cap - FIRST_CODE_STAGES + 1))

    def record(s: int, idx: np.ndarray, decoded: np.ndarray) -> None:
        if pixels is not None:
            pixels[s - FIRST_CODE_STAGES, idx] = decoded
        # The originals and their masks are made per call, not kept for the whole picture
        # (200 MB at 50 megapixels, for copies that take about 1 ms at 768x512).
        original = blk.extract_blocks(padded, coords[idx], b)
        inside = blk.inside_of(coords[idx], h, w, b)
        dist[idx, s - FIRST_CODE_STAGES] = block_distortion(original, decoded, inside, distortion)

    _code_image(model, by, bx, cap, band_rows, codes, padded, schedule, progress, on_stage=record)
    header = Header(
        width=w,
        height=h,
        stages=cap,
        model_name=model.name,
        model_digest=model.file_digest(model.format_version),
        block_size=b,
        bits_per_stage=model.bits_per_stage,
        band_rows=band_rows,
    )
    stage_bits = [(c.reshape(n_blocks, -1) > 0).astype(np.uint8) for c in codes]
    ancillary = (
        {ALPHA_CHUNK: zlib.compress(np.ascontiguousarray(alpha).tobytes(), 9)}
        if alpha is not None
        else {}
    )
    ancillary = {**ancillary, **(extra_chunks or {})} or None
    tables = model.bit_tables
    stage_costs = coded_stage_costs(stage_bits, header, tables) if costs == "coded" else None
    return StageAnalysis(
        header, stage_bits, dist, pixels, ancillary, distortion, stage_costs, tables
    )


def coded_stage_costs(
    stage_bits: list[np.ndarray], header: Header, tables: entropy.BitTables | None = None
) -> np.ndarray:
    """(n_blocks, stages - 1): each block's bits beyond the first code after 2, 3, ...
    stages, each later stage costed by ``entropy.stage_bit_costs`` as one chunk of every
    block (the chunk of a real allocation holds fewer: an estimate)."""
    layout = entropy.CodeLayout.for_block(header.block_size, header.bits_per_stage)
    later = [
        entropy.stage_bit_costs(
            [stage_bits[s]], stage_bits[s - 1], layout, first_stage=s + 1, tables=tables
        )[0]
        for s in range(FIRST_CODE_STAGES, len(stage_bits))
    ]
    extra = np.zeros((header.n_blocks, len(stage_bits) - FIRST_CODE_STAGES + 1))
    if later:
        extra[:, 1:] = np.cumsum(np.stack(later, axis=1), axis=1)
    return extra


def encode(
    rgb: np.ndarray,
    model: OnnxModel,
    stages: int | None = None,
    *,
    quality: float | None = None,
    target_bpp: float | None = None,
    target_bytes: int | None = None,
    distortion: Distortion | None = None,
    alpha: np.ndarray | None = None,
    extra_chunks: dict[bytes, bytes] | None = None,
    band_rows: int = DEFAULT_BAND_ROWS,
    schedule: Schedule = "wavefront",
    progress: Progress | None = None,
    keep_reconstruction: bool = True,
    costs: StageCosts = DEFAULT_STAGE_COSTS,
) -> EncodeResult:
    """Encode an (H, W, 3) uint8 image; ``alpha`` (H, W) is stored losslessly if given.

    Rate control: ``quality`` (0..100) or a size target (``target_bpp`` or ``target_bytes``:
    the best quality whose file fits) gives each block its own stage count, with ``stages``
    as the cap; ``stages`` alone gives every block that many. With none of them, quality
    ``DEFAULT_QUALITY``. The file is format version 3 (entropy-coded from the model's bit
    tables), or 2 for a model without tables. Without
    ``keep_reconstruction`` the result has no reconstruction, and the encoder does not keep
    every stage count's pixels (a 50-megapixel encode peaked at 2.5 GiB instead of 3.4).
    """
    given = [t for t in (quality, target_bpp, target_bytes) if t is not None]
    if len(given) > 1:
        raise UsageError("quality, target_bpp and target_bytes are mutually exclusive")
    if not given and stages is None:
        quality = DEFAULT_QUALITY
    if quality is not None and not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
        raise UsageError(
            f"quality must be between {QUALITY_RANGE[0]:g} and "
            f"{QUALITY_RANGE[1]:g}, got {quality:g}"
        )
    if target_bpp is not None and not target_bpp > 0:
        raise UsageError(f"target_bpp must be above 0, got {target_bpp:g}")
    if target_bytes is not None and target_bytes < 1:
        raise UsageError(f"target_bytes must be at least 1 byte, got {target_bytes}")
    analysis = analyse(
        rgb,
        model,
        stages,
        distortion=distortion,
        alpha=alpha,
        extra_chunks=extra_chunks,
        band_rows=band_rows,
        schedule=schedule,
        progress=progress,
        keep_pixels=keep_reconstruction,
        costs=costs,
    )
    if target_bpp is not None:
        target_bytes = bpp_budget_bytes(target_bpp, rgb.shape[0] * rgb.shape[1])
    payloads: dict[bytes, bytes] = {}  # the search's coded chunks: the file reuses them
    counts = analysis.counts_for(
        stages=stages if not given and quality is None else None,
        quality=quality,
        target_bytes=target_bytes,
        payload_cache=payloads,
    )
    by, bx = analysis.header.blocks_y, analysis.header.blocks_x
    picture = analysis.reconstruction(counts) if keep_reconstruction else None
    data = analysis.write(counts, payloads)
    above_top = (
        target_bytes is not None
        and len(data) < target_bytes
        and np.array_equal(counts, analysis.top_counts())
    )
    return EncodeResult(data, picture, counts.reshape(by, bx), above_top)


def bpp_budget_bytes(target_bpp: float, pixels: int) -> int:
    """The most whole bytes a file of ``pixels`` may take at ``target_bpp``. The product is
    rounded to a millionth of a byte first, so that the bpp of an N-byte file (8 N / pixels,
    a float) buys N bytes, not N - 1 by floating-point noise."""
    return math.floor(round(target_bpp * pixels / 8, 6))


def check_model(header: Header, model: OnnxModel, version: int = 2) -> None:
    """ModelMismatchError unless ``model`` made this file of format ``version`` (version 3
    binds the model's bit tables too: ``OnnxModel.file_digest``)."""
    if version >= 3 and model.format_version < 3:
        raise ModelMismatchError(
            f"this file (format version 3) needs the bit tables of model "
            f"'{header.model_name}', which model '{model.name}' does not have"
        )
    if header.model_digest != model.file_digest(version):
        made_by = f"model '{header.model_name}' ({header.model_digest.hex()[:12]})"
        if header.model_name == model.name:  # same name, other weights: say which is which
            made_by = (
                f"another version of model '{header.model_name}' (digest "
                f"{header.model_digest.hex()[:12]}), not the loaded one "
                f"({model.file_digest(version).hex()[:12]})"
            )
        else:
            made_by += f", not by '{model.name}' ({model.file_digest(version).hex()[:12]})"
        raise ModelMismatchError(
            f"this file was made by {made_by}; decode it with --model pointing at that model"
        )
    if (header.block_size, header.bits_per_stage) != (
        model.block_size,
        model.bits_per_stage,
    ) or header.stages > model.stages:
        raise ModelMismatchError("the file's block size, bits or stage count do not fit the model")


def _read_for_decoding(
    data: bytes, model: OnnxModel, max_stages: int | None, salvage: bool, max_pixels: int
) -> tuple[Container, int, list[str], np.ndarray]:
    """The container, the stage count to decode, the notes, and the codes as the networks
    take them."""
    if max_stages is not None:
        _check_stages(max_stages, model, "max_stages")
    # The header against the model before any code is read: a forged layout costs nothing.
    header, version = read_header_and_version(data, max_pixels=max_pixels)
    check_model(header, model, version)
    container = read_container(
        data,
        max_pixels=max_pixels,
        salvage=salvage,
        max_stages=max_stages,
        tables=model.bit_tables if version >= 3 else None,
    )
    header = container.header
    notes = list(container.warnings)
    stages = container.stages_found
    if max_stages is not None:
        if max_stages > stages:
            notes.append(f"asked for {max_stages} stages, the file holds {stages}")
        stages = min(stages, max_stages)
    codes = np.stack(
        [
            (2 * bits.astype(np.int8) - 1).reshape(header.n_blocks, *model.code_shape)
            for bits in container.stage_bits[:stages]
        ]
    )
    return container, stages, notes, codes


def _finish(
    padded: np.ndarray,
    block_stages: np.ndarray,
    container: Container,
    stages: int,
    notes: list[str],
    model: OnnxModel,
    postfilter: bool,
) -> Decoded:
    """A decoded picture: cropped, post-filtered if asked, with its alpha plane."""
    header = container.header
    stage_map = block_stages.reshape(header.blocks_y, header.blocks_x)
    rgb = padded[: header.height, : header.width]
    filtered = postfilter and model.postfilter_spec is not None
    if filtered:
        rgb = apply_postfilter(rgb, stage_map, model)
    return Decoded(
        rgb, _read_alpha(container, header), stages, container, notes, stage_map, filtered
    )


def decode(
    data: bytes,
    model: OnnxModel,
    *,
    max_stages: int | None = None,
    salvage: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    schedule: Schedule = "wavefront",
    progress: Progress | None = None,
    postfilter: bool = True,
) -> Decoded:
    """Decode .ir2i bytes, up to ``max_stages`` stages (default: all that the file holds).

    With ``postfilter`` (and a model that has one) the picture is the model's post-filter of
    the reconstruction; without, the bit-exact reconstruction the encoder tracked."""
    container, stages, notes, codes = _read_for_decoding(
        data, model, max_stages, salvage, max_pixels
    )
    header = container.header
    block_stages = np.minimum(container.block_stages(), stages)
    padded = _code_image(
        model,
        header.blocks_y,
        header.blocks_x,
        stages,
        header.band_rows,
        codes,
        None,
        schedule,
        progress,
        block_stages=block_stages,
    )
    return _finish(padded, block_stages, container, stages, notes, model, postfilter)


def decode_stage_counts(
    data: bytes,
    model: OnnxModel,
    *,
    max_stages: int | None = None,
    salvage: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    postfilter: bool = True,
) -> list[Decoded]:
    """The picture of every stage count from the first code up to ``max_stages`` (default:
    all present), in one pass over the stages: each block-stage runs once (8 stages: 8 units
    of work per block instead of 35 for eight separate decodes). Each picture is what
    ``decode(data, model, max_stages=k)`` gives; the notes are the last one's."""
    container, stages, notes, codes = _read_for_decoding(
        data, model, max_stages, salvage, max_pixels
    )
    header = container.header
    b = header.block_size
    counts = np.minimum(container.block_stages(), stages)
    steps: list[tuple[int, np.ndarray, np.ndarray]] = []
    _code_image(
        model,
        header.blocks_y,
        header.blocks_x,
        stages,
        header.band_rows,
        codes,
        None,
        "wavefront",
        progress,
        block_stages=counts,
        on_stage=lambda s, glob, pixels: steps.append((s, glob, pixels)),
    )
    coords = blk.raster_coords(header.blocks_y, header.blocks_x)
    padded = np.zeros((header.blocks_y * b, header.blocks_x * b, 3), np.uint8)
    pictures = []
    for k in range(FIRST_CODE_STAGES, stages + 1):
        for s, glob, pixels in steps:
            if s == k:
                blk.place_blocks(padded, coords[glob], pixels, b)
        pictures.append(
            _finish(
                padded.copy(),
                np.minimum(counts, k),
                container,
                k,
                notes if k == stages else [],
                model,
                postfilter,
            )
        )
    return pictures


def _read_alpha(container: Container, header: Header) -> np.ndarray | None:
    raw = container.ancillary.get(ALPHA_CHUNK)
    if raw is None:
        return None
    n = header.width * header.height
    try:
        inflater = zlib.decompressobj()
        plane = inflater.decompress(raw, n + 1)  # bounded: a zip bomb cannot inflate past n+1
    except zlib.error as e:
        raise CorruptDataError(f"the alpha chunk is damaged ({e})") from e
    if len(plane) != n or not inflater.eof:
        raise CorruptDataError("the alpha chunk does not match the image size")
    return np.frombuffer(plane, np.uint8).reshape(header.height, header.width)
