"""ir2icodec.metrics against pytorch-msssim (the reference convention) and basic identities."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ir2icodec.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr, ssim, ssim_and_ms_ssim

KODIM01 = Path("/work/shared/data/kodak/kodim01.png")
TOL = 1e-5


def _reference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(SSIM, MS-SSIM) from pytorch-msssim, in float64 so only the convention is compared."""
    torch = pytest.importorskip("torch")
    pm = pytest.importorskip("pytorch_msssim")

    def t(x: np.ndarray):
        return torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]

    s = pm.ssim(t(a), t(b), data_range=255).item()
    m = pm.ms_ssim(t(a), t(b), data_range=255).item() if min(a.shape[:2]) > 160 else math.nan
    return s, m


def _noisy(a: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.mark.parametrize(
    ("h", "w", "sigma"),
    [(161, 161, 10.0), (171, 203, 40.0), (192, 256, 3.0), (200, 177, 80.0)],
)
def test_random_images_match_pytorch_msssim(h: int, w: int, sigma: float) -> None:
    # Odd sides exercise the zero-padded average pooling between scales.
    a = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = _noisy(a, sigma, seed=1)
    ref_s, ref_m = _reference(a, b)
    assert ssim(a, b) == pytest.approx(ref_s, abs=TOL)
    assert ms_ssim(a, b) == pytest.approx(ref_m, abs=TOL)


def test_unrelated_random_images_match_pytorch_msssim() -> None:
    # Near-zero and negative cs terms: checks the relu clamping matches.
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (170, 181, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (170, 181, 3), dtype=np.uint8)
    ref_s, ref_m = _reference(a, b)
    assert ssim(a, b) == pytest.approx(ref_s, abs=TOL)
    assert ms_ssim(a, b) == pytest.approx(ref_m, abs=TOL)


@pytest.mark.skipif(not KODIM01.exists(), reason="Kodak image not available")
@pytest.mark.parametrize(
    ("box", "distort"),
    [
        ((0, 0, 256, 192), lambda a: _jpeg(a, 10)),
        ((100, 50, 363, 227), lambda a: _jpeg(a, 60)),
        ((0, 0, 768, 512), lambda a: _noisy(a, 5.0, seed=3)),
    ],
)
def test_natural_images_match_pytorch_msssim(box, distort) -> None:
    a = np.asarray(Image.open(KODIM01).convert("RGB").crop(box))
    b = distort(a)
    ref_s, ref_m = _reference(a, b)
    assert ssim(a, b) == pytest.approx(ref_s, abs=TOL)
    assert ms_ssim(a, b) == pytest.approx(ref_m, abs=TOL)


def test_combined_call_equals_separate_calls() -> None:
    a = np.random.default_rng(11).integers(0, 256, (175, 190, 3), dtype=np.uint8)
    b = _noisy(a, 25.0, seed=4)
    assert ssim_and_ms_ssim(a, b) == (ssim(a, b), ms_ssim(a, b))


def test_identical_images() -> None:
    a = np.random.default_rng(0).integers(0, 256, (170, 170, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_psnr_known_value_over_all_channels() -> None:
    a = np.full((8, 8, 3), 100, dtype=np.uint8)
    b = a.copy()
    b[..., 0] += 3  # error 3 on one channel of three: MSE = 9 / 3 = 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3))
    assert psnr(b, a) == psnr(a, b)


def test_symmetric_and_grayscale() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (180, 190), dtype=np.uint8)
    b = _noisy(a, 20.0, seed=2)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert ms_ssim(a, b) == pytest.approx(ms_ssim(b, a), abs=1e-12)
    # A grayscale image scores like the same image given as one channel.
    assert ssim(a, b) == pytest.approx(ssim(a[..., None], b[..., None]), abs=1e-12)


def test_size_limits_raise_clear_errors() -> None:
    assert MS_SSIM_MIN_SIDE == 161
    ok = np.zeros((161, 300, 3), dtype=np.uint8)
    ms_ssim(ok, ok)
    small = np.zeros((160, 300, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="MS-SSIM needs the smaller side >= 161"):
        ms_ssim(small, small)
    tiny = np.zeros((10, 30, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="SSIM needs both sides >= 11"):
        ssim(tiny, tiny)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(ok, small)


def test_no_torch_at_runtime() -> None:
    code = "import sys, ir2icodec.metrics; sys.exit('torch' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo, check=False).returncode == 0
