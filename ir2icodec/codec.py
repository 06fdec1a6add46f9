"""Encoding and decoding whole images with a model bundle: the IR2I coding procedure.

Per band of block rows: the first code (stages 1-2) runs diagonal by diagonal, each block
inpainted from the 8-bit stage-2 reconstruction of its decoded neighbours (never the
original); then stages 3..N run for the whole band at once. The encoder runs the decoder's
computation to get exactly the context the decoder will see, so a decoder on the same machine
reproduces the encoder's reconstruction bit for bit.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import blocks as blk
from .container import (
    DEFAULT_BAND_ROWS,
    DEFAULT_MAX_PIXELS,
    FIRST_CODE_STAGES,
    MIN_STAGES,
    Container,
    Header,
    read_container,
    write_container,
)
from .errors import CorruptDataError, ModelMismatchError, UsageError
from .runtime import OnnxModel, State

Schedule = Literal["wavefront", "raster"]
Progress = Callable[[int], None]  # called with the number of block-stages just coded
ALPHA_CHUNK = b"aLPH"  # ancillary: the alpha plane, zlib-compressed (lossless)


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    reconstruction: np.ndarray  # (H, W, 3) uint8: what a decoder of all stages shows


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray                  # (H, W, 3) uint8
    alpha: np.ndarray | None         # (H, W) uint8 when the file carries alpha
    stages: int                      # stages decoded
    container: Container
    warnings: list[str] = field(default_factory=list)


@dataclass
class _BandState:
    """What stages 3..N of a band need from its first code, per block of the band."""

    inpainting: np.ndarray
    dec_state: State | None = None
    enc_state: State | None = None
    recon: np.ndarray | None = None

    def store(self, local: np.ndarray, inp: np.ndarray, recon: np.ndarray,
              dec_state: State, enc_state: State | None) -> None:
        self.inpainting[local] = inp
        self.recon = _scatter(self.recon, local, recon, len(self.inpainting))
        self.dec_state = _scatter_list(self.dec_state, local, dec_state, len(self.inpainting))
        if enc_state:
            self.enc_state = _scatter_list(self.enc_state, local, enc_state, len(self.inpainting))


def _scatter(dst: np.ndarray | None, idx: np.ndarray, src: np.ndarray, n: int) -> np.ndarray:
    if dst is None:
        dst = np.empty((n, *src.shape[1:]), src.dtype)
    dst[idx] = src
    return dst


def _scatter_list(dst: State | None, idx: np.ndarray, src: State, n: int) -> State:
    dst = dst or [None] * len(src)
    return [_scatter(d, idx, s, n) for d, s in zip(dst, src)]


def _run_stages(model: OnnxModel, stage_numbers: range, inpainting: np.ndarray,
                recon: np.ndarray | None, dec_state: State | None, enc_state: State | None,
                targets: np.ndarray | None, codes: np.ndarray, rows: np.ndarray,
                progress: Progress | None = None
                ) -> tuple[np.ndarray | None, State | None, State | None]:
    """Run stages on one batch of blocks. Encoding (targets given) writes the codes it makes
    into ``codes[s-1, rows]``; decoding reads them from there. Both then decode the codes,
    so the encoder tracks the decoder's reconstruction exactly."""
    for s in stage_numbers:
        if targets is not None:
            residual = targets - (inpainting if recon is None else recon)
            code, enc_state = model.encode_stage(s, residual, enc_state)
            codes[s - 1, rows] = code
        recon, dec_state = model.decode_stage(s, codes[s - 1, rows], inpainting, dec_state)
        if progress is not None:
            progress(len(rows))
    return recon, dec_state, enc_state


def _code_image(model: OnnxModel, blocks_y: int, blocks_x: int, stages: int, band_rows: int,
                codes: np.ndarray, source: np.ndarray | None, schedule: Schedule,
                progress: Progress | None = None) -> np.ndarray:
    """The shared procedure of encoder (``source`` = padded image) and decoder (None).

    Returns the padded (H, W, 3) uint8 reconstruction after ``stages`` stages.
    """
    b = model.block_size
    first = range(1, FIRST_CODE_STAGES + 1)
    later = range(FIRST_CODE_STAGES + 1, stages + 1)
    context_image = np.zeros((blocks_y * b, blocks_x * b, 3), np.uint8)  # stage-2, 8-bit
    final = context_image if not later else np.zeros_like(context_image)
    for rows in blk.bands(blocks_y, band_rows):
        band_coords = np.array([(r, c) for r in rows for c in range(blocks_x)])
        band = _BandState(np.empty((len(band_coords), 3, b, b), np.float32))
        if schedule == "raster":
            batches = blk.raster(rows, blocks_x)
        elif model.has_inpainting:
            batches = blk.diagonals(rows, blocks_x)
        else:  # without inpainting no block depends on another
            batches = [band_coords]
        for coords in batches:
            glob = blk.block_index(coords, blocks_x)
            local = glob - rows.start * blocks_x
            inp = model.inpaint(blk.contexts(context_image, coords, b))
            targets = blk.to_unit(blk.extract_blocks(source, coords, b)) if source is not None \
                else None
            recon, dec_state, enc_state = _run_stages(model, first, inp, None, None, None,
                                                      targets, codes, glob, progress)
            blk.place_blocks(context_image, coords, blk.to_uint8(recon), b)
            if later:
                band.store(local, inp, recon, dec_state, enc_state)
        if later:
            glob = blk.block_index(band_coords, blocks_x)
            targets = blk.to_unit(blk.extract_blocks(source, band_coords, b)) \
                if source is not None else None
            recon, _, _ = _run_stages(model, later, band.inpainting, band.recon, band.dec_state,
                                      band.enc_state, targets, codes, glob, progress)
            blk.place_blocks(final, band_coords, blk.to_uint8(recon), b)
    return final


def _check_stages(stages: int, model: OnnxModel, what: str) -> None:
    if not MIN_STAGES <= stages <= model.stages:
        raise UsageError(f"{what} must be between {MIN_STAGES} and {model.stages} "
                         f"(the first code holds {FIRST_CODE_STAGES} stages), got {stages}")


def encode(rgb: np.ndarray, model: OnnxModel, stages: int | None = None, *,
           alpha: np.ndarray | None = None, band_rows: int = DEFAULT_BAND_ROWS,
           schedule: Schedule = "wavefront", progress: Progress | None = None) -> EncodeResult:
    """Encode an (H, W, 3) uint8 image; ``alpha`` (H, W) is stored losslessly if given."""
    stages = model.stages if stages is None else stages
    _check_stages(stages, model, "--stages")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise UsageError("the image must be a non-empty (H, W, 3) uint8 array")
    h, w = rgb.shape[:2]
    by, bx = blk.blocks_shape(h, w, model.block_size)
    codes = np.empty((stages, by * bx, *model.code_shape), np.float32)
    padded = blk.pad_to_blocks(rgb, model.block_size)
    recon = _code_image(model, by, bx, stages, band_rows, codes, padded, schedule, progress)
    header = Header(width=w, height=h, stages=stages, model_name=model.name,
                    model_digest=model.digest, block_size=model.block_size,
                    bits_per_stage=model.bits_per_stage, band_rows=band_rows)
    stage_bits = [(c.reshape(by * bx, -1) > 0).astype(np.uint8) for c in codes]
    ancillary = {ALPHA_CHUNK: zlib.compress(np.ascontiguousarray(alpha).tobytes(), 9)} \
        if alpha is not None else None
    return EncodeResult(write_container(header, stage_bits, ancillary), recon[:h, :w])


def encode_array(rgb: np.ndarray, model: OnnxModel, stages: int | None = None, **kw) -> bytes:
    """Encode and return the .ir2i bytes."""
    return encode(rgb, model, stages, **kw).data


def check_model(header: Header, model: OnnxModel) -> None:
    if header.model_digest != model.digest:
        raise ModelMismatchError(
            f"this file was made by model '{header.model_name}' "
            f"({header.model_digest.hex()[:12]}), not by '{model.name}' "
            f"({model.digest.hex()[:12]}); decode it with --model pointing at that model")
    if (header.block_size, header.bits_per_stage) != (model.block_size, model.bits_per_stage) \
            or header.stages > model.stages:
        raise ModelMismatchError("the file's block size, bits or stage count do not fit the model")


def decode(data: bytes, model: OnnxModel, *, max_stages: int | None = None,
           salvage: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
           schedule: Schedule = "wavefront", progress: Progress | None = None) -> Decoded:
    """Decode .ir2i bytes, up to ``max_stages`` stages (default: all that the file holds)."""
    if max_stages is not None:
        _check_stages(max_stages, model, "--max-stages")
    container = read_container(data, max_pixels=max_pixels, salvage=salvage)
    header = container.header
    check_model(header, model)
    notes = list(container.warnings)
    stages = container.stages_found
    if max_stages is not None:
        if max_stages > stages:
            notes.append(f"asked for {max_stages} stages, the file holds {stages}")
        stages = min(stages, max_stages)
    codes = np.stack([np.where(bits > 0, 1.0, -1.0).astype(np.float32)
                      .reshape(header.n_blocks, *model.code_shape)
                      for bits in container.stage_bits[:stages]])
    padded = _code_image(model, header.blocks_y, header.blocks_x, stages, header.band_rows,
                         codes, None, schedule, progress)
    alpha = _read_alpha(container, header)
    return Decoded(padded[:header.height, :header.width], alpha, stages, container, notes)


def decode_bytes(data: bytes, model: OnnxModel, max_stages: int | None = None, **kw) -> Decoded:
    return decode(data, model, max_stages=max_stages, **kw)


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
