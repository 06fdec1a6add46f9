"""Rate control: how many stages each block gets.

The context of every block's inpainting is its neighbours' stage-2 reconstruction, so a
block's stages 3..S change nothing for any other block: the distortion of a block depends on
its own stage count alone, and the best allocation of a bit budget is a per-block choice.
For a Lagrange multiplier ``lam`` each block takes the count n minimising
``D_block(n) + lam * bits(n)``; a larger ``lam`` never gives a block more stages, so file
size and distortion move monotonically with it (Everett's theorem makes every such choice
optimal for the total bits it spends). ``--quality`` names a multiplier; ``--target-bpp``
searches one by bisection.

Distortions count only pixels inside the image, so blocks that are mostly padding get few
stages. ``DISTORTIONS`` are the candidate measures compared in docs/rate-control.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

Distortion = Literal["mse", "masked", "ssim", "lowpass", "msssim"]
DISTORTIONS: tuple[str, ...] = ("mse", "masked", "ssim", "lowpass", "msssim")
DEFAULT_DISTORTION: Distortion = "msssim"
DEFAULT_QUALITY = 50.0  # the middle of the range: about 0.65 bpp on held-out photos
QUALITY_RANGE = (0.0, 100.0)
# --quality q maps to lam = LAMBDA_AT_50[kind] * 2 ** ((50 - q) / QUALITY_PER_OCTAVE). For each
# kind, LAMBDA_AT_50 is about the median drop of distortion per bit of a stage on held-out
# photos, and the octaves span the range from the first code alone (q = 0) to nearly every
# stage (q = 100) (docs/rate-control.md).
LAMBDA_AT_50 = {"ssim": 0.15, "msssim": 0.06, "mse": 400.0, "masked": 1.0, "lowpass": 130.0}
QUALITY_PER_OCTAVE = 14.0
# Masking: a block's squared error is divided by (its variance + MASKING_FLOOR), an
# SSIM-like weighting (errors in texture are less visible than in flat areas).
MASKING_FLOOR = 64.0
LOWPASS_WINDOW = 4  # "lowpass": squared error of 4x4 means (what coarse scales of MS-SSIM see)
SSIM_WINDOW = 8  # "ssim": SSIM on non-overlapping 8x8 windows of luma, 1 - SSIM summed
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
# "msssim": the same at the block's first three scales (2x2 averaging between them), weighted
# like MS-SSIM's first three scales; coarse scales dominate MS-SSIM.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)
FILL_TRIES = 48  # single block-stages tried after the bisection of --target-bpp/--size


def block_distortion(
    original: np.ndarray,
    decoded: np.ndarray,
    inside: np.ndarray,
    kind: Distortion = DEFAULT_DISTORTION,
) -> np.ndarray:
    """Distortion of each block: (K, b, b, 3) uint8 original and decoded, ``inside`` (K, b, b)
    True for pixels inside the image. Returns (K,) float64, in squared 8-bit levels summed
    over the block's real pixels ("mse"), divided by the block's variance plus a floor
    ("masked", scaled back so both kinds have the same order of magnitude)."""
    if kind == "ssim":
        return _windowed_ssim_loss(original, decoded, inside)
    if kind == "msssim":
        return _multiscale_ssim_loss(original, decoded, inside)
    if kind == "lowpass":
        return _lowpass_error(original, decoded, inside)
    err = (original.astype(np.float64) - decoded.astype(np.float64)) ** 2
    mask = inside[..., None].astype(np.float64)
    sse = (err * mask).sum(axis=(1, 2, 3))
    if kind == "mse":
        return sse
    if kind != "masked":
        raise ValueError(f"unknown distortion {kind!r}; choose from {DISTORTIONS}")
    n = np.maximum(mask.sum(axis=(1, 2, 3)), 1.0)
    mean = (original * mask).sum(axis=(1, 2, 3)) / n
    var = (((original - mean[:, None, None, None]) ** 2) * mask).sum(axis=(1, 2, 3)) / n
    return sse * (MASKING_FLOOR + 400.0) / (var + MASKING_FLOOR)


def _lowpass_error(original: np.ndarray, decoded: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Squared error of the mean of each 4x4 window (per channel), times its real pixels."""
    k, b = original.shape[0], original.shape[1]
    w = LOWPASS_WINDOW
    m = inside.astype(np.float64).reshape(k, b // w, w, b // w, w, 1)
    err = (original.astype(np.float64) - decoded.astype(np.float64)).reshape(
        k, b // w, w, b // w, w, 3
    )
    n = m.sum(axis=(2, 4))
    mean_err = (err * m).sum(axis=(2, 4)) / np.maximum(n, 1.0)
    return (mean_err**2 * n).sum(axis=(1, 2, 3))


_LUMA = np.array([0.299, 0.587, 0.114])


def _windowed_ssim_loss(
    original: np.ndarray, decoded: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """Sum over a block's 8x8 luma windows of (1 - SSIM) times the window's real pixels."""
    return _ssim_loss(
        original.astype(np.float64) @ _LUMA,
        decoded.astype(np.float64) @ _LUMA,
        inside.astype(np.float64),
    )


def _multiscale_ssim_loss(
    original: np.ndarray, decoded: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """``_windowed_ssim_loss`` at three scales of the block, weighted like MS-SSIM."""
    x, y = original.astype(np.float64) @ _LUMA, decoded.astype(np.float64) @ _LUMA
    m = inside.astype(np.float64)
    weights = np.array(MSSSIM_WEIGHTS) / sum(MSSSIM_WEIGHTS)
    total = np.zeros(len(x))
    for scale, weight in enumerate(weights):
        if scale:
            x, y, m = (_pool(a) for a in (x * m, y * m, m))
            x, y = x / np.maximum(m, 1e-9), y / np.maximum(m, 1e-9)
            m = (m > 0).astype(np.float64)
        # a window at a coarse scale covers 4**scale pixels per sample
        total += weight * _ssim_loss(x, y, m) * 4**scale
    return total


def _pool(a: np.ndarray) -> np.ndarray:
    k, h, w = a.shape
    return a.reshape(k, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def _ssim_loss(x: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(1 - SSIM) of each SSIM_WINDOW-square window times its real samples, summed per block;
    x, y, m are (K, s, s) (a block smaller than a window is one window)."""
    k, b = x.shape[0], x.shape[1]
    w = min(SSIM_WINDOW, b)
    shape = (k, b // w, w, b // w, w)
    x, y, m = x.reshape(shape), y.reshape(shape), m.reshape(shape)
    n = m.sum(axis=(2, 4))
    safe = np.maximum(n, 1.0)

    def mean(a: np.ndarray) -> np.ndarray:
        return (a * m).sum(axis=(2, 4)) / safe

    mx, my = mean(x), mean(y)
    vx, vy = mean(x * x) - mx**2, mean(y * y) - my**2
    cxy = mean(x * y) - mx * my
    ssim = ((2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)) / (
        (mx**2 + my**2 + SSIM_C1) * (vx + vy + SSIM_C2)
    )
    return ((1.0 - ssim) * n).sum(axis=(1, 2))


def quality_to_lambda(quality: float, kind: Distortion = DEFAULT_DISTORTION) -> float:
    """The multiplier of ``--quality`` (0..100, higher = better = smaller multiplier)."""
    lo, hi = QUALITY_RANGE
    if not lo <= quality <= hi:
        raise ValueError(f"quality must be in {lo:g}..{hi:g}, got {quality:g}")
    return LAMBDA_AT_50[kind] * 2.0 ** ((50.0 - quality) / QUALITY_PER_OCTAVE)


Bits = int | np.ndarray  # a flat count per stage, or each block's own (see ``extra_bits``)


def extra_bits(distortion: np.ndarray, bits: Bits) -> np.ndarray:
    """The bits each block spends beyond the first code for each column of ``distortion``:
    ``bits`` is a flat count per stage, or already such an array, (blocks, columns), e.g.
    the entropy coder's estimate per block and stage (``entropy.stage_bit_costs``)."""
    if isinstance(bits, np.ndarray):
        if bits.shape != distortion.shape:
            raise ValueError(f"bits {bits.shape} do not match distortion {distortion.shape}")
        return bits
    return np.broadcast_to(np.arange(distortion.shape[1]) * float(bits), distortion.shape)


def allocate(
    distortion: np.ndarray, lam: float, bits_per_stage: Bits, min_stages: int
) -> np.ndarray:
    """Stage count of each block for multiplier ``lam``.

    ``distortion`` is (blocks, S - min_stages + 1): column j is the block's distortion
    after ``min_stages + j`` stages; ``bits_per_stage`` the bits of each stage (``Bits``).
    Ties go to fewer stages.
    """
    cost = distortion + lam * extra_bits(distortion, bits_per_stage)
    return (min_stages + np.argmin(cost, axis=1)).astype(np.uint8)


# log2 of the rate multiplier searched: from every stage that lowers a block's distortion
# to the first code alone.
LOG2_LAMBDA_RANGE = (-30.0, 30.0)


def lowest_distortion_counts(
    distortion: np.ndarray, bits_per_stage: Bits, min_stages: int
) -> np.ndarray:
    """The counts no budget improves on: each block's stages while they lower its distortion
    (what ``search_lambda`` gives any target at or above their size)."""
    return allocate(distortion, 2.0 ** LOG2_LAMBDA_RANGE[0], bits_per_stage, min_stages)


def search_lambda(
    distortion: np.ndarray,
    bits_per_stage: Bits,
    min_stages: int,
    size_of: Callable[[np.ndarray], float],
    target: float,
    iterations: int = 30,
) -> tuple[np.ndarray, float]:
    """Counts whose size (``size_of(counts)``, e.g. coded bytes) is the largest at or below
    ``target``, by bisection of the multiplier in the log domain; returns (counts, size).
    When even the fewest stages exceed the target, returns those (the closest above)."""
    lo, hi = LOG2_LAMBDA_RANGE  # all stages that help ... first code only
    best = allocate(distortion, 2.0**hi, bits_per_stage, min_stages)
    best_size = size_of(best)
    if best_size > target:
        return best, best_size
    cache: dict[bytes, float] = {best.tobytes(): best_size}
    for _ in range(iterations):
        mid = (lo + hi) / 2
        counts = allocate(distortion, 2.0**mid, bits_per_stage, min_stages)
        key = counts.tobytes()
        size = cache[key] if key in cache else cache.setdefault(key, size_of(counts))
        if size <= target:
            hi = mid
            if size > best_size:
                best, best_size = counts, size
        else:
            lo = mid
    return _fill(distortion, best, best_size, min_stages, size_of, target)


def _fill(
    distortion: np.ndarray,
    counts: np.ndarray,
    size: float,
    min_stages: int,
    size_of: Callable[[np.ndarray], float],
    target: float,
    tries: int = FILL_TRIES,
) -> tuple[np.ndarray, float]:
    """Spend what the bisection left below the target one block-stage at a time, the
    largest distortion drops first (one multiplier moves many blocks at once). A stage that
    would raise its block's distortion is not bought, whatever the budget left."""
    cap = min_stages + distortion.shape[1] - 1
    rows = np.flatnonzero(counts < cap)
    column = counts[rows].astype(np.intp) - min_stages
    gain = distortion[rows, column] - distortion[rows, column + 1]
    rows, gain = rows[gain > 0], gain[gain > 0]
    for row in rows[np.argsort(-gain, kind="stable")][:tries]:
        trial = counts.copy()
        trial[row] += 1
        trial_size = size_of(trial)
        if trial_size <= target:
            counts, size = trial, trial_size
    return counts, size
