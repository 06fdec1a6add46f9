"""The GPU training path, run on CPU: packed photos, windows cut on the device, time-boxed
runs with bf16 autocast, and experiments/gpu_train.sh end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from ir2icodec.training.data import split_images
from ir2icodec.training.pack import DeviceSampler, load_pack
from ir2icodec.training.train import TrainOptions, lr_at, progress

REPO = Path(__file__).resolve().parents[1]
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
]


def test_pack_holds_the_training_photos_downsampled_and_held_out_windows(pack_file, photo_dir):
    train, held = split_images(sorted(photo_dir.glob("*.png")), 40.0)
    pack = load_pack(pack_file)
    assert pack.meta["photos"] == len(pack.photos) == len(train)
    assert pack.meta["held_out_photos"] == len(held)
    assert pack.validation.shape == (4 * len(held), 64, 64, 3)
    assert pack.validation.dtype == np.uint8
    for photo, src in zip(pack.photos, train):
        with Image.open(src) as im:
            scale = photo.shape[1] / im.width
        assert 0.5 - 0.01 <= scale <= 0.75 + 0.01


def _coordinate_photos() -> list[np.ndarray]:
    """Pixels that say where they are: R = column, G = row, B = which photo."""
    photos = []
    for i, (h, w) in enumerate([(70, 90), (100, 64), (64, 200)]):
        rows, cols = np.mgrid[:h, :w]
        photos.append(np.stack([cols, rows, np.full_like(rows, 40 * i)], -1).astype(np.uint8))
    return photos


def _pixels(t: torch.Tensor) -> np.ndarray:
    return np.rint((t.numpy() + 0.5) * 255).astype(int)


def test_device_sampler_cuts_true_windows_and_flips_some():
    photos = _coordinate_photos()
    sampler = DeviceSampler(photos, torch.device("cpu"), edge_probability=0.0)
    gen = torch.Generator().manual_seed(0)
    blocks, contexts = sampler.sample(gen, 64)
    assert blocks.shape == (64, 3, 32, 32) and contexts.shape == (64, 3, 64, 64)
    assert blocks.dtype == contexts.dtype == torch.float32
    assert torch.all(contexts[:, :, 32:, 32:] == 0)
    flips = set()
    for block, context in zip(_pixels(blocks), _pixels(contexts)):
        window = context.copy()
        window[:, 32:, 32:] = block
        photo = photos[window[2, 0, 0] // 40]
        y, step = window[1, 0, 0], window[0, 0, 1] - window[0, 0, 0]
        flips.add(int(step))
        x = window[0, 0, 0] if step == 1 else window[0, 0, -1]
        crop = photo[y : y + 64, x : x + 64].transpose(2, 0, 1)
        np.testing.assert_array_equal(window, crop if step == 1 else crop[:, :, ::-1])
    assert flips == {1, -1}


def test_device_sampler_zeroes_the_missing_context_of_edge_blocks():
    sampler = DeviceSampler(_coordinate_photos(), torch.device("cpu"), edge_probability=1.0)
    _, contexts = sampler.sample(torch.Generator().manual_seed(1), 8)
    assert torch.all(contexts == 0)


def test_device_sampler_refuses_photos_smaller_than_a_window():
    with pytest.raises(ValueError, match="smaller than 64x64"):
        DeviceSampler([np.zeros((40, 100, 3), np.uint8)], torch.device("cpu"))


def test_time_boxed_runs_place_the_lr_drops_by_time():
    opts = TrainOptions(data=[], out="x", steps=0, max_minutes=10, lr=1e-3, lr_drops=(0.5, 0.8))
    assert lr_at(progress(10**6, 4 * 60, opts), opts) == pytest.approx(1e-3)
    assert lr_at(progress(0, 6 * 60, opts), opts) == pytest.approx(1e-4)
    assert lr_at(progress(0, 9 * 60, opts), opts) == pytest.approx(1e-5)
    by_steps = TrainOptions(data=[], out="x", steps=100, lr=1e-3, lr_drops=(0.5,))
    assert lr_at(progress(60, 10**6, by_steps), by_steps) == pytest.approx(1e-4)


def _train(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ir2icodec.training.train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )


def test_pack_run_in_bf16_takes_finite_steps(tmp_path, pack_file):
    out = tmp_path / "bf16"
    r = _train(
        [
            "--pack",
            str(pack_file),
            "--out",
            str(out),
            "--steps",
            "4",
            "--loss",
            "mix",
            "--precision",
            "bf16",
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["bf16_autocast"] is True
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [log["step"] for log in logs] == [0, 2, 4]
    assert logs[-1]["skipped_steps"] == 0 and np.isfinite(logs[-1]["loss"])
    assert logs[-1]["windows"] == 16


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--max-minutes"),
        (["--data", "."], "either --data"),
    ],
)
def test_training_option_errors_are_one_line(tmp_path, pack_file, args, message):
    r = _train(["--pack", str(pack_file), "--out", str(tmp_path / "r"), *args])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert message in r.stderr


def test_gpu_train_script_dry_run_on_cpu(tmp_path, pack_file):
    """The script a GPU machine runs, for a few seconds on CPU: it must leave a weights-only
    checkpoint and a bundle that the codec runs."""
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            "bash",
            str(REPO / "experiments" / "gpu_train.sh"),
            str(pack_file),
            str(out),
            "0.05",
            "dry-run",
            *TINY,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr + (out / "train.out").read_text()[-2000:]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert "optimizer" not in ckpt and ckpt["step"] >= 1
    assert (out / "run" / "last.pt").exists()  # the full checkpoint stays for --resume
    assert json.loads((out / "config.json").read_text())["options"]["steps"] == 0
    manifest = json.loads((out / "bundle" / "model.json").read_text())
    assert manifest["name"] == "dry-run"
    photo = tmp_path / "p.png"
    Image.fromarray(smooth_image(64, 96, seed=3)).save(photo)
    enc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ir2icodec",
            "encode",
            str(photo),
            "-o",
            str(tmp_path / "p.ir2i"),
            "--model",
            str(out / "bundle"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert enc.returncode == 0, enc.stderr


def test_gpu_train_script_without_arguments_shows_usage():
    r = subprocess.run(
        ["bash", str(REPO / "experiments" / "gpu_train.sh")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "usage: experiments/gpu_train.sh" in r.stderr


def test_decoded_contexts_are_the_models_own_stage_2_reconstructions():
    from conftest import tiny_coder

    from ir2icodec.training.decoded_context import WINDOW, decoded_training_pair

    coder = tiny_coder().train()
    windows = torch.from_numpy(smooth_image(WINDOW, WINDOW, seed=5)).permute(2, 0, 1)
    windows = (windows.float() / 255 - 0.5).unsqueeze(0).repeat(2, 1, 1, 1)
    blocks, contexts = decoded_training_pair(coder, windows)
    assert coder.training  # restored after coding the neighbours in eval mode
    assert blocks.shape == (2, 3, 32, 32) and contexts.shape == (2, 3, 64, 64)
    torch.testing.assert_close(blocks, windows[:, :, 64:, 64:])
    assert torch.all(contexts[:, :, 32:, 32:] == 0)
    # The top neighbour, coded from its own 64x64 window as the encoder would.
    own = windows[:, :, 0:64, 32:96]
    own_context = own.clone()
    own_context[:, :, 32:, 32:] = 0
    with torch.no_grad():
        recon = coder.eval()(own[:, :, 32:, 32:].contiguous(), own_context, stages=2)
    expected = torch.round((recon.reconstructions[-1].clamp(-0.5, 0.5) + 0.5) * 255) / 255 - 0.5
    torch.testing.assert_close(contexts[:, :, :32, 32:], expected)
    levels = (contexts[:, :, :32] + 0.5) * 255  # 8-bit values, as the decoder's pixels
    torch.testing.assert_close(levels, torch.round(levels), atol=1e-3, rtol=0)
    assert not torch.allclose(contexts[:, :, :32, :32], windows[:, :, 32:64, 32:64])


def test_decoded_context_run_takes_steps(tmp_path, pack_file):
    out = tmp_path / "decoded"
    r = _train(
        ["--pack", str(pack_file), "--out", str(out), "--steps", "2", "--decoded-context", *TINY]
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["options"]["decoded_context"] is True
    r = _train(["--data", str(tmp_path), "--out", str(tmp_path / "no"), "--decoded-context"])
    assert r.returncode == 2 and "give --pack" in r.stderr


def test_decoded_context_experiment_reports_every_model(tmp_path, photo_dir):
    from conftest import tiny_coder

    ckpt = tmp_path / "tiny.pt"
    coder = tiny_coder()
    torch.save({"config": coder.cfg.to_dict(), "model": coder.state_dict()}, ckpt)
    out = tmp_path / "table.md"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.decoded_context",
            "--checkpoint",
            f"a={ckpt}",
            "--checkpoint",
            f"b={ckpt}",
            "--data",
            str(photo_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = [
        line.split("|")
        for line in out.read_text().splitlines()
        if line.startswith("| a") or line.startswith("| b")
    ]
    assert len(rows) == 2 and rows[0][2:6] == rows[1][2:6]  # same model, same windows
    assert all(5 < float(cell) < 60 for cell in rows[0][2:6])


def test_a_bf16_weights_only_copy_warm_starts_a_run(tmp_path, pack_file):
    """What travels to a GPU machine when space is short: the weights in bf16 (half the fp32
    copy for a real model; pickling overhead weighs more in a tiny one), which --init takes
    with every tensor (none left fresh)."""
    first = tmp_path / "first"
    r = _train(["--pack", str(pack_file), "--out", str(first), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    copies = {}
    for name, flag in (("fp32.pt", []), ("bf16.pt", ["--bf16"])):
        c = subprocess.run(
            [
                sys.executable,
                "-m",
                "ir2icodec.training.checkpoints",
                str(first / "last.pt"),
                str(tmp_path / name),
                *flag,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert c.returncode == 0, c.stderr
        copies[name] = torch.load(tmp_path / name, weights_only=False)
    assert all(
        t.dtype == torch.bfloat16
        for t in copies["bf16.pt"]["model"].values()
        if t.is_floating_point()
    )
    for key, t in copies["fp32.pt"]["model"].items():
        if t.is_floating_point():
            assert torch.equal(
                copies["bf16.pt"]["model"][key].float(), t.to(torch.bfloat16).float()
            )
    assert (tmp_path / "bf16.pt").stat().st_size < 0.65 * (tmp_path / "fp32.pt").stat().st_size
    second = tmp_path / "second"
    r = _train(
        [
            "--pack",
            str(pack_file),
            "--out",
            str(second),
            "--steps",
            "2",
            "--init",
            str(tmp_path / "bf16.pt"),
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr
    assert not json.loads((second / "config.json").read_text())["warm_start_fresh_tensors"]
