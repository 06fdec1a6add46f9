"""Training checkpoints on disk: atomic writes, and weights-only copies that travel.

A training checkpoint (``last.pt``, ``best.pt``) holds the model config, weights, step, elapsed
time, best held-out score and the Adam state (twice the weights again). A weights-only copy
drops the optimizer: a third of the size, enough to export, evaluate or warm-start (``--init``)
another run, e.g. what a short GPU run brings back (``experiments/gpu_train.sh``). ``--bf16``
halves it again, for a warm start that must fit a size-limited copy to a GPU machine: ``--init``
casts the tensors back to fp32 (bf16 keeps 8 bits of mantissa: a relative rounding of at most
2^-9 per weight, which the first training steps outweigh).
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


def weights_only(src: str | Path, dst: str | Path, bf16: bool = False) -> dict:
    """Copy ``src`` without its optimizer state to ``dst`` (floating-point weights in bf16 if
    asked); returns what was kept."""
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    kept = {k: ckpt[k] for k in KEPT if k in ckpt}
    if bf16:
        kept["model"] = {
            name: t.to(torch.bfloat16) if t.is_floating_point() else t
            for name, t in kept["model"].items()
        }
    save_atomic(kept, Path(dst))
    return kept


@click.command("weights-only")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--bf16", is_flag=True, help="Store the weights in bf16 (half the size).")
def main(src: str, dst: str, bf16: bool) -> None:
    """Copy checkpoint SRC to DST without the optimizer state."""
    kept = weights_only(src, dst, bf16)
    size = Path(dst).stat().st_size / 2**20
    click.echo(f"{dst}: step {kept.get('step')}, {size:.1f} MiB")


if __name__ == "__main__":
    main()
