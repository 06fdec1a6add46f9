"""Inpainting from original versus decoded context, per model (issue 11's experiment).

    python -m experiments.decoded_context --checkpoint original=runs/a/last.pt \
        --checkpoint decoded=runs/b/last.pt --data heldout --out results/decoded-context.md

For fixed 96x96 windows of held-out photos, the bottom-right block's inpainting PSNR and its
2-stage reconstruction PSNR, with the 64x64 context (a) as original pixels, as training
sees it by default, and (b) as the model's own stage-2 reconstructions of the three
neighbouring blocks, as the codec sees it (``ir2icodec.training.decoded_context``).
The whole-codec comparison is ``ir2icodec.bench.rd`` on the exported bundles
(docs/decoded-context.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np
import torch

from ir2icodec.imageio import load_rgb
from ir2icodec.training.decoded_context import WINDOW, decoded_training_pair
from ir2icodec.training.export import load_checkpoint
from ir2icodec.training.nets import BLOCK, CONTEXT

from .common import images_in


def held_out_windows(data: Path, per_image: int = 4, seed: int = 1234) -> torch.Tensor:
    """Fixed 96x96 windows, (N,3,96,96) in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    windows = []
    for path in images_in(data, None)[0]:
        img = load_rgb(path)
        h, w = img.shape[:2]
        if min(h, w) < WINDOW:
            continue
        for _ in range(per_image):
            y, x = int(rng.integers(h - WINDOW + 1)), int(rng.integers(w - WINDOW + 1))
            windows.append(img[y : y + WINDOW, x : x + WINDOW])
    return torch.from_numpy(np.stack(windows)).permute(0, 3, 1, 2).float() / 255 - 0.5


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / max(float(((a - b) ** 2).mean()), 1e-12))


@torch.no_grad()
def scores(checkpoint: str, windows: torch.Tensor) -> dict[str, float]:
    coder = load_checkpoint(checkpoint)
    blocks = windows[:, :, CONTEXT:, CONTEXT:]
    original = windows[:, :, BLOCK:, BLOCK:].clone()
    original[:, :, BLOCK:, BLOCK:] = 0
    _, decoded = decoded_training_pair(coder, windows)
    out = {}
    for name, context in (("original", original), ("decoded", decoded)):
        result = coder(blocks, context, stages=2)
        out[f"inpaint_{name}"] = _psnr(result.inpainting.clamp(-0.5, 0.5), blocks)
        out[f"stage2_{name}"] = _psnr(result.reconstructions[-1].clamp(-0.5, 0.5), blocks)
    return out


@click.command()
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    required=True,
    help="NAME=PATH of a training checkpoint; repeat.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Held-out photos (python -m ir2icodec.training.holdout).",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None)
def main(checkpoints: tuple[str, ...], data: str, out: str | None) -> None:
    """Inpainting and 2-stage PSNR of the last block of 96x96 windows, per context kind."""
    torch.manual_seed(0)
    windows = held_out_windows(Path(data))
    lines = [
        f"{len(windows)} windows of 96x96 from {data}; PSNR (dB) of the bottom-right block.",
        "",
        "| model | inpainting, original context | inpainting, decoded context | "
        "2 stages, original context | 2 stages, decoded context |",
        "|---|---:|---:|---:|---:|",
    ]
    for item in checkpoints:
        name, sep, path = item.partition("=")
        if not sep:
            raise click.UsageError(f"--checkpoint wants NAME=PATH, got {item!r}")
        s = scores(path, windows)
        lines.append(
            f"| {name} | {s['inpaint_original']:.2f} | {s['inpaint_decoded']:.2f} | "
            f"{s['stage2_original']:.2f} | {s['stage2_decoded']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    click.echo(text)
    if out:
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
