"""The paper-experiment commands (experiments/): Criminisi inpainting, Table 1, Figs. 3a/5a."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from conftest import smooth_image, tiny_coder
from PIL import Image

from experiments import rd_variants, table1_inpainting
from experiments.criminisi import inpaint_criminisi
from experiments.table1_inpainting import (
    BLOCK,
    CONTEXT,
    Method,
    block_grid,
    block_mask,
    partial_contexts,
)
from ir2icodec.bench.rd import RDPoint
from ir2icodec.bench.rd import read_csv as read_rd_csv


def _cli(command: click.Command, args: list[str]) -> Result:
    """Run a click command as its command line would (usage errors exit 2)."""
    return CliRunner().invoke(command, args)


# ---------------------------------------------------------------- Criminisi


def stripes(size: int = 64, period: int = 12) -> np.ndarray:
    """Diagonal two-colour stripes: an exemplar method can continue them exactly."""
    y, x = np.mgrid[0:size, 0:size]
    on = ((x + y) // (period // 2)) % 2 == 0
    return np.stack(
        [np.where(on, 220, 40), np.where(on, 30, 200), np.full_like(x, 100)], -1
    ).astype(np.uint8)


def test_criminisi_continues_stripes_better_than_a_constant() -> None:
    img, mask = stripes(), block_mask()
    out = inpaint_criminisi(img, mask)
    truth = img[mask].astype(float)
    err = np.abs(out[mask].astype(float) - truth).mean()
    constant = np.abs(img[~mask].mean(axis=0) - truth).mean()
    assert err < 0.25 * constant
    assert np.array_equal(out[~mask], img[~mask])  # known pixels untouched
    assert out.dtype == np.uint8


def test_criminisi_never_reads_masked_pixels() -> None:
    img, mask = smooth_image(64, 64, seed=3), block_mask()
    clean = img.copy()
    clean[mask] = 0
    expected = inpaint_criminisi(clean, mask)
    garbage = img.copy()
    garbage[mask] = np.random.default_rng(0).integers(0, 256, (int(mask.sum()), 3))
    assert np.array_equal(inpaint_criminisi(garbage, mask), expected)
    assert np.array_equal(inpaint_criminisi(img, mask), expected)  # not even the truth
    poisoned = img.astype(np.float64)
    poisoned[mask] = np.nan
    out = inpaint_criminisi(poisoned, mask)
    assert np.isfinite(out).all()
    assert np.array_equal(out, expected.astype(np.float64))


def test_criminisi_fills_a_patch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Work, not time, is what a test can hold (speed belongs in benchmarks/): each step of
    # the fill computes one fill front and copies one patch, so the number of steps lies
    # between the hole's pixels over a patch's and the hole's pixels.
    import experiments.criminisi as criminisi

    steps = []
    real_dilation = criminisi.binary_dilation

    def counted(*args, **kwargs):
        steps.append(1)
        return real_dilation(*args, **kwargs)

    monkeypatch.setattr(criminisi, "binary_dilation", counted)
    img, mask = smooth_image(64, 64, seed=5), block_mask()
    out = inpaint_criminisi(img, mask)
    hole = int(mask.sum())
    assert hole / criminisi.PATCH_SIZE**2 <= len(steps) < hole
    assert np.array_equal(out[~mask], img[~mask])


def test_criminisi_grayscale_and_errors() -> None:
    gray = stripes()[..., 0]
    out = inpaint_criminisi(gray, block_mask())
    assert out.shape == gray.shape
    assert np.array_equal(inpaint_criminisi(gray, np.zeros_like(gray, bool)), gray)
    with pytest.raises(ValueError, match="no fully known"):
        inpaint_criminisi(gray, np.ones_like(gray, bool))
    with pytest.raises(ValueError, match="do not match"):
        inpaint_criminisi(gray, np.zeros((3, 3), bool))


# ---------------------------------------------------------------- Table 1


def test_block_grid_skips_first_row_and_column_and_partial_blocks() -> None:
    coords = block_grid(96 + 5, 128 + 31)  # 3 x 4 full blocks
    assert coords.tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]
    assert block_grid(40, 500).shape == (0, 2)


def test_partial_contexts_hide_the_block() -> None:
    rgb = smooth_image(96, 128)
    ctx = partial_contexts(rgb, np.array([[2, 3]]))[0]
    assert (ctx[block_mask()] == 0).all()
    assert np.array_equal(ctx[:BLOCK], rgb[BLOCK : 2 * BLOCK, 2 * BLOCK : 4 * BLOCK])
    assert np.array_equal(ctx[BLOCK:, :BLOCK], rgb[2 * BLOCK :, 2 * BLOCK : 3 * BLOCK])


def test_paper_values_by_method_name() -> None:
    assert Method("pde").paper == pytest.approx(0.4574)
    assert Method("exemplar").paper == pytest.approx(0.4611)
    assert Method("vanilla", "x.pt").paper == pytest.approx(0.4545)
    assert Method("multiscale-joint", "x.pt").paper == pytest.approx(0.5165)
    assert Method("Multi-scale", "x.pt").paper == pytest.approx(0.5165)
    assert Method("other", "x.pt").paper is None


def _checkpoint(path: Path, **overrides) -> Path:
    coder = tiny_coder(**overrides)
    torch.save({"config": coder.cfg.to_dict(), "model": coder.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def small_images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("small")
    for i in range(2):
        Image.fromarray(smooth_image(96, 128, seed=i)).save(d / f"img{i}.png")
    return d


def test_table1_end_to_end(tmp_path: Path, small_images: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ms.pt")
    vanilla = _checkpoint(tmp_path / "v.pt", inpaint_kind="vanilla")
    out = tmp_path / "out"
    result = _cli(
        table1_inpainting.main,
        [
            "--data",
            str(small_images),
            "--out",
            str(out),
            "--network",
            f"multiscale={ckpt}",
            "--network",
            f"vanilla={vanilla}",
        ],
    )
    assert result.exit_code == 0, result.output
    table = (out / "table1.md").read_text()
    for text in (
        "0.4574",
        "0.4611",
        "0.4545",
        "0.5165",
        "Navier-Stokes",
        "Criminisi",
        "`multiscale`",
        "`vanilla`",
    ):
        assert text in table
    with (out / "table1.csv").open() as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["pde", "exemplar", "multiscale", "vanilla"]
    for r in rows.values():
        assert int(r["blocks"]) == 2 * 6  # 2 images x (3-1) x (4-1) blocks
        assert -1.0 <= float(r["mean_ssim"]) <= 1.0
    with (out / "table1_blocks.csv").open() as f:
        blocks = list(csv.DictReader(f))
    assert len(blocks) == 12
    mean_pde = np.mean([float(b["pde"]) for b in blocks])
    assert float(rows["pde"]["mean_ssim"]) == pytest.approx(mean_pde, abs=1e-5)

    # Worker processes give the same numbers, in the same order.
    out2 = tmp_path / "out2"
    result = _cli(
        table1_inpainting.main,
        [
            "--data",
            str(small_images),
            "--out",
            str(out2),
            "--methods",
            "pde",
            "--network",
            f"multiscale={ckpt}",
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    with (out2 / "table1_blocks.csv").open() as f:
        parallel = list(csv.DictReader(f))
    keep = ("image", "block_row", "block_col", "pde", "multiscale")
    assert [{k: b[k] for k in keep} for b in parallel] == [{k: b[k] for k in keep} for b in blocks]


def test_table1_network_sees_mid_grey_block(tmp_path: Path) -> None:
    """The network gets the block at 0 (mid-grey) as in training, never the true pixels."""
    inpainter = table1_inpainting.NetworkInpainter(str(_checkpoint(tmp_path / "m.pt")))
    rgb = smooth_image(96, 128)
    ctx = partial_contexts(rgb, np.array([[1, 1]]))
    unit = ctx.transpose(0, 3, 1, 2).astype(np.float32) / 255 - 0.5
    unit[:, :, BLOCK:, BLOCK:] = 0.0
    with torch.no_grad():
        expected = inpainter.net(torch.from_numpy(unit)).numpy()
    got = inpainter(ctx)
    assert got.shape == (1, BLOCK, BLOCK, 3) and got.dtype == np.uint8
    want = np.clip(np.rint((expected[0].transpose(1, 2, 0) + 0.5) * 255), 0, 255)
    assert np.array_equal(got[0], want.astype(np.uint8))
    assert CONTEXT == 2 * BLOCK


def test_table1_refuses_a_checkpoint_without_inpainting(tmp_path: Path, small_images: Path) -> None:
    ckpt = _checkpoint(tmp_path / "none.pt", inpainting="none", connections="residual")
    result = _cli(
        table1_inpainting.main,
        ["--data", str(small_images), "--out", str(tmp_path / "o"), "--network", f"r={ckpt}"],
    )
    assert result.exit_code == 2 and f"--network r={ckpt}" in result.output


@pytest.mark.parametrize(
    ("command", "option", "extra"),
    [(table1_inpainting.main, "--network", []), (rd_variants.main, "--bundle", ["--anchor", "a"])],
)
def test_named_paths_refuse_a_malformed_or_repeated_name(
    command: click.Command, option: str, extra: list[str], tmp_path: Path
) -> None:
    """A usage error (exit 2, one line), before any image or file is read."""
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "o"), *extra]
    for values, message in (
        (["a"], "expected NAME=PATH, got 'a'"),
        (["=x"], "expected NAME=PATH, got '=x'"),
        (["a=x", "a=y"], "name 'a' given twice"),
    ):
        result = _cli(command, base + [arg for v in values for arg in (option, v)])
        assert result.exit_code == 2, result.output
        assert f"Error: Invalid value for '{option}': {message}" in result.output
        assert "Traceback" not in result.output


# ---------------------------------------------------------------- Figures 3(a), 5(a)


def _points(codec: str, rate_factor: float) -> list[RDPoint]:
    bpp = np.array([0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0])
    quality = 0.5 + 0.2 * np.log2(bpp / 0.25)  # grows with log-rate
    return [
        RDPoint("im.png", codec, str(k + 2), 0, float(rate_factor * b), 30.0, float(q), float(q))
        for k, (b, q) in enumerate(zip(bpp, quality))
    ]


def test_savings_are_minus_bd_rate() -> None:
    points = _points("residual", 1.0) + _points("half", 0.5) + _points("same", 1.0)
    rows = {(r.bundle, r.metric): r for r in rd_variants.savings(points, "residual", None)}
    for metric in ("SSIM", "MS-SSIM"):
        assert rows[("half", metric)].per_image_mean == pytest.approx(50.0)
        assert rows[("half", metric)].on_average_curve == pytest.approx(50.0)
        assert rows[("same", metric)].per_image_mean == 0.0
        assert rows[("residual", metric)].n_images == 1
    with pytest.raises(ValueError, match="anchor"):
        rd_variants.savings(points, "nope", None)


def test_paper_rows_by_bundle_name() -> None:
    assert rd_variants.paper_row("fig3a", "Full").ms_ssim == pytest.approx(7.652)
    assert rd_variants.paper_row("fig5a", "ir2i").ssim == pytest.approx(63.353)
    assert rd_variants.paper_row("fig5a", "sep-inp").ms_ssim == pytest.approx(27.794)
    assert rd_variants.paper_row("fig3a", "ir2i") is None


def test_rd_variants_end_to_end(tmp_path: Path, tiny_bundle: str, other_bundle: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):  # > 160 pixels a side, so MS-SSIM is defined
        Image.fromarray(smooth_image(168, 176, seed=10 + i)).save(data / f"im{i}.png")
    out = tmp_path / "out"
    result = _cli(
        rd_variants.main,
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--anchor",
            "residual",
            "--bundle",
            f"residual={tiny_bundle}",
            "--bundle",
            f"decoding={tiny_bundle}",
            "--bundle",
            f"full={other_bundle}",
        ],
    )
    assert result.exit_code == 0, result.output
    with (out / "rd_points.csv").open() as f:
        points = list(csv.DictReader(f))
    assert len(points) == 2 * 3 * 7  # images x bundles x stage counts 2..8
    assert {p["setting"] for p in points} == {str(s) for s in range(2, 9)}
    assert all(np.isfinite(float(p["ms_ssim"])) for p in points)
    with (out / "rd_variants.csv").open() as f:
        rows = {(r["bundle"], r["metric"]): r for r in csv.DictReader(f)}
    for metric in ("SSIM", "MS-SSIM"):  # the same bundle against itself saves nothing
        assert float(rows[("decoding", metric)]["savings_per_image_mean"]) == 0.0
        assert float(rows[("decoding", metric)]["savings_average_curve"]) == 0.0
        assert int(rows[("decoding", metric)]["n_images"]) == 2
    table = (out / "rd_variants_fig3a.md").read_text()
    assert "| decoding = R2I Decoding | 0.00 | 0.00 | 0.00 | 0.00 | 2/2 | 20.00 | 17.95 |" in table
    assert "full = R2I Full" in table and "10.02" in table
    assert (out / "rd_variants.png").is_file()

    # The other paper table from the same measurements, without encoding again.
    result = _cli(
        rd_variants.main,
        [
            "--out",
            str(out),
            "--anchor",
            "residual",
            "--report-only",
            "--paper-table",
            "fig5a",
            "--data",
            str(data),
            "--points-at-rate",
            str(tmp_path / "raw.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    # Table 2's input: the same points at the raw rate, readable by the benchmark's --keep
    raw = read_rd_csv(tmp_path / "raw.csv")
    assert len(raw) == len(points)
    assert {round(p.bpp, 6) for p in raw if p.setting == "2"} == {
        round(2 * 128 * 36 / (168 * 176), 6)
    }
    table5 = (out / "rd_variants_fig5a.md").read_text()
    assert "Figure 5(a)" in table5 and "R2I Full" not in table5
    assert "raw code bits" in table5
    # raw rates: 168x176 pixels on a 6x6 grid of 32x32 blocks, 128 bits per block and stage
    assert rd_variants.raw_bpp(2, 168, 176) == 2 * 128 * 36 / (168 * 176)
    assert "| residual | 2 | 0.3117 |" in table5  # the average curves at raw rates
    # raw rates need the images' sizes
    result = _cli(rd_variants.main, ["--out", str(out), "--anchor", "residual", "--report-only"])
    assert result.exit_code == 2 and "--rate raw needs --data" in result.output
    result = _cli(
        rd_variants.main,
        ["--out", str(out), "--anchor", "residual", "--report-only", "--rate", "file"],
    )
    assert result.exit_code == 0, result.output
    assert "whole .ir2i file" in (out / "rd_variants_fig3a.md").read_text()

    # Worker processes measure the same points, in the same order.
    out2 = tmp_path / "out2"
    result = _cli(
        rd_variants.main,
        [
            "--data",
            str(data),
            "--out",
            str(out2),
            "--anchor",
            "residual",
            "--bundle",
            f"residual={tiny_bundle}",
            "--bundle",
            f"full={other_bundle}",
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    with (out2 / "rd_points.csv").open() as f:
        parallel = list(csv.DictReader(f))
    assert parallel == [p for p in points if p["codec"] != "decoding"]


def test_rd_variants_rejects_unknown_anchor(tmp_path: Path, tiny_bundle: str) -> None:
    result = _cli(
        rd_variants.main,
        [
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--anchor",
            "residual",
            "--bundle",
            f"ir2i={tiny_bundle}",
        ],
    )
    assert result.exit_code == 2
    assert "--anchor 'residual' is not one of the --bundle names" in result.output


# ---------------------------------------------------------------- budgets


def test_budgets_read_back_a_real_training_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    from experiments import budgets

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(smooth_image(96, 128, seed=i)).save(photos / f"p{i}.png")
    run = tmp_path / "noinp"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ir2icodec.training.train",
            "--data",
            str(photos),
            "--out",
            str(run),
            "--steps",
            "3",
            "--batch",
            "2",
            "--widths",
            "4,8,8",
            "--holdout-percent",
            "25",
            "--val-every",
            "2",
            "--threads",
            "1",
            "--inpainting",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    b = budgets.read_budget(run)
    assert (b.steps, b.batch, b.processes, b.selected_by) == (3, 2, 1, "mean_psnr")
    assert b.selected_step in (2, 3) and b.seconds > 0 and b.samples_per_second > 0
    assert np.isnan(b.inpaint_psnr) and b.last_stage_psnr > 0
    out = tmp_path / "budgets.md"
    result = _cli(budgets.main, [str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| noinp | 3 | 2 x 1 |" in result.output  # printed as well as written
    assert "| noinp | 3 | 2 x 1 |" in out.read_text()


def test_learning_curves_read_every_run_and_keep_the_last_of_a_resumed_count(tmp_path: Path):
    from click.testing import CliRunner

    from experiments import learning_curves

    runs = []
    for name, gain in (("residual", 1.0), ("decoding", 2.0)):
        run = tmp_path / name
        run.mkdir()
        entries = [
            {"step": 0, "windows": 0, "mean_psnr": 10.0, "mean_msssim": 0.2},
            {"step": 10, "windows": 320, "loss": 0.1},  # a training entry: skipped
            {"step": 10, "windows": 320, "mean_psnr": 11.0, "mean_msssim": 0.3},
            {"step": 10, "windows": 320, "mean_psnr": 12.0, "mean_msssim": 0.4},  # resumed
            {"step": 20, "windows": 640, "mean_psnr": 12.0 + gain, "mean_msssim": 0.5},
        ]
        (run / "log.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
        runs.append(str(run))
    out, table = tmp_path / "curves.png", tmp_path / "curves.csv"
    result = CliRunner().invoke(
        learning_curves.main, [*runs, "--out", str(out), "--csv", str(table)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    rows = list(csv.DictReader(table.open()))
    assert [(r["run"], r["windows"], r["mean_psnr"]) for r in rows] == [
        ("residual", "0", "10.0"),
        ("residual", "320", "12.0"),
        ("residual", "640", "13.0"),
        ("decoding", "0", "10.0"),
        ("decoding", "320", "12.0"),
        ("decoding", "640", "14.0"),
    ]
    assert "decoding: 640 windows, PSNR 14.00 dB" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "log.jsonl").write_text('{"step": 1, "loss": 0.2}\n')
    result = CliRunner().invoke(learning_curves.main, [str(empty), "--out", str(out)])
    assert result.exit_code != 0 and "no validation entries" in result.output


def test_learning_curves_put_inpainting_runs_in_their_own_panel(tmp_path: Path):
    """A run without stages (inpainting only) has no coder curve; runs that train an
    inpainting network (config: joint) get the third panel; a seed suffix keeps the
    variant's colour."""
    from experiments import learning_curves

    def run(name: str, stages: int, inpainting: str, msssim: float) -> Path:
        path = tmp_path / name
        path.mkdir()
        entries = [
            {"windows": w, "mean_psnr": 20 + w / 1e4, "mean_msssim": msssim, "inpaint_psnr": 15}
            for w in (0, 1000, 2000)
        ]
        (path / "log.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
        config = {"model": {"stages": stages, "inpainting": inpainting}}
        (path / "config.json").write_text(json.dumps(config))
        return path

    alone = learning_curves.read_curve(run("inpaint-only-s1", 0, "joint", math.nan))
    joint = learning_curves.read_curve(run("ir2i", 8, "joint", 0.8))
    plain = learning_curves.read_curve(run("residual", 8, "none", 0.8))
    assert (alone.coder, alone.trains_inpainting) == (False, True)
    assert (joint.coder, joint.trains_inpainting) == (True, True)
    assert (plain.coder, plain.trains_inpainting) == (True, False)
    assert (alone.variant, alone.seed, joint.variant, joint.seed) == ("inpaint-only", 1, "ir2i", 0)
    assert [learning_curves.line_style(c, 2000) for c in (joint, alone)] == ["-", "--"]
    assert learning_curves.line_style(joint, 8000) == ":"  # a shorter budget than the longest
    out = tmp_path / "curves.png"
    learning_curves.plot([alone, joint, plain], out)
    from PIL import Image

    with Image.open(out) as figure:  # three panels side by side: wider than two
        three = figure.width
    learning_curves.plot([plain], out)  # no run trains an inpainting network: two panels
    with Image.open(out) as figure:
        assert three > figure.width * 1.3


def test_train_variants_trains_the_named_models_in_order_with_the_launcher(tmp_path: Path):
    """`train_variants.sh train NAME...`: only those models, in that order, each with its own
    flags and the shared ones; LAUNCH replaces `python` (here `echo`, so nothing trains);
    TRAIN_ARGS naming --pack drops --data."""
    import os
    import subprocess

    script = Path(__file__).resolve().parent.parent / "experiments" / "train_variants.sh"
    env = {**os.environ, "LAUNCH": "echo", "STEPS": "7", "RUNS": str(tmp_path / "runs")}
    r = subprocess.run(
        ["bash", str(script), "train", "decoding", "ir2i-wide", "residual"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    commands = [line for line in r.stdout.splitlines() if line.startswith("-m ")]
    assert [c.split("--out ")[1].split()[0] for c in commands] == [
        str(tmp_path / "runs" / n) for n in ("decoding", "ir2i-wide", "residual")
    ]
    assert "--connections decoding --inpainting none" in commands[0]
    assert "--filters-per-dilation 24" in commands[1] and "--inpainting joint" in commands[1]
    assert all("--data " in c and "--steps 7" in c and "--resume" in c for c in commands)
    packed = subprocess.run(
        ["bash", str(script), "train", "full"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "TRAIN_ARGS": "--pack x.npz --threads 1"},
    )
    line = next(x for x in packed.stdout.splitlines() if x.startswith("-m "))
    assert "--pack x.npz --threads 1" in line and "--data " not in line
    unknown = subprocess.run(
        ["bash", str(script), "train", "nonsense"], capture_output=True, text=True, env=env
    )
    assert unknown.returncode == 2 and "unknown model nonsense" in unknown.stderr


def test_rdoq_bits_follow_the_signs_or_the_bit_model() -> None:
    from experiments.rdoq_proxy import decide_bits

    gen = torch.Generator().manual_seed(0)
    values = torch.rand(5, 8, 4, 4, generator=gen) * 2 - 1
    p_one = torch.full((8 * 81,), 0.9, dtype=torch.float64)  # every context predicts 1
    bits, cost = decide_bits(values, None, p_one, threshold=0.0, scaled=False)
    assert torch.equal(bits, (values >= 0).long())  # no margin: the plain signs
    ones = bits.flatten(1).sum(1).double()
    expected = -(ones * np.log2(0.9) + (128 - ones) * np.log2(0.1))
    assert torch.allclose(cost, expected)
    near = values.abs() < 0.3
    bits, _ = decide_bits(values, bits, p_one, threshold=0.3, scaled=False)
    assert torch.equal(bits[near], torch.ones_like(bits[near]))  # flipped to the prediction
    assert torch.equal(bits[~near], (values[~near] >= 0).long())  # the rest kept


def test_allocator_ab_times_both_settings_in_fresh_processes(tmp_path):
    """experiments.allocator_ab: one round decodes a small file of the default model with
    each allocator setting and tabulates three positive medians per setting."""
    import ir2icodec
    from experiments import allocator_ab

    rgb = (np.arange(64 * 64 * 3) % 251).astype(np.uint8).reshape(64, 64, 3)
    file = tmp_path / "small.ir2i"
    file.write_bytes(ir2icodec.encode(rgb, stages=3))
    r = CliRunner().invoke(allocator_ab.main, [str(file), "--rounds", "1"])
    assert r.exit_code == 0, r.output
    rows = [line.split("|")[1:-1] for line in r.output.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == list(allocator_ab.SETTINGS)
    assert all(float(cell) > 0 for row in rows for cell in row[1:])


def test_evaluate_candidate_runs_every_step_for_the_named_run(tmp_path: Path):
    """`evaluate_candidate.sh`: the named run's checkpoint exported under the new name with
    the parent's post-filter, its bit tables, pairs, the parent's filter fine-tuned, the
    held-out bench keeping the parent's rows under its short name; `python` is replaced by
    `echo` (nothing runs). Wrong arguments: the usage and exit 2."""
    import os
    import subprocess

    script = Path(__file__).resolve().parent.parent / "experiments" / "evaluate_candidate.sh"
    home, fake = tmp_path / "home", tmp_path / "bin"
    (home / "ir2i-runs" / "rx").mkdir(parents=True)
    for name in ("log.jsonl", "config.json"):
        (home / "ir2i-runs" / "rx" / name).write_text("{}\n")
    (home / "ir2i-runs" / "pf-rx").mkdir()  # what the filter's training would leave
    (home / "ir2i-runs" / "pf-rx" / "log.jsonl").write_text("{}\n")
    fake.mkdir()
    # echoes its arguments and makes the folder named by --out, as the real commands do
    (fake / "python").write_text(
        '#!/bin/sh\necho "$@"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --out ] && mkdir -p "$2"; shift; done\n'
    )
    (fake / "python").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "PATH": f"{fake}:{os.environ['PATH']}"}
    results = tmp_path / "results"
    args = ["rx", "ir2i-compact-9", "ir2i-compact-8", str(results), "keep.csv", str(tmp_path / "o")]
    r = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    steps = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("-m ")]
    assert "-m experiments.rate_curve" in (results / "rate_curve.txt").read_text()
    assert steps == [
        "ir2icodec",
        "ir2icodec.training.bit_tables",
        "ir2icodec.training.postfilter_pairs",
        "ir2icodec.training.train_postfilter",
        "ir2icodec.bench.rd",
    ]
    out = r.stdout
    assert f"{home}/ir2i-runs/rx/best.pt" in out and "--name ir2i-compact-9" in out
    assert (
        "--postfilter-from models/ir2i-compact-8" in out and "--init models/ir2i-compact-8" in out
    )
    assert "--keep keep.csv --keep-as ir2i=compact-8" in out
    assert (results / "log.jsonl").exists() and (results / "postfilter-log.jsonl").exists()
    again = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env)
    assert "train_postfilter" not in again.stdout  # its marker: done once, skipped after
    wrong = subprocess.run(["bash", str(script), "rx"], capture_output=True, text=True, env=env)
    assert wrong.returncode == 2 and "RUN NAME FROM RESULTS KEEP OUT" in wrong.stderr
