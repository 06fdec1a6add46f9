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

Distortion = Literal["mse", "masked"]
DISTORTIONS: tuple[str, ...] = ("mse", "masked")
DEFAULT_DISTORTION: Distortion = "masked"
DEFAULT_QUALITY = 75.0
QUALITY_RANGE = (0.0, 100.0)
# --quality q maps to lam = LAMBDA_AT_50[kind] * 2 ** ((50 - q) / QUALITY_PER_OCTAVE). The scale
# puts the middle of the range at the median gain per bit of a stage on held-out photos, so
# 0..100 spans from the first code alone to nearly every stage (docs/rate-control.md).
LAMBDA_AT_50 = {"mse": 400.0, "masked": 1.0}
QUALITY_PER_OCTAVE = 10.0
# Masking: a block's squared error is divided by (its variance + MASKING_FLOOR), an
# SSIM-like weighting (errors in texture are less visible than in flat areas).
MASKING_FLOOR = 64.0
FILL_TRIES = 48  # single block-stages tried after the bisection of --target-bpp/--size


def block_distortion(original: np.ndarray, decoded: np.ndarray, inside: np.ndarray,
                     kind: Distortion = DEFAULT_DISTORTION) -> np.ndarray:
    """Distortion of each block: (K, b, b, 3) uint8 original and decoded, ``inside`` (K, b, b)
    True for pixels inside the image. Returns (K,) float64, in squared 8-bit levels summed
    over the block's real pixels ("mse"), divided by the block's variance plus a floor
    ("masked", scaled back so both kinds have the same order of magnitude)."""
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


def quality_to_lambda(quality: float, kind: Distortion = DEFAULT_DISTORTION) -> float:
    """The multiplier of ``--quality`` (0..100, higher = better = smaller multiplier)."""
    lo, hi = QUALITY_RANGE
    if not lo <= quality <= hi:
        raise ValueError(f"quality must be in {lo:g}..{hi:g}, got {quality:g}")
    return LAMBDA_AT_50[kind] * 2.0 ** ((50.0 - quality) / QUALITY_PER_OCTAVE)


def allocate(distortion: np.ndarray, lam: float, bits_per_stage: int,
             min_stages: int) -> np.ndarray:
    """Stage count of each block for multiplier ``lam``.

    ``distortion`` is (blocks, S - min_stages + 1): column j is the block's distortion
    after ``min_stages + j`` stages. Ties go to fewer stages.
    """
    extra = np.arange(distortion.shape[1]) * bits_per_stage
    cost = distortion + lam * extra[None, :]
    return (min_stages + np.argmin(cost, axis=1)).astype(np.uint8)


def search_lambda(distortion: np.ndarray, bits_per_stage: int, min_stages: int,
                  size_of: Callable[[np.ndarray], float], target: float,
                  iterations: int = 30) -> tuple[np.ndarray, float]:
    """Counts whose size (``size_of(counts)``, e.g. coded bytes) is the largest at or below
    ``target``, by bisection of the multiplier in the log domain; returns (counts, size).
    When even the fewest stages exceed the target, returns those (the closest above)."""
    lo, hi = -30.0, 30.0  # log2 of lam: all stages ... first code only
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


def _fill(distortion: np.ndarray, counts: np.ndarray, size: float, min_stages: int,
          size_of: Callable[[np.ndarray], float], target: float,
          tries: int = FILL_TRIES) -> tuple[np.ndarray, float]:
    """Spend what the bisection left below the target one block-stage at a time, the
    largest distortion drops first (one multiplier moves many blocks at once)."""
    cap = min_stages + distortion.shape[1] - 1
    rows = np.flatnonzero(counts < cap)
    column = counts[rows].astype(np.intp) - min_stages
    gain = distortion[rows, column] - distortion[rows, column + 1]
    for row in rows[np.argsort(-gain, kind="stable")][:tries]:
        trial = counts.copy()
        trial[row] += 1
        trial_size = size_of(trial)
        if trial_size <= target:
            counts, size = trial, trial_size
    return counts, size
