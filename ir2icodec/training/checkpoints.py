"""Training checkpoints on disk: atomic writes, and weights-only copies that travel.

A training checkpoint (``last.pt``, ``best.pt``) holds the model config, weights, step, elapsed
time, best held-out score and the Adam state (twice the weights again). A weights-only copy
drops the optimizer: a third of the size, enough to export, evaluate or warm-start (``--init``)
another run, e.g. what a short GPU run brings back (``experiments/gpu_train.sh``).
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import torch

KEPT = ("config", "model", "step", "elapsed", "best")


def save_atomic(obj: dict, path: Path) -> None:
    """Write through a temporary file so a killed run never leaves a torn checkpoint."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def weights_only(src: str | Path, dst: str | Path) -> dict:
    """Copy ``src`` without its optimizer state to ``dst``; returns what was kept."""
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    kept = {k: ckpt[k] for k in KEPT if k in ckpt}
    save_atomic(kept, Path(dst))
    return kept


@click.command("weights-only")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
def main(src: str, dst: str) -> None:
    """Copy checkpoint SRC to DST without the optimizer state."""
    kept = weights_only(src, dst)
    size = Path(dst).stat().st_size / 2**20
    click.echo(f"{dst}: step {kept.get('step')}, {size:.1f} MiB")


if __name__ == "__main__":
    main()
