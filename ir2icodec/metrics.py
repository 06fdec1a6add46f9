"""Image quality metrics: PSNR, SSIM and MS-SSIM (numpy + scipy, no torch).

SSIM and MS-SSIM follow the convention of ``pytorch-msssim`` (the one most learned-codec
papers report), so numbers are comparable with published curves:

* 11x11 Gaussian window, sigma 1.5, applied separably with *valid* filtering (no padding);
* K1 = 0.01, K2 = 0.03, data range 255 (inputs are 8-bit values, not rescaled);
* the statistic is computed per channel and the channels are averaged at the end
  (for MS-SSIM the product over scales is taken per channel, then averaged);
* MS-SSIM uses the 5 weights of Wang et al. 2003 and 2x2 average pooling between scales;
  an odd side is padded with one zero row/column in front, counted in the average,
  exactly like ``torch.nn.functional.avg_pool2d(x, 2, padding=side % 2)``;
* MS-SSIM clamps the contrast-structure terms and the last-scale SSIM at 0 (relu)
  before raising them to fractional powers; plain SSIM is not clamped (the
  ``pytorch_msssim.ssim`` default ``nonnegative_ssim=False``).

Size limits (a decision, not an accident): MS-SSIM needs the smaller side to be larger
than ``(11 - 1) * 2**4 = 160`` pixels so that the coarsest scale still fits the window;
``pytorch-msssim`` asserts this and we raise ``ValueError`` instead. SSIM needs both sides
to be at least 11; ``pytorch-msssim`` would silently skip smoothing along a shorter axis,
which gives a number that is not SSIM, so we raise ``ValueError`` there too.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

DATA_RANGE = 255.0
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1 = 0.01
K2 = 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# The coarsest of the 5 scales is 2**4 times smaller; it must still exceed the window.
MS_SSIM_MIN_SIDE = (WIN_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1


def _as_pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images and return them as float64 (H, W, C) arrays."""
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    if x.ndim == 2:  # grayscale: one channel
        x, y = x[..., None], y[..., None]
    if x.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {x.shape}")
    return x.astype(np.float64), y.astype(np.float64)


def _gaussian_window() -> np.ndarray:
    # Same construction as pytorch_msssim._fspecial_gauss_1d, but in float64: the
    # reference builds it in float32, whose window sums to 1 only within ~1e-8; with
    # 8-bit data (x**2 up to 65025) that moves SSIM by ~1e-6, ours is the exact one.
    coords = np.arange(WIN_SIZE, dtype=np.float64) - WIN_SIZE // 2
    g = np.exp(-(coords**2) / (2 * WIN_SIGMA**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable Gaussian over axes 0 and 1 keeping only fully covered ("valid") outputs."""
    from scipy.ndimage import correlate1d  # the [bench] extra; imported when first needed

    half = len(win) // 2
    # correlate1d centres the (symmetric) window; cropping `half` on each side leaves
    # exactly the outputs whose window lies inside the image, i.e. conv2d without padding.
    for axis in (0, 1):
        x = correlate1d(x, win, axis=axis, mode="constant")
        x = x[half:-half] if axis == 0 else x[:, half:-half]
    return x


def _ssim_cs(x: np.ndarray, y: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast-structure term, each of shape (C,)."""
    c1 = (K1 * DATA_RANGE) ** 2
    c2 = (K2 * DATA_RANGE) ** 2
    mu1 = _filter_valid(x, win)
    mu2 = _filter_valid(y, win)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(x * x, win) - mu1_sq
    sigma2_sq = _filter_valid(y * y, win) - mu2_sq
    sigma12 = _filter_valid(x * y, win) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = (2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
    return ssim_map.mean(axis=(0, 1)), cs_map.mean(axis=(0, 1))


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling as ``avg_pool2d(x, 2, padding=side % 2)`` (count_include_pad)."""
    h, w = x.shape[:2]
    # Padding one zero on both sides of an odd axis; only the leading one is ever read.
    x = np.pad(x, ((h % 2, h % 2), (w % 2, w % 2), (0, 0)))
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    x = x[: 2 * h2, : 2 * w2]
    return x.reshape(h2, 2, w2, 2, -1).mean(axis=(1, 3))


def psnr(a: ArrayLike, b: ArrayLike) -> float:
    """PSNR in dB over all pixels and channels, data range 255; ``inf`` for identical images."""
    x, y = _as_pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim(a: ArrayLike, b: ArrayLike) -> float:
    """Mean SSIM (pytorch-msssim convention), averaged over channels.

    Raises ``ValueError`` if a side is shorter than the 11-pixel window.
    """
    x, y = _as_pair(a, b)
    if min(x.shape[:2]) < WIN_SIZE:
        raise ValueError(
            f"SSIM needs both sides >= {WIN_SIZE} pixels, got {x.shape[0]}x{x.shape[1]}"
        )
    ssim_c, _ = _ssim_cs(x, y, _gaussian_window())
    return float(ssim_c.mean())


def ms_ssim(a: ArrayLike, b: ArrayLike) -> float:
    """MS-SSIM (pytorch-msssim convention, 5 scales), averaged over channels.

    Raises ``ValueError`` unless the smaller side is > 160 pixels (``MS_SSIM_MIN_SIDE``).
    """
    return ssim_and_ms_ssim(a, b)[1]


def ssim_and_ms_ssim(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """``(ssim(a, b), ms_ssim(a, b))`` for the price of MS-SSIM alone.

    The first MS-SSIM scale is exactly the full-resolution SSIM computation, so a
    benchmark that wants both saves ~40% of the metric time. Same size limit as MS-SSIM.
    """
    x, y = _as_pair(a, b)
    if min(x.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"MS-SSIM needs the smaller side >= {MS_SSIM_MIN_SIDE} pixels (5 scales of an "
            f"11-pixel window), got {x.shape[0]}x{x.shape[1]}"
        )
    win = _gaussian_window()
    weights = np.asarray(MS_SSIM_WEIGHTS)
    terms = []
    full_res_ssim = math.nan
    for level in range(len(weights)):
        ssim_c, cs_c = _ssim_cs(x, y, win)
        if level == 0:
            full_res_ssim = float(ssim_c.mean())
        if level < len(weights) - 1:
            # relu: a negative cs to a fractional power would be NaN.
            terms.append(np.maximum(cs_c, 0.0))
            x, y = _avg_pool2(x), _avg_pool2(y)
    terms.append(np.maximum(ssim_c, 0.0))
    per_channel = np.prod(np.stack(terms) ** weights[:, None], axis=0)
    return full_res_ssim, float(per_channel.mean())
