"""Bjontegaard delta rate (BD-rate) with PCHIP interpolation.

BD-rate answers "how many more (or fewer) bits does the test codec need for the same
quality than the anchor", averaged over the quality range both curves cover:

1. each curve is turned into log(rate) as a function of quality and interpolated with a
   monotone piecewise cubic (PCHIP, ``scipy.interpolate.PchipInterpolator``), which unlike
   the original cubic polynomial fit never overshoots between points;
2. both interpolants are integrated exactly over the overlap ``[max(min q), min(max q)]``;
3. the mean log-rate difference ``d`` gives ``100 * (exp(d) - 1)`` percent.

Negative means the test codec needs fewer bits. When the quality ranges do not overlap
(or a curve has fewer than 2 distinct points) the BD-rate is undefined and ``nan`` is
returned, so a table can show "n/a" instead of aborting a long benchmark; malformed input
(mismatched lengths, non-positive rates, non-finite values) raises ``ValueError``.

Rates can be in any unit (bits, bytes, bpp) as long as both curves use the same one.
Quality can be any "higher is better" score (PSNR, MS-SSIM, MS-SSIM in dB); the choice
of scale changes the weighting of the integral, so report which one was used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

#: The bpp window used for reporting (the low-to-mid rate range of the paper's plots).
DEFAULT_BPP_WINDOW = (0.125, 1.0)

Curve = tuple[ArrayLike, ArrayLike]  # (rates, qualities), one entry per RD point


def _validate(rate: ArrayLike, quality: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"rate and quality differ in length: {r.size} vs {q.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError("rates and qualities must be finite")
    if np.any(r <= 0):
        raise ValueError("rates must be positive (BD-rate works on log-rate)")
    return r, q


def _log_rate_of_quality(
    rate: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Points (quality, log-rate) sorted by quality, ties merged; None if < 2 remain."""
    q_unique, inverse = np.unique(quality, return_inverse=True)
    # PCHIP needs strictly increasing x; equal qualities (e.g. two JPEG qualities that
    # decode to the same PSNR) are merged into their mean log-rate.
    log_r = np.bincount(inverse, weights=np.log(rate)) / np.bincount(inverse)
    if q_unique.size < 2:
        return None
    return q_unique, log_r


def bd_rate(
    anchor_rate: ArrayLike,
    anchor_quality: ArrayLike,
    test_rate: ArrayLike,
    test_quality: ArrayLike,
) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative = fewer bits).

    Returns ``nan`` when the quality ranges do not overlap or a curve has fewer than two
    distinct quality values.
    """
    a = _log_rate_of_quality(*_validate(anchor_rate, anchor_quality))
    t = _log_rate_of_quality(*_validate(test_rate, test_quality))
    if a is None or t is None:
        return math.nan
    lo = max(a[0][0], t[0][0])
    hi = min(a[0][-1], t[0][-1])
    if not hi > lo:
        return math.nan
    from scipy.interpolate import PchipInterpolator  # the [bench] extra, needed only here

    int_a = PchipInterpolator(*a).integrate(lo, hi)
    int_t = PchipInterpolator(*t).integrate(lo, hi)
    avg_diff = (int_t - int_a) / (hi - lo)
    return float(100.0 * math.expm1(avg_diff))


def clip_to_rate_window(
    rate: ArrayLike, quality: ArrayLike, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Restrict an RD curve to rates in ``[lo, hi]``.

    Points inside the window are kept. Where the curve crosses a window edge, a point is
    added exactly at the edge, its quality interpolated linearly in log-rate between the
    two points around it (the same axis BD-rate integrates, so it adds no new shape).
    A curve that does not reach an edge is *not* extrapolated: it just stops early, and
    BD-rate then uses the overlap of what remains. Returns arrays sorted by rate.
    """
    if not 0 < lo < hi:
        raise ValueError(f"bad rate window [{lo}, {hi}]")
    r, q = _validate(rate, quality)
    if r.size == 0:
        return r, q
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    keep = (r >= lo) & (r <= hi)
    out_r, out_q = list(r[keep]), list(q[keep])
    log_r = np.log(r)
    for edge in (lo, hi):
        if np.any(r == edge) or not (r[0] < edge < r[-1]):
            continue  # already a point there, or the curve does not cross this edge
        i = int(np.searchsorted(r, edge))  # r[i-1] < edge < r[i]
        w = (math.log(edge) - log_r[i - 1]) / (log_r[i] - log_r[i - 1])
        out_r.append(edge)
        out_q.append(float(q[i - 1] + w * (q[i] - q[i - 1])))
    out_r_arr = np.asarray(out_r, dtype=np.float64)
    order = np.argsort(out_r_arr, kind="stable")
    return out_r_arr[order], np.asarray(out_q, dtype=np.float64)[order]


def bd_rate_in_window(
    anchor: Curve,
    test: Curve,
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
) -> float:
    """BD-rate (percent) after clipping both curves to a rate window (``None`` = no clip).

    The window is in the curves' rate unit, so pass bpp to use ``DEFAULT_BPP_WINDOW``.
    """
    if window is not None:
        anchor = clip_to_rate_window(*anchor, *window)
        test = clip_to_rate_window(*test, *window)
        if len(anchor[0]) == 0 or len(test[0]) == 0:
            return math.nan
    return bd_rate(anchor[0], anchor[1], test[0], test[1])


def average_curve(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Point-wise mean of several RD curves made at the same settings.

    Point ``k`` of every curve must come from the same codec setting (e.g. JPEG quality
    50 on each image); the result's point ``k`` is the mean rate and mean quality there.
    """
    if not curves:
        raise ValueError("no curves to average")
    rates = [np.asarray(c[0], dtype=np.float64).ravel() for c in curves]
    quals = [np.asarray(c[1], dtype=np.float64).ravel() for c in curves]
    lengths = {x.size for x in rates} | {x.size for x in quals}
    if len(lengths) != 1:
        raise ValueError(f"curves have different numbers of points: {sorted(lengths)}")
    return np.mean(rates, axis=0), np.mean(quals, axis=0)


def mean_bd_rate(
    pairs: Iterable[tuple[Curve, Curve]],
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
) -> tuple[float, int]:
    """Mean of per-image BD-rates over ``(anchor, test)`` curve pairs.

    Images whose BD-rate is undefined (``nan``: no overlap in the window) are left out;
    returns ``(mean, number of images used)``, ``(nan, 0)`` if none is defined.
    """
    values = [bd_rate_in_window(a, t, window) for a, t in pairs]
    defined = [v for v in values if not math.isnan(v)]
    if not defined:
        return math.nan, 0
    return float(np.mean(defined)), len(defined)


def bd_rate_of_averages(
    anchor_curves: Sequence[Curve],
    test_curves: Sequence[Curve],
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
) -> float:
    """BD-rate between the averaged anchor curve and the averaged test curve.

    Each side is averaged with :func:`average_curve` first, then clipped to the window.
    """
    return bd_rate_in_window(average_curve(anchor_curves), average_curve(test_curves), window)
