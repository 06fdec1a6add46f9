"""experiments.filter_aware_allocation: its pictures are what ir2i decode shows, and it runs
end to end (shipped model, one small photo)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from experiments.filter_aware_allocation import filtered_distortion, rd_points
from ir2icodec import blocks as blk
from ir2icodec.codec import analyse, decode
from ir2icodec.ratecontrol import allocate, block_distortion, quality_to_lambda
from ir2icodec.runtime import load_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kodim23.png"


def _crop() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))[96:272, 200:400]


def test_tables_and_points_are_what_the_decoder_shows():
    model = load_model(None)
    rgb = _crop()
    analysis = analyse(rgb, model, cap=4)
    h = analysis.header
    originals = blk.image_blocks(rgb, h.block_size)
    inside = blk.inside_blocks(h.height, h.width, h.block_size)
    table = filtered_distortion(analysis, rgb, model)
    assert table.shape == analysis.distortion.shape
    for j, stages in enumerate(range(2, 5)):
        shown = decode(analysis.write(np.full(h.n_blocks, stages, np.uint8)), model).rgb
        np.testing.assert_allclose(
            table[:, j],
            block_distortion(
                originals, blk.image_blocks(shown, h.block_size), inside, analysis.kind
            ),
        )
    # The filter lowers most blocks' distortion, and not by the same factor everywhere.
    ratio = table / analysis.distortion
    assert np.median(ratio) < 1 and ratio.std() > 0
    counts = allocate(table, quality_to_lambda(50, analysis.kind), h.bits_per_stage, 2)
    assert len(set(counts.tolist())) > 1
    points = rd_points(analysis, table, rgb, model)
    bpps = [p[0] for p in points]
    assert bpps == sorted(bpps) and all(np.isfinite(points).ravel())


def test_command_writes_a_table(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(_crop()).save(data / "a.png")
    out = tmp_path / "t.md"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.filter_aware_allocation",
            "--data",
            str(data),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text == r.stdout
    for arm in ("reconstruction", "filtered"):
        row = re.search(rf"\| {arm} \|((?: [+-]\d+\.\d% \|){{4}}) 1 \|", text)
        assert row, text
        # a BD-rate is a change in bits: never below -100%
        assert all(float(v) > -100 for v in re.findall(r"([+-]\d+\.\d)%", row.group(1)))
