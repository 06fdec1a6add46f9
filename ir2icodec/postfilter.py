"""The decoder-side post-filter: a small learned network that removes the block seams.

Each 32x32 block is coded on its own, so nothing makes neighbours agree at their shared
edge. The filter sees the decoded picture and what the decoder knows for free: where the
block grid lies and how many stages each block has (the *guide*). It is a pure function of
the decoded pixels and the stage map, outside the coding loop: the encoder's reconstruction,
and ``--no-filter``'s output, stay the bit-exact unfiltered one.

The picture is filtered in bands of rows with ``halo`` rows of context above and below, at
least the filter's reach, so a band's output equals that of filtering the whole image and
memory grows with the width, not the area.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .blocks import to_uint8, to_unit

if TYPE_CHECKING:
    from .runtime import OnnxModel

GUIDE_CHANNELS = 3
BAND_PIXELS = 1 << 18  # per band: activations stay small, and a photo still splits into
# bands that the CPU workers filter side by side

FilterRun = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image, guide) -> filtered


def guide(
    stage_map: np.ndarray,
    block_size: int,
    max_stages: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> np.ndarray:
    """(1, 3, h, w) float32 guide for the pixels in ``rows`` = (top, bottom) and ``cols`` =
    (left, right) of a picture whose blocks have ``stage_map`` stages.

    Channel 0: the stage count of each pixel's block / ``max_stages``. Channels 1-2: the
    pixel's place in its block across and down, a sawtooth in (-0.5, 0.5) whose jumps mark
    the block edges.
    """
    y = np.arange(*rows)
    x = np.arange(*cols)
    stages = stage_map[y // block_size][:, x // block_size].astype(np.float32) / max_stages
    across = ((x % block_size) + 0.5) / block_size - 0.5
    down = ((y % block_size) + 0.5) / block_size - 0.5
    out = np.empty((1, GUIDE_CHANNELS, len(y), len(x)), np.float32)
    out[0, 0] = stages
    out[0, 1] = across[None, :]
    out[0, 2] = down[:, None]
    return out


def band_rows_for(width: int, halo: int, height: int | None = None, workers: int = 1) -> int:
    """Rows per band: about ``BAND_PIXELS`` pixels at most, and at least 8 halos so that the
    rows filtered twice (the halos) stay a small share of a wide image's work; even. Given
    the ``height``, the bands are of equal height and their number a multiple of
    ``workers``: the filter's time is that of the worker with the most rows, so a 768x512
    picture filters as 2 x 256 rows side by side, not 340 beside 172 (0.21 instead of 0.27
    s in a one-off paired A/B on 2 cores)."""
    rows = max(8 * halo, BAND_PIXELS // max(width, 1))
    if height is not None:
        count = -(-height // rows)
        count = -(-count // workers) * workers
        rows = max(8 * halo, -(-height // count))
    return (rows + 1) // 2 * 2


def band_bounds(height: int, rows: int) -> list[tuple[int, int]]:
    """Row ranges of the bands of ``rows`` rows (even, so the filter's 2x2 grouping never
    straddles a band edge)."""
    if rows < 2 or rows % 2:
        raise ValueError(f"bands must have an even number of rows, not {rows}")
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def filter_band(
    rgb: np.ndarray,
    stage_map: np.ndarray,
    run: FilterRun,
    *,
    block_size: int,
    max_stages: int,
    halo: int,
    rows: tuple[int, int],
) -> np.ndarray:
    """Filtered uint8 rows ``rows`` of ``rgb`` (H, W, 3), from rows ``halo`` beyond them."""
    height, width = rgb.shape[:2]
    top, bottom = rows
    lo, hi = max(0, top - halo), min(height, bottom + halo)
    # The network groups 2x2 pixels: odd sizes are padded by repeating the last row/column,
    # only at the image's own bottom and right edge, so every band pads the same way.
    pad_y, pad_x = (hi - lo) % 2, width % 2
    window = np.pad(rgb[lo:hi], ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    g = guide(stage_map, block_size, max_stages, (lo, hi), (0, width))
    g = np.pad(g, ((0, 0), (0, 0), (0, pad_y), (0, pad_x)), mode="edge")
    filtered = run(to_unit(window)[None], g)[0, :, top - lo : bottom - lo, :width]
    return to_uint8(filtered)


def filter_image(
    rgb: np.ndarray,
    stage_map: np.ndarray,
    run: FilterRun,
    *,
    block_size: int,
    max_stages: int,
    halo: int,
    band_rows: int | None = None,
    map_bands: Callable = map,
    workers: int = 1,
) -> np.ndarray:
    """The filtered (H, W, 3) uint8 picture of a decoded one and its (blocks_y, blocks_x)
    stage map, in bands of ``band_rows`` rows (default: ``band_rows_for`` for ``workers``;
    the result is the same for any). ``map_bands`` may run the bands in parallel (they are
    independent)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError("the picture must be a non-empty (H, W, 3) array")
    height, width = rgb.shape[:2]
    out = np.empty_like(rgb)
    bounds = band_bounds(height, band_rows or band_rows_for(width, halo, height, workers))

    def one(rows: tuple[int, int]) -> None:
        out[rows[0] : rows[1]] = filter_band(
            rgb, stage_map, run, block_size=block_size, max_stages=max_stages, halo=halo, rows=rows
        )

    list(map_bands(one, bounds))
    return out


def apply(
    rgb: np.ndarray, stage_map: np.ndarray, model: OnnxModel, band_rows: int | None = None
) -> np.ndarray:
    """Filter a picture decoded by ``model`` with the model's own post-filter."""
    spec = model.postfilter_spec
    if spec is None:
        raise ValueError(f"model {model.name} has no post-filter")
    return filter_image(
        rgb,
        stage_map,
        model.postfilter,
        block_size=model.block_size,
        max_stages=model.stages,
        halo=int(spec["halo"]),
        band_rows=band_rows,
        map_bands=model.map_parallel,
        workers=model.workers,
    )
