"""``ir2i decode --progressive``: every stage count in one picture, run as the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from ir2icodec import api
from ir2icodec.preview import Frame, strip

REPO = Path(__file__).resolve().parent.parent


def ir2i(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ir2icodec", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preview") / "x.ir2i"
    path.write_bytes(api.encode(smooth_image(40, 56), stages=4))
    return path


def test_animation_has_one_frame_per_stage_count(encoded, tmp_path):
    out = tmp_path / "steps.png"
    r = ir2i("decode", str(encoded), "--progressive", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.n_frames == 3  # stages 2, 3, 4
        assert im.width == 56 and im.height > 40  # the picture plus its label band
        im.seek(2)
        last = np.asarray(im.convert("RGB"))[:40]
    np.testing.assert_array_equal(last, api.decode(encoded.read_bytes(), output="numpy"))


def test_strip_and_max_stages(encoded, tmp_path):
    out = tmp_path / "strip.png"
    r = ir2i("decode", str(encoded), "--progressive", "strip", "-k", "3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.width == 2 * 56 + 4 and not getattr(im, "is_animated", False)


def test_animation_needs_an_animated_format(encoded, tmp_path):
    out = tmp_path / "steps.jpg"
    r = ir2i("decode", str(encoded), "--progressive", "-o", str(out))
    assert r.returncode == 2 and not out.exists()
    assert r.stderr.strip().splitlines() == [
        "ir2i: error: --progressive animation writes PNG or WebP, not JPEG; "
        "use .png, .webp or --progressive strip"
    ]


def test_strip_keeps_alpha_and_wraps():
    frames = [Frame(k, 0.25 * k, Image.new("RGBA", (10, 6), (1, 2, 3, 40))) for k in range(2, 9)]
    picture = strip(frames, columns=4)
    assert picture.mode == "RGBA" and picture.width == 4 * 10 + 3 * 4
    assert picture.getpixel((0, 0)) == (1, 2, 3, 40)
