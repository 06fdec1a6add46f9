"""Shared fixtures: tiny networks built and exported in the test session (no shipped weights)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ir2icodec.runtime import OnnxModel, load_model
from ir2icodec.training.export import export_bundle
from ir2icodec.training.nets import ProgressiveCoder, make_config
from ir2icodec.training.pack import pack_photos


def tiny_coder(seed: int = 0, **overrides) -> ProgressiveCoder:
    torch.manual_seed(seed)
    small = {"widths": (4, 8, 8), "inpaint_layers": 2, "inpaint_filters_per_dilation": 1}
    cfg = make_config("compact", **{**small, **overrides})
    return ProgressiveCoder(cfg).eval()


@pytest.fixture(scope="session")
def tiny_coder_model() -> ProgressiveCoder:
    return tiny_coder()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_coder_model) -> str:
    out = tmp_path_factory.mktemp("tiny-ir2i")
    export_bundle(tiny_coder_model, out, "tiny-ir2i")
    return str(out)


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle) -> OnnxModel:
    return load_model(tiny_bundle, device="cpu")


@pytest.fixture(scope="session")
def tables_bundle(tmp_path_factory, tiny_bundle, photo_dir) -> str:
    """``tiny_bundle`` with bit tables counted on ``photo_dir`` (it writes format version 3),
    made by the real command."""
    out = tmp_path_factory.mktemp("tables") / "tiny-ir2i"
    shutil.copytree(tiny_bundle, out)
    subprocess.run(
        [sys.executable, "-m", "ir2icodec.training.bit_tables", "--model", str(out)]
        + ["--data", str(photo_dir), "--photos", "4", "--holdout-percent", "40", "--weight", "64"],
        check=True,
        capture_output=True,
    )
    return str(out)


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("other-ir2i")
    export_bundle(tiny_coder(seed=1), out, "other-ir2i")
    return str(out)


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like test picture: smooth gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 60 * np.sin(x / 17 + c) * np.cos(y / 23 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Eight small photos; a 40% hold-out (by file-name hash) keeps p7 for training and
    holds the other seven out."""
    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        Image.fromarray(smooth_image(150 + 10 * i, 170, seed=i)).save(d / f"p{i}.png")
    return d


@pytest.fixture(scope="session")
def pack_file(tmp_path_factory, photo_dir) -> Path:
    """``photo_dir`` packed for training (python -m ir2icodec.training.pack)."""
    out = tmp_path_factory.mktemp("pack") / "train.npz"
    pack_photos([str(photo_dir)], out, holdout_percent=40)
    return out
