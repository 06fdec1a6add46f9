"""Exemplar-based inpainting of Criminisi, Pérez & Toyama (IEEE TIP 2004), the paper's [6].

The algorithm, as in the original paper:

1. the fill front is the set of unknown pixels with a known 8-neighbour;
2. each front pixel p gets the priority ``P(p) = C(p) * D(p)``: the confidence
   ``C(p) = sum of C over the known part of the patch / patch area`` and the data term
   ``D(p) = |isophote(p) . n(p)| / alpha``, where the isophote is the image gradient rotated
   by 90 degrees and ``n(p)`` the unit normal of the fill front;
3. the patch around the highest-priority pixel is compared with every fully known source
   patch by the sum of squared differences over its known pixels; the best match's pixels
   are copied into the patch's unknown pixels, which take the confidence ``C(p)``;
4. repeat until nothing is unknown.

Choices where the paper leaves room (each is a common implementation choice):

* the isophote at p is the gradient of largest magnitude among the *known* pixels of p's
  patch (the gradient at p itself is undefined: p is unknown), with finite differences that
  only ever use known pixels;
* SSD in the input colour space (RGB here; the paper used CIE Lab);
* the patch area in ``C(p)`` counts only pixels inside the image, so the image border is not
  treated as missing data (our blocks touch the border of their 64x64 context);
* ``D`` gets a tiny floor (``DATA_FLOOR``) so that in flat regions, where every ``D`` is 0,
  the confidence still orders the fill (onion-peel) instead of an arbitrary raster order;
* source patches come from the originally known region only (the paper's source region
  ``Phi = I - Omega``), never from pixels filled earlier.

Unknown pixels are never read: their values are replaced by 0 before anything else, so the
result does not depend on what the caller left there (NaN, garbage, the true pixels).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import binary_dilation, sobel

PATCH_SIZE = 9
ALPHA = 255.0  # normalisation of the data term (8-bit images), as in the paper
DATA_FLOOR = 1e-3
_EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def _known_gradient(lum: np.ndarray, known: np.ndarray, axis: int) -> np.ndarray:
    """d(lum)/d(axis) from known pixels only: central difference where the pixel and both
    neighbours are known, one-sided where only one pair is, 0 elsewhere."""
    lum_a = np.moveaxis(lum, axis, 0)
    known_a = np.moveaxis(known, axis, 0)
    back = np.zeros_like(lum_a)
    fwd = np.zeros_like(lum_a)
    back[1:] = lum_a[1:] - lum_a[:-1]
    fwd[:-1] = lum_a[1:] - lum_a[:-1]
    back_ok = np.zeros_like(known_a)
    fwd_ok = np.zeros_like(known_a)
    back_ok[1:] = known_a[1:] & known_a[:-1]
    fwd_ok[:-1] = known_a[1:] & known_a[:-1]
    grad = np.where(
        back_ok & fwd_ok, (back + fwd) / 2, np.where(fwd_ok, fwd, np.where(back_ok, back, 0.0))
    )
    return np.moveaxis(grad, 0, axis)


def inpaint_criminisi(
    image: np.ndarray, mask: np.ndarray, patch_size: int = PATCH_SIZE
) -> np.ndarray:
    """Fill ``mask`` (True = unknown) of an (H, W) or (H, W, C) image; returns a new array
    of the input's dtype whose known pixels are untouched.

    Raises ``ValueError`` if no fully known patch exists to copy from.
    """
    if patch_size < 3 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 3, got {patch_size}")
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    gray = image.ndim == 2
    img3 = image[..., None] if gray else image
    if img3.ndim != 3 or mask.shape != img3.shape[:2]:
        raise ValueError(f"image {image.shape} and mask {mask.shape} do not match")
    result = image.copy()
    if not mask.any():
        return result
    h, w, ch = img3.shape
    ps, half = patch_size, patch_size // 2

    # Source patches: fully known in the original image, fixed for the whole fill.
    clean = np.where(mask[..., None], 0.0, img3.astype(np.float64))  # unknown never read
    source_ok = (
        sliding_window_view(~mask, (ps, ps)).all(axis=(-2, -1))
        if h >= ps and w >= ps
        else np.zeros((0, 0), bool)
    )
    sy, sx = np.nonzero(source_ok)
    if sy.size == 0:
        raise ValueError(f"no fully known {ps}x{ps} patch to copy from")
    windows = sliding_window_view(clean, (ps, ps), axis=(0, 1))  # (.., .., C, ps, ps)
    cand = windows[sy, sx].transpose(0, 2, 3, 1).reshape(sy.size, -1)  # (K, ps*ps*C)
    cand_sq = cand * cand

    # Working state, padded by half a patch so every patch is a full ps x ps slice; the
    # padding is "outside the image": never known, never filled, zero confidence.
    pad = ((half, half), (half, half))
    img_p = np.pad(clean, (*pad, (0, 0)))
    known_p = np.pad(~mask, pad, constant_values=False)
    inside_p = np.pad(np.ones((h, w), bool), pad, constant_values=False)
    conf_p = np.pad((~mask).astype(np.float64), pad)
    area = sliding_window_view(inside_p, (ps, ps)).sum(axis=(-2, -1)).astype(np.float64)
    img = img_p[half : half + h, half : half + w]  # views into the padded state
    known = known_p[half : half + h, half : half + w]

    while not known.all():
        unknown = ~known
        front = unknown & binary_dilation(known, _EIGHT_NEIGHBOURS)
        fy, fx = np.nonzero(front)

        conf = sliding_window_view(conf_p, (ps, ps))[fy, fx].sum(axis=(-2, -1)) / area[fy, fx]

        lum = img.mean(axis=2)
        gx = _known_gradient(lum, known, axis=1)
        gy = _known_gradient(lum, known, axis=0)
        mag_p = np.pad(gx * gx + gy * gy, pad, constant_values=-1.0)
        best = sliding_window_view(mag_p, (ps, ps))[fy, fx].reshape(fy.size, -1).argmax(axis=1)
        iy, ix = fy + best // ps - half, fx + best % ps - half  # patch pixel, image coords
        iso_x, iso_y = -gy[iy, ix], gx[iy, ix]  # the isophote: gradient rotated by 90 degrees

        known_f = known.astype(np.float64)
        nx, ny = sobel(known_f, axis=1)[fy, fx], sobel(known_f, axis=0)[fy, fx]
        norm = np.hypot(nx, ny)
        norm[norm == 0] = 1.0  # isolated unknown pixel: no normal, D = floor
        data = np.abs(iso_x * nx + iso_y * ny) / norm / ALPHA

        k = int(np.argmax(conf * (data + DATA_FLOOR)))
        y, x = int(fy[k]), int(fx[k])  # patch = padded [y:y+ps, x:x+ps]

        tk = known_p[y : y + ps, x : x + ps]
        weight = np.repeat(tk.reshape(-1), ch).astype(np.float64)
        target = img_p[y : y + ps, x : x + ps].reshape(-1) * weight
        # SSD over the known pixels, vectorised over all candidates:
        # sum w (c - t)^2 = c^2 . w - 2 c . (w t) + const.
        ssd = cand_sq @ weight - 2.0 * (cand @ target)
        src = cand[int(np.argmin(ssd))].reshape(ps, ps, ch)

        fill = ~tk & inside_p[y : y + ps, x : x + ps]
        img_p[y : y + ps, x : x + ps][fill] = src[fill]
        conf_p[y : y + ps, x : x + ps][fill] = conf[k]
        known_p[y : y + ps, x : x + ps][fill] = True

    filled = img[..., 0] if gray else img
    if np.issubdtype(result.dtype, np.integer):
        filled = np.rint(filled)  # copies of integer pixels: exact, rint only guards
    result[mask] = filled[mask].astype(result.dtype)
    return result
