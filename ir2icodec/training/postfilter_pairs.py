"""Decoded training photos for the post-filter: each photo with its reconstruction at every
stage count, made once by the codec (onnxruntime, the shipped model) and kept on disk.

A block's reconstruction after n stages does not depend on how many stages its neighbours
have (the inpainting context is always the stage-2 image), so these uniform reconstructions
also make every rate-controlled picture: a per-block mosaic of them.

``python -m ir2icodec.training.postfilter_pairs --data ../shared/data/train --model
models/ir2i-compact-2 --out PAIRS`` writes ``PAIRS/train/*.npz`` and ``PAIRS/heldout/*.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ..codec import analyse
from ..container import FIRST_CODE_STAGES
from ..runtime import OnnxModel, load_model
from .data import VALIDATION_SCALE, list_images, load_rgb, rescale, split_images

TRAIN_SCALES = (0.6, 1.0)  # Kodak-like detail (1.0) down to the coder's training range


@dataclass(frozen=True)
class DecodedPhoto:
    original: np.ndarray  # (H, W, 3) uint8
    decoded: np.ndarray  # (S - 1, H, W, 3) uint8: row j = what 2 + j stages decode to


def decode_every_stage(rgb: np.ndarray, model: OnnxModel) -> DecodedPhoto:
    """The photo and its decoded pictures at 2..S stages, from one run of every stage."""
    analysis = analyse(rgb, model)
    n = analysis.header.n_blocks
    decoded = np.stack(
        [
            analysis.reconstruction(np.full(n, k, np.uint8))
            for k in range(FIRST_CODE_STAGES, analysis.header.stages + 1)
        ]
    )
    return DecodedPhoto(rgb, decoded)


def save_pair(path: Path, photo: DecodedPhoto) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, original=photo.original, decoded=photo.decoded)
    tmp.replace(path)


def load_pair(path: Path) -> DecodedPhoto:
    with np.load(path) as z:
        return DecodedPhoto(z["original"], z["decoded"])


def write_pairs(
    files: list[Path], model: OnnxModel, out: Path, scales: tuple[float, float], seed: int
) -> int:
    """Decode each photo (rescaled by a factor drawn from ``scales``) into ``out``; photos
    already there are kept, so an interrupted run continues."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    factors = rng.uniform(*scales, size=len(files))  # drawn up front: stable when resumed
    written = 0
    for path, factor in zip(tqdm(files, desc=out.name, unit="photo"), factors):
        target = out / f"{path.parent.name}-{path.stem}.npz"
        if target.exists():
            continue
        save_pair(target, decode_every_stage(rescale(load_rgb(path), float(factor)), model))
        written += 1
    return written


def make_pairs(
    data: list[str],
    model: OnnxModel,
    out: Path,
    *,
    limit: int | None = None,
    holdout_percent: float = 5.0,
    seed: int = 0,
) -> tuple[int, int]:
    """Decode the training photos at random scales into ``out/train`` (``limit``: a random
    subset) and the held-out ones at the validation scale into ``out/heldout``."""
    train, held = split_images(list_images(data), holdout_percent)
    order = np.random.default_rng(seed).permutation(len(train))
    train = [train[i] for i in order[:limit]]
    n_held = write_pairs(held, model, out / "heldout", (VALIDATION_SCALE, VALIDATION_SCALE), seed)
    return write_pairs(train, model, out / "train", TRAIN_SCALES, seed), n_held


@click.command()
@click.option(
    "--data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The training folder(s), as given to train.",
)
@click.option("--model", "model_dir", required=True, help="The bundle whose decoder to filter.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--limit", type=int, default=None, help="At most this many training photos.")
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option("--threads", type=int, default=None, help="onnxruntime workers (default: all).")
@click.option("--seed", type=int, default=0, show_default=True)
def main(
    data: tuple[str, ...],
    model_dir: str,
    out: Path,
    limit: int | None,
    holdout_percent: float,
    threads: int | None,
    seed: int,
) -> None:
    """Decode the training photos at every stage count (train/) and the held-out ones at
    the validation scale (heldout/)."""
    model = load_model(model_dir, device="cpu", threads=threads)
    n_train, n_held = make_pairs(
        list(data), model, out, limit=limit, holdout_percent=holdout_percent, seed=seed
    )
    click.echo(f"{n_train} training and {n_held} held-out photos decoded into {out}")


if __name__ == "__main__":
    main()
