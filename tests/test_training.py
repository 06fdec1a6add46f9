"""Training runs for real: one process, resume, and 2-process DistributedDataParallel (gloo)."""

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

from ir2icodec.training.data import PatchSampler, make_training_pair, split_images
from ir2icodec.training.nets import ProgressiveCoder, make_config
from ir2icodec.training.train import coder_loss

TINY = ["--widths", "4,8,8", "--filters-per-dilation", "1", "--batch", "4",
        "--holdout-percent", "40", "--val-every", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        Image.fromarray(smooth_image(150 + 10 * i, 170, seed=i)).save(d / f"p{i}.png")
    return d


def _train(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "ir2icodec.training.train"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "ir2icodec.training.train"]
    return subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=300)


def test_train_then_resume(tmp_path, photo_dir):
    out = tmp_path / "run"
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 2
    assert (out / "best.pt").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and len(log[-1]["psnr"]) == 8
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "4", "--resume", *TINY])
    assert r.returncode == 0, r.stderr
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 4


def test_two_process_ddp_step(tmp_path, photo_dir):
    out = tmp_path / "ddp"
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "2", *TINY], nproc=2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 2


def test_sampler_windows_and_holdout(photo_dir):
    files = sorted(photo_dir.glob("*.png"))
    train, held = split_images(files, 40.0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(files)
    assert split_images(files, 40.0) == (train, held)  # stable
    blocks, contexts = PatchSampler(train).sample(np.random.default_rng(0), 10)
    assert blocks.shape == (10, 3, 32, 32) and contexts.shape == (10, 3, 64, 64)
    assert np.all(contexts[:, :, 32:, 32:] == 0)
    assert blocks.min() >= -0.5 and blocks.max() <= 0.5


@pytest.mark.parametrize("connections", ["residual", "prediction", "full", "decoding"])
def test_a_few_steps_reduce_the_loss(connections):
    torch.manual_seed(0)
    cfg = make_config("compact", widths=(8, 8, 8), inpaint_filters_per_dilation=1,
                      inpaint_layers=2, connections=connections, stages=3)
    coder = ProgressiveCoder(cfg)
    windows = np.stack([smooth_image(64, 64, seed=i) for i in range(8)])
    blocks, contexts = (torch.from_numpy(a) for a in make_training_pair(windows))
    opt = torch.optim.Adam(coder.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = coder_loss(coder(blocks, contexts), blocks, "l2", joint=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_msssim_loss_runs():
    coder = ProgressiveCoder(make_config("compact", widths=(4, 8, 8), stages=2,
                                         inpaint_filters_per_dilation=1, inpaint_layers=2))
    windows = np.stack([smooth_image(64, 64, seed=i) for i in range(4)])
    blocks, contexts = (torch.from_numpy(a) for a in make_training_pair(windows))
    for kind in ("msssim", "mix"):
        loss = coder_loss(coder(blocks, contexts), blocks, kind, joint=True)
        loss.backward()
        assert torch.isfinite(loss)


def test_inpainting_alone_selects_checkpoints_on_inpainting(tmp_path, photo_dir):
    out = tmp_path / "inp"
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "2", "--stages", "0",
                *TINY])
    assert r.returncode == 0, r.stderr
    log = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert log["psnr"] == [] and log["mean_psnr"] == log["inpaint_psnr"]
    assert (out / "best.pt").exists()
