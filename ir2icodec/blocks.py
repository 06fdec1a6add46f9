"""Blocks, bands and the diagonal wavefront: which blocks can be coded together.

A block's inpainting context is its left, top and top-left neighbours (as decoded after the
first code). Blocks on one anti-diagonal ``i + j = d`` have all of those on diagonals ``d-1``
and ``d-2``, so each diagonal is one batch. Images are processed in bands of block rows
(``band_rows``, stored in the file) so memory grows with the width, not the area; the
top neighbours of a band's first row come from the band above.
"""

from __future__ import annotations

import numpy as np


def blocks_shape(height: int, width: int, block: int) -> tuple[int, int]:
    return -(-height // block), -(-width // block)


def pad_to_blocks(rgb: np.ndarray, block: int) -> np.ndarray:
    """Pad (H, W, C) to whole blocks by repeating the edge pixels (cheap to code, cropped later)."""
    h, w = rgb.shape[:2]
    by, bx = blocks_shape(h, w, block)
    return np.pad(rgb, ((0, by * block - h), (0, bx * block - w), (0, 0)), mode="edge")


def bands(blocks_y: int, band_rows: int) -> list[range]:
    """Block-row ranges of each band; band_rows 0 means one band for the whole image."""
    step = band_rows or blocks_y
    return [range(r, min(r + step, blocks_y)) for r in range(0, blocks_y, step)]


def diagonals(rows: range, blocks_x: int) -> list[np.ndarray]:
    """Anti-diagonals of the blocks in ``rows``: a list of (k, 2) arrays of (row, col)."""
    out = []
    n_rows = len(rows)
    for d in range(n_rows + blocks_x - 1):
        i = np.arange(max(0, d - blocks_x + 1), min(n_rows, d + 1))
        out.append(np.stack([rows.start + i, d - i], axis=1))
    return out


def raster(rows: range, blocks_x: int) -> list[np.ndarray]:
    """One block at a time in raster order (the sequential baseline for benchmarks)."""
    return [np.array([[r, c]]) for r in rows for c in range(blocks_x)]


def block_index(coords: np.ndarray, blocks_x: int) -> np.ndarray:
    """Raster index of (row, col) pairs."""
    return coords[:, 0] * blocks_x + coords[:, 1]


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-0.5, 0.5], the networks' domain."""
    # cast straight into the networks' layout, then scaled in place: the same numbers
    unit = np.moveaxis(pixels, -1, -3).astype(np.float32, order="C")
    unit /= np.float32(255.0)
    unit -= np.float32(0.5)
    return unit


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """float32 (..., 3, H, W) in [-0.5, 0.5] -> uint8 (..., H, W, 3), rounded and clipped."""
    # The float32 arithmetic in the networks' layout and in place, the channels moved last
    # only by the cast: the same numbers as on the moved view, an order of magnitude faster.
    scaled = unit + np.float32(0.5)
    scaled *= np.float32(255.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return np.moveaxis(scaled, -3, -1).astype(np.uint8)


def _block_grid(image: np.ndarray, block: int) -> np.ndarray:
    """A (rows, block, cols, block, C) view of a padded (H, W, C) image. Splitting axes is
    always possible without a copy, so writes through it land in ``image``."""
    h, w, ch = image.shape
    return image.reshape((h // block, block, w // block, block, ch), copy=False)


def extract_blocks(image: np.ndarray, coords: np.ndarray, block: int) -> np.ndarray:
    """(K, block, block, C) pixels of the blocks at ``coords`` of a padded (H, W, C) image."""
    return _block_grid(image, block)[coords[:, 0], :, coords[:, 1]]


def place_blocks(image: np.ndarray, coords: np.ndarray, blocks: np.ndarray, block: int) -> None:
    """Write (K, block, block, C) blocks into ``image`` at ``coords`` (in place)."""
    _block_grid(image, block)[coords[:, 0], :, coords[:, 1]] = blocks


def contexts(decoded: np.ndarray, coords: np.ndarray, block: int) -> np.ndarray:
    """Partial contexts (K, 3, 2*block, 2*block) in the networks' domain.

    The block itself (bottom-right quarter) and neighbours outside the image are zero, as in
    training; only already-decoded pixels (left, top, top-left) are read.
    """
    grid = _block_grid(decoded, block)
    out = np.zeros((len(coords), 3, 2 * block, 2 * block), np.float32)
    for dr, dc in ((-1, -1), (-1, 0), (0, -1)):
        rr, cc = coords[:, 0] + dr, coords[:, 1] + dc
        inside = (rr >= 0) & (cc >= 0)
        y, x = (dr + 1) * block, (dc + 1) * block
        out[inside, :, y : y + block, x : x + block] = to_unit(grid[rr[inside], :, cc[inside]])
    return out


class BandCanvas:
    """The first code's decoded pixels of one band of block rows, in the networks' domain,
    from which every block's partial context is cut in one gather.

    Holds the band's stage-2 pixels as float32 with one block of zeros above and to the left
    (the neighbours outside the image) and, from the second band on, the previous band's
    last block row in that top margin: all a context ever reads. ``contexts`` equals
    ``contexts(decoded, coords, block)`` of the 8-bit picture so far (tested), in a few
    numpy calls instead of a dozen per block quarter, and the memory is one band's.
    """

    def __init__(self, band_rows: int, blocks_x: int, block: int):
        self.block, self.first_row = block, 0
        self.pixels = np.zeros((3, (band_rows + 1) * block, (blocks_x + 1) * block), np.float32)
        s0, s1, s2 = self.pixels.strides
        # windows[i, j] = the 2x2 blocks whose bottom-right one is canvas block (i + 1, j + 1)
        self._windows = np.lib.stride_tricks.as_strided(
            self.pixels,
            (band_rows, blocks_x, 3, 2 * block, 2 * block),
            (block * s1, block * s2, s0, s1, s2),
            writeable=False,
        )

    def start_band(self, rows: range) -> None:
        """Move on to the band of ``rows``: the last row of the band before becomes the top
        margin (nothing for the first band), the rest is cleared."""
        b, p = self.block, self.pixels
        if rows.start > 0:
            last = (rows.start - self.first_row) * b  # canvas row of the old band's last
            p[:, :b] = p[:, last : last + b]
        else:
            p[:, :b] = 0
        p[:, b:] = 0
        self.first_row = rows.start

    def place(self, coords: np.ndarray, pixels: np.ndarray) -> None:
        """Write (K, block, block, 3) uint8 blocks at absolute (row, col) ``coords``."""
        b = self.block
        _, h, w = self.pixels.shape
        grid = self.pixels.reshape(3, h // b, b, w // b, b)
        grid[:, coords[:, 0] - self.first_row + 1, :, coords[:, 1] + 1] = to_unit(pixels)

    def contexts(self, coords: np.ndarray) -> np.ndarray:
        """(K, 3, 2*block, 2*block) partial contexts of the blocks at ``coords``: the block
        itself (bottom-right quarter) zero, as is whatever is not decoded yet."""
        b = self.block
        out = self._windows[coords[:, 0] - self.first_row, coords[:, 1]]
        out[:, :, b:, b:] = 0
        return out


def raster_coords(blocks_y: int, blocks_x: int) -> np.ndarray:
    """(row, col) of every block, in raster order."""
    return np.stack(np.divmod(np.arange(blocks_y * blocks_x), blocks_x), axis=1)


def image_blocks(image: np.ndarray, block: int) -> np.ndarray:
    """(K, block, block, C): every block of an (H, W, C) image, padded to whole blocks, in
    raster order."""
    padded = pad_to_blocks(image, block)
    by, bx = padded.shape[0] // block, padded.shape[1] // block
    return extract_blocks(padded, raster_coords(by, bx), block)


def inside_blocks(height: int, width: int, block: int) -> np.ndarray:
    """(K, block, block) bool, raster order: True where a block's pixel belongs to the image."""
    return image_blocks(inside_mask(height, width, block)[..., None], block)[..., 0]


def inside_of(coords: np.ndarray, height: int, width: int, block: int) -> np.ndarray:
    """(K, block, block) bool for the blocks at (K, 2) (row, col) ``coords``: True where a
    pixel belongs to the image (``inside_blocks`` for some blocks, without the whole mask)."""
    offsets = np.arange(block)
    rows = coords[:, 0, None] * block + offsets < height
    cols = coords[:, 1, None] * block + offsets < width
    return rows[:, :, None] & cols[:, None, :]


def inside_mask(height: int, width: int, block: int) -> np.ndarray:
    """(H', W') bool of the padded image: True where a pixel belongs to the image."""
    by, bx = blocks_shape(height, width, block)
    mask = np.zeros((by * block, bx * block), bool)
    mask[:height, :width] = True
    return mask
