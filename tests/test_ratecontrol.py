"""Rate control (ir2icodec.ratecontrol) through the real encoder, decoder and CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from ir2icodec.codec import analyse, decode, encode
from ir2icodec.container import read_container, write_container
from ir2icodec.errors import UsageError
from ir2icodec.ratecontrol import allocate, quality_to_lambda


def _busy_image(h: int, w: int) -> np.ndarray:
    """Flat on the left, noisy texture on the right: blocks that need different rates."""
    img = smooth_image(h, w, seed=4)
    rng = np.random.default_rng(1)
    img[:, w // 2 :] = rng.integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)
    return img


def test_allocation_is_monotone_in_lambda():
    rng = np.random.default_rng(0)
    dist = np.sort(rng.random((50, 7)) * 1000, axis=1)[:, ::-1]
    prev = None
    for lam in [1000, 100, 10, 1, 0.1, 0.001]:
        counts = allocate(dist, lam, 128, 2)
        assert counts.min() >= 2 and counts.max() <= 8
        if prev is not None:
            assert (counts >= prev).all()
        prev = counts
    with pytest.raises(ValueError):
        quality_to_lambda(101)


@pytest.mark.parametrize("h,w", [(96, 160), (70, 45)])
def test_quality_is_monotone_in_size_and_quality(tiny_model, h, w):
    """A higher quality never gives a smaller file nor a worse picture, as measured by the
    block distortion rate control minimises (the default: windowed SSIM)."""
    img = _busy_image(h, w)
    analysis = analyse(img, tiny_model)
    rows = np.arange(analysis.distortion.shape[0])
    sizes, losses = [], []
    for q in (0, 25, 50, 75, 100):
        result = encode(img, tiny_model, quality=q)
        counts = result.stage_map.ravel()
        sizes.append(len(result.data))
        losses.append(analysis.distortion[rows, counts - 2].sum())
        np.testing.assert_array_equal(result.reconstruction, analysis.reconstruction(counts))
    assert sizes == sorted(sizes) and losses == sorted(losses, reverse=True)


def test_rate_controlled_file_decodes_bit_for_bit_and_runs_fewer_stages(tiny_model):
    img = _busy_image(96, 160)
    result = encode(img, tiny_model, quality=60)
    counts = result.stage_map.ravel()
    assert counts.min() < counts.max()  # the blocks did get different counts
    ran = []
    decoded = decode(result.data, tiny_model, progress=ran.append)
    np.testing.assert_array_equal(decoded.rgb, result.reconstruction)
    # every block runs stages 1-2, then only its own later stages
    assert sum(ran) == int(2 * counts.size + (counts - 2).sum())


def test_prefixes_of_a_rate_controlled_file_cap_each_block(tiny_model):
    img = _busy_image(64, 96)
    result = encode(img, tiny_model, quality=70)
    analysis = analyse(img, tiny_model)
    for k in range(2, int(result.stage_map.max()) + 1):
        from ir2icodec.container import truncate_stages

        cut = decode(truncate_stages(result.data, k), tiny_model)
        capped = np.minimum(result.stage_map.ravel(), k)
        np.testing.assert_array_equal(cut.rgb, analysis.reconstruction(capped))


@pytest.mark.parametrize("fraction", [0.7, 0.85, 1.5])
def test_target_bpp_lands_at_or_just_below_the_target(tiny_model, fraction):
    img = _busy_image(128, 192)
    pixels = img[..., 0].size
    first = 8 * len(encode(img, tiny_model, 2).data) / pixels
    # the most rate control spends: stages that make a block worse are never bought
    full = 8 * len(encode(img, tiny_model, quality=100).data) / pixels
    bpp = first + fraction * (full - first)  # 1.5: more than it would spend
    reached = 8 * len(encode(img, tiny_model, target_bpp=bpp).data) / pixels
    assert reached <= bpp and reached >= min(0.97 * bpp, full)


def test_uniform_stages_are_entropy_coded_and_match_version_1_pixels(tiny_model):
    img = smooth_image(64, 96, seed=2)
    result = encode(img, tiny_model, 5)
    assert (result.stage_map == 5).all()
    container = read_container(result.data)
    assert container.version == 2
    v1 = write_container(container.header, container.stage_bits)  # the same codes, raw bits
    assert len(v1) > len(result.data)
    np.testing.assert_array_equal(decode(v1, tiny_model).rgb, result.reconstruction)


def test_rate_options_are_checked(tiny_model):
    img = smooth_image(32, 32)
    with pytest.raises(UsageError, match="mutually exclusive"):
        encode(img, tiny_model, quality=50, target_bpp=0.5)
    with pytest.raises(UsageError, match="quality"):
        encode(img, tiny_model, quality=-1)
    with pytest.raises(UsageError, match="target_bpp"):
        encode(img, tiny_model, target_bpp=0)


def _ir2i(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ir2icodec", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_rate_options_and_info_histogram(tmp_path, tiny_bundle):
    src = tmp_path / "in.png"
    Image.fromarray(_busy_image(64, 96)).save(src)
    out = tmp_path / "out.ir2i"
    done = _ir2i(
        "encode",
        str(src),
        "-o",
        str(out),
        "--model",
        tiny_bundle,
        "-q",
        "--quality",
        "80",
        "--stages",
        "6",
    )
    assert done.returncode == 0, done.stderr
    info = _ir2i("info", str(out))
    assert "format version 2" in info.stdout and "blocks per stage count" in info.stdout
    sized = tmp_path / "sized.ir2i"
    done = _ir2i(
        "encode", str(src), "-o", str(sized), "--model", tiny_bundle, "-q", "--size", "0.9k"
    )
    assert done.returncode == 0, done.stderr
    assert sized.stat().st_size <= 900
    bad = _ir2i(
        "encode",
        str(src),
        "-o",
        str(tmp_path / "x.ir2i"),
        "--model",
        tiny_bundle,
        "--quality",
        "50",
        "--size",
        "2k",
    )
    assert bad.returncode != 0 and "mutually exclusive" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.ir2i").exists()


@pytest.mark.parametrize("kind", ["ssim", "msssim", "mse", "masked", "lowpass"])
def test_distortion_counts_only_pixels_inside_the_image(kind):
    from ir2icodec.ratecontrol import block_distortion

    rng = np.random.default_rng(2)
    original = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    inside = np.zeros((3, 32, 32), bool)
    inside[:, :5, :7] = True  # a corner block: 35 real pixels, the rest padding
    decoded = original.copy()
    decoded[~inside] = 255 - decoded[~inside]  # ruin only the padding
    np.testing.assert_allclose(block_distortion(original, decoded, inside, kind), 0, atol=1e-6)
    decoded[inside] = 0  # now ruin the real pixels too
    assert (block_distortion(original, decoded, inside, kind) > 0).all()


def test_blocks_that_are_mostly_padding_get_the_fewest_stages(tiny_model):
    img = _busy_image(33, 97)  # the second block row has 1 real row of 32
    result = encode(img, tiny_model, quality=50)
    counts = result.stage_map
    assert counts[1].mean() <= counts[0].mean()


def test_a_slack_target_buys_the_lowest_distortion_and_no_stage_that_hurts() -> None:
    """Block 0's third stage lowers its distortion, its fourth raises it; block 1 gains at
    every stage. With a budget for everything, the search stops at each block's lowest
    distortion (the fill never buys a stage that hurts); a tight budget goes by the gains."""
    from ir2icodec.ratecontrol import lowest_distortion_counts, search_lambda

    distortion = np.array([[10.0, 4.0, 6.0], [10.0, 8.0, 1.0]])  # stage counts 2, 3, 4
    size = lambda counts: float(counts.sum())  # noqa: E731 (one unit a block-stage)
    top = lowest_distortion_counts(distortion, 128, 2)
    assert top.tolist() == [3, 4]
    counts, spent = search_lambda(distortion, 128, 2, size, target=100.0)
    assert counts.tolist() == [3, 4] and spent == 7.0
    counts, _ = search_lambda(distortion, 128, 2, size, target=5.0)
    assert counts.tolist() == [3, 2]  # one stage to spend: the larger drop (6 against 2)
