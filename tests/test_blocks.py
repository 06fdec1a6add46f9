"""Block geometry and the diagonal wavefront schedule."""

from __future__ import annotations

import numpy as np
import pytest

from ir2icodec import blocks as blk


@pytest.mark.parametrize("h,w", [(1, 1), (33, 47), (1000, 3), (3, 1000), (512, 768)])
def test_padding_covers_whole_blocks_and_repeats_edges(h, w):
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    padded = blk.pad_to_blocks(img, 32)
    by, bx = blk.blocks_shape(h, w, 32)
    assert padded.shape == (by * 32, bx * 32, 3)
    assert by * 32 - h < 32 and bx * 32 - w < 32
    np.testing.assert_array_equal(padded[:h, :w], img)
    np.testing.assert_array_equal(padded[h:, :w], np.broadcast_to(img[-1:], padded[h:, :w].shape))
    right = padded[:h, w:]
    np.testing.assert_array_equal(right, np.broadcast_to(img[:, -1:], right.shape))


def test_kodak_size_has_39_diagonals_of_at_most_16_blocks():
    diags = blk.diagonals(range(0, 16), 24)
    assert len(diags) == 39
    assert max(len(d) for d in diags) == 16
    assert sum(len(d) for d in diags) == 384


@pytest.mark.parametrize(
    "rows,cols,band", [(16, 24, 16), (24, 16, 16), (5, 7, 2), (1, 9, 16), (9, 1, 4), (3, 3, 0)]
)
def test_every_block_once_and_context_decoded_before_it(rows, cols, band):
    order: dict[tuple[int, int], tuple[int, int]] = {}  # block -> (band, diagonal)
    for b, rng in enumerate(blk.bands(rows, band)):
        for d, coords in enumerate(blk.diagonals(rng, cols)):
            assert len({tuple(c) for c in coords}) == len(coords)  # no repeats in a batch
            for r, c in coords:
                assert (r, c) not in order
                order[(r, c)] = (b, d)
    assert set(order) == {(r, c) for r in range(rows) for c in range(cols)}
    for (r, c), when in order.items():
        for dr, dc in ((-1, -1), (-1, 0), (0, -1)):
            if r + dr >= 0 and c + dc >= 0:
                assert order[(r + dr, c + dc)] < when  # strictly earlier batch


def test_bands_split_rows():
    assert blk.bands(40, 16) == [range(0, 16), range(16, 32), range(32, 40)]
    assert blk.bands(5, 0) == [range(0, 5)]


def test_raster_visits_one_block_at_a_time_in_row_order():
    order = [tuple(c[0]) for c in blk.raster(range(2, 4), 3)]
    assert order == [(2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2)]


def test_unit_conversion_round_trips_exactly():
    px = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1)
    np.testing.assert_array_equal(blk.to_uint8(blk.to_unit(px)), px)


def test_pixel_conversions_compute_what_the_format_always_computed():
    # to_uint8 and to_unit work in the networks' layout and in place for speed; the numbers
    # must stay those of the float32 formulas on the channels-last view that every file was
    # written with (ties at .5 included), and the layouts those of that view
    rng = np.random.default_rng(0)
    unit = rng.uniform(-0.6, 0.6, (5, 3, 8, 8)).astype(np.float32)
    ties = (np.arange(-1, 257, dtype=np.float32) + 0.5) / np.float32(255.0) - np.float32(0.5)
    unit.reshape(-1)[: ties.size] = ties
    old = np.clip(np.rint((np.moveaxis(unit, -3, -1) + 0.5) * 255.0), 0, 255).astype(np.uint8)
    new = blk.to_uint8(unit)
    assert new.shape == old.shape == (5, 8, 8, 3)
    np.testing.assert_array_equal(new, old)
    pixels = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    as_unit = blk.to_unit(pixels)
    np.testing.assert_array_equal(
        as_unit, np.moveaxis(pixels, -1, -3).astype(np.float32) / 255.0 - 0.5
    )
    assert as_unit.dtype == np.float32 and as_unit.flags.c_contiguous


def test_contexts_read_only_decoded_neighbours_and_zero_the_rest():
    img = np.full((96, 96, 3), 255, np.uint8)
    img[32:64, 32:64] = 0  # the block itself: must not leak into its own context
    ctx = blk.contexts(img, np.array([[1, 1], [0, 0], [0, 2], [2, 0]]), 32)
    assert ctx.shape == (4, 3, 64, 64)
    np.testing.assert_array_equal(ctx[0, :, 32:, 32:], 0)
    assert np.all(ctx[0, :, :32, :] == 0.5) and np.all(ctx[0, :, 32:, :32] == 0.5)
    np.testing.assert_array_equal(ctx[1], 0)  # top-left block: nothing decoded
    np.testing.assert_array_equal(ctx[2, :, :32], 0)  # first row: no top neighbours
    assert np.all(ctx[2, :, 32:, :32] == 0.5)  # ... but a left one
    np.testing.assert_array_equal(ctx[3, :, :, :32], 0)  # first column: no left neighbours


def test_block_gather_and_scatter_match_plain_slicing():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    coords = np.array([[2, 4], [0, 0], [1, 3], [2, 0]])
    got = blk.extract_blocks(img, coords, 32)
    for k, (r, c) in enumerate(coords):
        np.testing.assert_array_equal(got[k], img[32 * r : 32 * r + 32, 32 * c : 32 * c + 32])
    out = np.zeros_like(img)
    blk.place_blocks(out, coords, got, 32)
    mask = np.zeros(img.shape[:2], bool)
    for r, c in coords:
        mask[32 * r : 32 * r + 32, 32 * c : 32 * c + 32] = True
    np.testing.assert_array_equal(out[mask], img[mask])
    assert not out[~mask].any()


def test_contexts_equal_the_windows_of_a_zero_bordered_image():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    unit = np.pad(blk.to_unit(img), ((0, 0), (32, 0), (32, 0)))  # zero outside the image
    coords = np.array([(r, c) for r in range(3) for c in range(4)])
    ctx = blk.contexts(img, coords, 32)
    for k, (r, c) in enumerate(coords):
        want = unit[:, 32 * r : 32 * r + 64, 32 * c : 32 * c + 64].copy()
        want[:, 32:, 32:] = 0
        np.testing.assert_array_equal(ctx[k], want)


def test_image_blocks_are_the_padded_image_in_raster_order():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 70, 3), dtype=np.uint8)
    blocks = blk.image_blocks(image, 16)
    assert blocks.shape == (3 * 5, 16, 16, 3)
    padded = np.zeros((48, 80, 3), np.uint8)
    blk.place_blocks(padded, blk.raster_coords(3, 5), blocks, 16)
    assert np.array_equal(padded, blk.pad_to_blocks(image, 16))
    inside = blk.inside_blocks(37, 70, 16)
    assert inside.shape == (15, 16, 16) and inside.sum() == 37 * 70
    assert inside[0].all() and not inside[-1].all()


def test_inside_of_some_blocks_is_the_whole_masks_rows():
    coords = blk.raster_coords(*blk.blocks_shape(37, 70, 16))
    whole = blk.inside_blocks(37, 70, 16)
    pick = np.array([0, 4, 5, 11, 14])
    np.testing.assert_array_equal(blk.inside_of(coords[pick], 37, 70, 16), whole[pick])


@pytest.mark.parametrize("rows,cols,band", [(5, 7, 2), (4, 3, 0), (7, 2, 3), (1, 1, 1)])
def test_band_canvas_cuts_the_contexts_of_the_picture_decoded_so_far(rows, cols, band):
    """The decoder's one-gather contexts equal ``contexts`` of the 8-bit picture, band after
    band, diagonal after diagonal (values and zeros alike), with one band's memory."""
    b = 4
    rng = np.random.default_rng(rows * 10 + cols)
    decoded = np.zeros((rows * b, cols * b, 3), np.uint8)
    canvas = blk.BandCanvas(min(band or rows, rows), cols, b)
    assert canvas.pixels.shape[1] == (min(band or rows, rows) + 1) * b
    for band_rows in blk.bands(rows, band):
        canvas.start_band(band_rows)
        for coords in blk.diagonals(band_rows, cols):
            np.testing.assert_array_equal(canvas.contexts(coords), blk.contexts(decoded, coords, b))
            pixels = rng.integers(0, 256, (len(coords), b, b, 3), dtype=np.uint8)
            blk.place_blocks(decoded, coords, pixels, b)
            canvas.place(coords, pixels)
    assert decoded.any()
