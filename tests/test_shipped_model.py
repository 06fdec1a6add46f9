"""Smoke tests of the shipped model, on the example photo that ships in the repo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ir2icodec.codec import decode, encode
from ir2icodec.metrics import psnr
from ir2icodec.runtime import DEFAULT_MODEL, MANIFEST_NAME, load_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kodim23.png"
# Every bundle in models/ installs with the package; the ones that are not the default are
# earlier defaults, kept so that the files they made keep decoding.
SHIPPED = sorted(d.name for d in (ROOT / "models").iterdir() if (d / MANIFEST_NAME).is_file())
EARLIER = [name for name in SHIPPED if name != DEFAULT_MODEL]


@pytest.fixture(scope="module")
def shipped():
    return load_model(None)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))[100:228, 200:392]


def test_shipped_model_is_the_default_and_complete(shipped):
    assert shipped.name == DEFAULT_MODEL and shipped.stages == 8 and shipped.has_inpainting
    assert (shipped.directory / "MODEL_CARD.md").is_file()


def test_quality_rises_with_stages(shipped, crop):
    data = encode(crop, shipped, 8).data
    scores = [psnr(crop, decode(data, shipped, max_stages=k).rgb) for k in range(2, 9)]
    assert scores[-1] > scores[0] + 1.0
    assert all(b > a - 0.05 for a, b in zip(scores, scores[1:])), scores


def test_installed_cli_finds_the_shipped_model_from_any_directory(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.asarray(Image.open(EXAMPLE).convert("RGB"))[:64, :96]).save(src)
    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "encode", str(src), "-o", "x.ir2i", "--stages", "3"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "info", "x.ir2i"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert DEFAULT_MODEL.encode() in r.stdout


def test_earlier_default_models_still_ship():
    assert DEFAULT_MODEL in SHIPPED and "ir2i-compact" in EARLIER


@pytest.mark.parametrize("name", EARLIER)
def test_files_of_an_earlier_default_model_still_decode(tmp_path, name):
    """A file made by an earlier default decodes without naming its model."""
    src = tmp_path / "in.png"
    Image.fromarray(np.asarray(Image.open(EXAMPLE).convert("RGB"))[:64, :96]).save(src)
    for args in (["--model", name], []):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "ir2icodec",
                "encode",
                str(src),
                "-o",
                "x.ir2i",
                "--stages",
                "3",
                "-f",
                *args,
            ],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        r = subprocess.run(
            [sys.executable, "-m", "ir2icodec", "decode", "x.ir2i", "-o", "x.png", "-f"],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        with Image.open(tmp_path / "x.png") as im:
            assert im.size == (96, 64)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_has_a_post_filter_that_helps(name):
    """Each shipped model carries its own post-filter; on the example photo it raises both
    PSNR and MS-SSIM at a low and a middle stage count."""
    from ir2icodec.metrics import ms_ssim

    model = load_model(name)
    assert model.postfilter_spec is not None
    picture = np.asarray(Image.open(EXAMPLE).convert("RGB"))[64:320, 128:448]
    data = encode(picture, model, 4).data
    for k in (2, 4):
        raw = decode(data, model, max_stages=k, postfilter=False).rgb
        shown = decode(data, model, max_stages=k).rgb
        assert psnr(picture, shown) > psnr(picture, raw)
        assert ms_ssim(picture, shown) > ms_ssim(picture, raw)
