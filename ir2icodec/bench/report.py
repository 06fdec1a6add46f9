"""Reports of the rate-distortion benchmark (:mod:`ir2icodec.bench.rd`): its points turned
into RD curves, BD-rates against an anchor, the ``bdrate.md`` table and the ``rd.png`` plot.

matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bdrate import DEFAULT_BPP_WINDOW, bd_rate_in_window, mean_bd_rate

if TYPE_CHECKING:  # rd imports this module; the points are only annotated here
    from .rd import RDPoint


def msssim_db(value: np.ndarray | float) -> np.ndarray:
    """MS-SSIM on a dB scale, ``-10 log10(1 - x)``: spreads out the crowded top end."""
    return -10.0 * np.log10(np.maximum(1.0 - np.asarray(value, dtype=np.float64), 1e-10))


QualityAxes = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]


def quality_axes(msssim_in_db: bool) -> QualityAxes:
    """Quality axes for BD-rate and plots: metric name -> (CSV column, transform).

    BD-rate uses raw MS-SSIM by default, as the paper's Bjontegaard numbers do (and they
    land closer to the reference Kodak values); the dB scale is an option, and the plot
    always uses it because raw MS-SSIM curves crowd against 1.
    """
    return {
        "MS-SSIM": ("ms_ssim", msssim_db if msssim_in_db else np.asarray),
        "PSNR": ("psnr", np.asarray),
    }


def curves(points: Sequence[RDPoint], codec: str, attr: str) -> dict[str, dict[str, tuple]]:
    """``{image: {setting: (bpp, raw quality)}}`` for one codec, settings in sweep order."""
    out: dict[str, dict[str, tuple]] = defaultdict(dict)
    for p in points:
        if p.codec == codec:
            out[p.image][p.setting] = (p.bpp, getattr(p, attr))
    return out


def _finite(bpp: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Lossless points (PSNR inf) and unmeasurable ones (MS-SSIM nan on tiny images) drop out.
    keep = np.isfinite(bpp) & np.isfinite(quality)
    return bpp[keep], quality[keep]


def image_curve(
    per_setting: dict[str, tuple], transform: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    bpp = np.array([v[0] for v in per_setting.values()], dtype=np.float64)
    raw = np.array([v[1] for v in per_setting.values()], dtype=np.float64)
    return _finite(bpp, transform(raw))


def average_curve_over(
    per_image: dict[str, dict[str, tuple]],
    images: Iterable[str],
    transform: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp and mean raw quality at each setting present for all ``images``.

    The raw metric is averaged and transformed afterwards (mean MS-SSIM, then dB), so
    the average curve is the one a reader would compute from the CSV. Images where the
    metric is undefined (MS-SSIM of an image under 161 pixels) are left out of the mean.
    """
    images = [i for i in images if not any(math.isnan(v[1]) for v in per_image[i].values())]
    if not images:
        return np.array([]), np.array([])
    settings = [s for s in per_image[images[0]] if all(s in per_image[i] for i in images)]
    if not settings:
        return np.array([]), np.array([])
    bpp = np.array([[per_image[i][s][0] for i in images] for s in settings], dtype=np.float64)
    raw = np.array([[per_image[i][s][1] for i in images] for s in settings], dtype=np.float64)
    return _finite(bpp.mean(axis=1), transform(raw.mean(axis=1)))


@dataclass(frozen=True)
class BDRow:
    codec: str
    metric: str
    per_image_mean: float
    n_images: int
    on_average_curve: float


def bd_rates(
    points: Sequence[RDPoint],
    anchor: str = "jpeg",
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    msssim_in_db: bool = False,
) -> list[BDRow]:
    """BD-rate of every codec against ``anchor`` for each quality axis."""
    codecs = list(dict.fromkeys(p.codec for p in points))
    rows = []
    for metric, (attr, transform) in quality_axes(msssim_in_db).items():
        anchor_curves = curves(points, anchor, attr)
        for codec in codecs:
            test_curves = curves(points, codec, attr)
            common = [i for i in anchor_curves if i in test_curves]
            pairs = [
                (image_curve(anchor_curves[i], transform), image_curve(test_curves[i], transform))
                for i in common
            ]
            mean, n = mean_bd_rate(pairs, window)
            avg = bd_rate_in_window(
                average_curve_over(anchor_curves, common, transform),
                average_curve_over(test_curves, common, transform),
                window,
            )
            rows.append(BDRow(codec, metric, mean, n, avg))
    return rows


@dataclass(frozen=True)
class CurveTop:
    """Where a codec's curves end: means over images of each image's highest-rate point."""

    codec: str
    bpp: float
    psnr: float
    ms_ssim: float
    n_images: int


def curve_tops(points: Sequence[RDPoint]) -> list[CurveTop]:
    """The top of every codec's curves, in the order the codecs first appear.

    BD-rate integrates over the quality range both curves cover, so a codec whose curves end
    at a lower quality is compared only up to there: this says where that is. Per image the
    point of the highest rate; its bpp, PSNR and MS-SSIM are averaged over the images where
    they are finite (MS-SSIM is undefined on images under 161 pixels).
    """
    tops: dict[str, list[RDPoint]] = defaultdict(list)
    highest: dict[tuple[str, str], RDPoint] = {}
    for p in points:
        key = (p.codec, p.image)
        if key not in highest or p.bpp > highest[key].bpp:
            highest[key] = p
    for (codec, _), p in highest.items():
        tops[codec].append(p)

    def mean(values: Iterable[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    return [
        CurveTop(
            codec,
            mean(p.bpp for p in top),
            mean(p.psnr for p in top),
            mean(p.ms_ssim for p in top),
            len(top),
        )
        for codec, top in tops.items()
    ]


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


def bdrate_markdown(
    points: Sequence[RDPoint],
    anchor: str = "jpeg",
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    msssim_in_db: bool = False,
) -> str:
    rows = bd_rates(points, anchor, window, msssim_in_db)
    images = sorted({p.image for p in points})
    by_key = {(r.codec, r.metric): r for r in rows}
    window_text = "whole curves" if window is None else f"{window[0]:g}-{window[1]:g} bpp"
    lines = [
        f"# BD-rate against {anchor}",
        "",
        f"{len(images)} images from the data folder; rate window {window_text}; "
        "negative = fewer bits than the anchor at the same quality.",
        '"per image" is the mean of per-image BD-rates (n = images where it is defined); '
        '"avg curve" is the BD-rate between the curves averaged over images at each setting.',
        (
            "MS-SSIM is integrated on the dB scale -10·log10(1 - MS-SSIM)"
            if msssim_in_db
            else "MS-SSIM is integrated as is (not in dB)"
        )
        + "; PSNR in dB.",
        "",
        "| codec | MS-SSIM BD-rate, per image | MS-SSIM BD-rate, avg curve "
        "| PSNR BD-rate, per image | PSNR BD-rate, avg curve | n |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for codec in dict.fromkeys(p.codec for p in points):
        ms, ps = by_key[(codec, "MS-SSIM")], by_key[(codec, "PSNR")]
        lines.append(
            f"| {codec} | {_pct(ms.per_image_mean)} | {_pct(ms.on_average_curve)} "
            f"| {_pct(ps.per_image_mean)} | {_pct(ps.on_average_curve)} | {ms.n_images} |"
        )
    lines += [
        "",
        "## Where each curve ends",
        "",
        "BD-rate integrates over the quality range both curves cover, so a codec is compared "
        "only up to the highest quality it reaches. Each codec's highest-rate point, averaged "
        "over the images:",
        "",
        "| codec | bpp | PSNR (dB) | MS-SSIM | n |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {t.codec} | {t.bpp:.3f} | {t.psnr:.2f} | {t.ms_ssim:.4f} | {t.n_images} |"
        for t in curve_tops(points)
    ]
    return "\n".join(lines) + "\n"


def plot_rd(
    points: Sequence[RDPoint],
    path: Path,
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    max_bpp: float = 1.5,
) -> None:
    """Two panels (MS-SSIM dB and PSNR vs bpp) of the per-codec average curves."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state or GUI backend

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    images = sorted({p.image for p in points})
    axes_spec = quality_axes(msssim_in_db=True).items()
    for ax, (metric, (attr, transform)) in zip(axes, axes_spec, strict=True):
        visible: list[float] = []
        for codec in dict.fromkeys(p.codec for p in points):
            per_image = curves(points, codec, attr)
            bpp, q = average_curve_over(per_image, [i for i in images if i in per_image], transform)
            if bpp.size == 0:
                continue
            ax.plot(bpp, q, marker="o", markersize=3, label=codec)
            visible.extend(q[bpp <= max_bpp])
        if window is not None:
            for edge in window:
                ax.axvline(edge, color="0.7", linestyle=":", linewidth=1)
        ax.set_xlim(0, max_bpp)
        if visible:
            lo, hi = min(visible), max(visible)
            pad = 0.05 * (hi - lo) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("MS-SSIM (dB)" if metric == "MS-SSIM" else "PSNR (dB)")
        ax.set_title(f"{metric}, mean over {len(images)} images")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=120)
