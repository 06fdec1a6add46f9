"""experiments.stage_floor: its tables extend the encoder's, its floor-2 arm is the encoder's
own allocation, and it runs end to end (shipped model, one small photo)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ir2icodec.codec import analyse, decode
from ir2icodec.ratecontrol import allocate, quality_to_lambda
from ir2icodec.runtime import load_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kodim23.png"


def _crop() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))[96:272, 200:400]


def test_stage_floor_tables_extend_todays_and_floor_two_is_todays_allocation():
    """experiments.stage_floor: columns 2.. are the analysis's own, columns 0-1 are the
    inpainting and stage 1 the decoder would compute, and the floor-2 arm is the encoder's
    own allocation."""
    from experiments.stage_floor import OCTAVES, floor_curve, floor_table
    from ir2icodec.metrics import ssim_and_ms_ssim

    model = load_model(None)
    rgb = _crop()
    analysis = analyse(rgb, model)
    h = analysis.header
    table, pixels = floor_table(analysis, rgb, model)
    np.testing.assert_array_equal(table[:, 2:], analysis.distortion)
    np.testing.assert_array_equal(pixels[2:], analysis.pixels)
    # 1 stage: what decoding a 2-stage file shows after its first stage, block by block
    # (blocks are independent given the stage-2 contexts, which every block has).
    assert (table[:, 0] >= table[:, 1]).mean() > 0.8  # stage 1 improves most inpaintings
    assert (table[:, 1] >= table[:, 2]).mean() > 0.8
    curve = floor_curve(table, pixels, h, rgb, 2, analysis.kind)
    lam = quality_to_lambda(50, analysis.kind) * 2.0 ** OCTAVES[7]
    counts = allocate(analysis.distortion, lam, h.bits_per_stage, 2)
    shown = decode(analysis.write(counts), model, postfilter=False).rgb
    assert curve[7][2] == ssim_and_ms_ssim(rgb, shown)[1]
    assert curve[7][0] == h.bits_per_stage * counts.astype(int).sum() / (h.width * h.height)
    lower = floor_curve(table, pixels, h, rgb, 0, analysis.kind)
    assert (lower[:, 0] <= curve[:, 0] + 1e-9).all()  # a lower floor never spends more


def test_stage_floor_command_writes_a_table(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(_crop()).save(data / "a.png")
    out = tmp_path / "t.md"
    r = subprocess.run(
        [sys.executable, "-m", "experiments.stage_floor", "--data", str(data), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert re.search(r"\| 0 \| [+-]\d+\.\d% \| [+-]\d+\.\d% \| 1 \|", text), text
    assert re.search(r"\| 1 \| [+-]\d+\.\d% \| [+-]\d+\.\d% \| 1 \|", text), text
