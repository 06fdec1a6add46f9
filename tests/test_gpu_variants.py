"""experiments.gpu_variants: the all-variants GPU script, planned in full and dry-run on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from experiments.gpu_variants import plan

REPO = Path(__file__).resolve().parent.parent
TINY = [
    "--widths",
    "4,8,8",
    "--filters-per-dilation",
    "1",
    "--batch",
    "4",
    "--val-every",
    "2",
    "--threads",
    "1",
    "--inpaint-layers",
    "1",
]


def test_the_plan_has_every_model_and_the_second_seeds_after_what_they_need():
    variants = plan()
    names = [v.name for v in variants]
    for name in (
        "residual",
        "prediction",
        "full",
        "decoding",
        "inpaint-only",
        "inpaint-vanilla",
        "sep-inp",
        "ir2i",
        "inpaint-only-wide",
        "ir2i-wide",
    ):
        assert name in names
    seeded = {v.name for v in variants if v.seed == 1}
    assert seeded == {
        "residual-seed1",
        "decoding-seed1",
        "inpaint-only-seed1",
        "sep-inp-seed1",
        "ir2i-seed1",
    }
    for v in variants:
        if v.needs:
            assert names.index(v.needs) < names.index(v.name)
    wide = next(v for v in variants if v.name == "ir2i-wide")
    assert wide.flags[-2:] == ("--filters-per-dilation", "24")


def test_a_dry_run_leaves_small_weights_only_checkpoints(tmp_path, pack_file):
    out = tmp_path / "variants"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.gpu_variants",
            "--pack",
            str(pack_file),
            "--out",
            str(out),
            "--minutes",
            "0.02",
            "--seeds",
            "0",
            "--only",
            "residual,sep-inp",
            "--",
            *TINY,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [run["name"] for run in summary["runs"]] == ["residual", "inpaint-only", "sep-inp"]
    for name in ("residual", "inpaint-only", "sep-inp"):
        ckpt = torch.load(out / name / "checkpoint.pt", weights_only=False)
        assert "optimizer" not in ckpt
        assert all(
            t.dtype == torch.bfloat16 for t in ckpt["model"].values() if t.is_floating_point()
        )
        assert (out / name / "log.jsonl").exists()
    # Sep-Inp's frozen inpainting network is the one inpaint-only trained.
    sep = torch.load(out / "sep-inp" / "checkpoint.pt", weights_only=False)["model"]
    alone = torch.load(out / "inpaint-only" / "checkpoint.pt", weights_only=False)["model"]
    for key, value in alone.items():
        if key.startswith("inpaint."):
            torch.testing.assert_close(sep[key], value)
