"""Packed training data: the training photos downsampled once, stored as JPEG bytes in one
``.npz``, small enough to travel with the source tree to a GPU machine (about 40 MiB for the
1,327 training photos of ``../shared/data/train``), and a sampler that cuts the 64x64 windows
on the training device itself.

``PatchSampler`` (``data.py``) resizes a photo for every 8 windows; on a GPU that host-side
work would starve the networks. Here every photo is downsampled once, at its own scale drawn
from the same range the CPU sampler uses, and decoded into one flat uint8 tensor on the
device; a batch of windows is a single gather. The held-out photos are not packed: their fixed
validation windows are, so checkpoint selection is the same as with ``--data``.

Build: ``python -m ir2icodec.training.pack --data ../shared/data/train --out .gpu/train.npz``
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .data import list_images, load_rgb, rescale, split_images, validation_windows
from .nets import BLOCK, CONTEXT

PACK_VERSION = 1


def pack_photos(
    roots: list[str],
    out: str | Path,
    holdout_percent: float = 5.0,
    scale_range: tuple[float, float] = (0.5, 0.75),
    quality: int = 90,
    seed: int = 0,
) -> dict:
    """Write the pack; returns its metadata. 4:4:4 JPEG so colour edges stay sharp."""
    train_files, held_files = split_images(list_images(roots), holdout_percent)
    if not train_files or not held_files:
        raise click.ClickException(
            "the pack needs both training and held-out photos; change --holdout-percent"
        )
    rng = np.random.default_rng(seed)
    chunks, sizes = [], []
    for f in tqdm(train_files, desc="packing", mininterval=5.0):
        img = rescale(load_rgb(f), float(rng.uniform(*scale_range)))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling=0)
        chunks.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
        sizes.append(len(chunks[-1]))
    meta = {
        "pack_version": PACK_VERSION,
        "photos": len(train_files),
        "held_out_photos": len(held_files),
        "holdout_percent": holdout_percent,
        "scale_range": list(scale_range),
        "jpeg_quality": quality,
        "seed": seed,
        "roots": [str(r) for r in roots],
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(
        tmp,
        jpeg=np.concatenate(chunks),
        offsets=np.cumsum([0, *sizes]),
        validation=validation_windows(held_files),
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    tmp.replace(out)
    return meta


@dataclass(frozen=True)
class Pack:
    photos: list[np.ndarray]  # uint8 HxWx3, already downsampled
    validation: np.ndarray  # uint8 Nx64x64x3 windows of held-out photos
    meta: dict


def load_pack(path: str | Path) -> Pack:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        if meta.get("pack_version") != PACK_VERSION:
            raise click.ClickException(
                f"{path}: pack version {meta.get('pack_version')}, "
                f"this trainer reads {PACK_VERSION}; rebuild it"
            )
        jpeg, offsets = z["jpeg"], z["offsets"]
        photos = []
        for a, b in zip(offsets[:-1], offsets[1:]):
            with Image.open(io.BytesIO(jpeg[a:b].tobytes())) as im:
                photos.append(np.asarray(im.convert("RGB")))
        return Pack(photos, z["validation"], meta)


class DeviceSampler:
    """Random 64x64 windows (block bottom-right, context around it) cut on the device.

    Same distribution as ``PatchSampler`` given the packed photos: a photo uniformly, a
    position uniformly, a horizontal flip half the time, and the top or left context zeroed
    with ``edge_probability`` (blocks on the image's first row or column have none).
    """

    def __init__(
        self, photos: list[np.ndarray], device: torch.device, edge_probability: float = 0.1
    ):
        small = [p.shape for p in photos if p.shape[0] < CONTEXT or p.shape[1] < CONTEXT]
        if small:
            raise ValueError(f"photos smaller than {CONTEXT}x{CONTEXT}: {small[:3]}")
        self.device = device
        self.edge_probability = edge_probability
        self.pixels = torch.from_numpy(np.concatenate([p.reshape(-1) for p in photos])).to(device)
        sizes = [p.size for p in photos]
        self.starts = torch.tensor(np.cumsum([0, *sizes[:-1]]), device=device)
        self.heights = torch.tensor([p.shape[0] for p in photos], device=device)
        self.widths = torch.tensor([p.shape[1] for p in photos], device=device)
        self.min_side = min(min(p.shape[:2]) for p in photos)  # checked here, not per batch
        self._channels = torch.arange(3, device=device)

    def windows(self, gen: torch.Generator, batch: int, size: int = CONTEXT) -> torch.Tensor:
        """Random size x size crops (half of them flipped), float32 NCHW in [-0.5, 0.5]."""
        if size > self.min_side:
            raise ValueError(f"a packed photo is smaller than {size}x{size}")
        dev = self.device

        def uniform() -> torch.Tensor:
            return torch.rand(batch, device=dev, generator=gen)

        photo = torch.randint(len(self.heights), (batch,), device=dev, generator=gen)
        h, w = self.heights[photo], self.widths[photo]
        y = (uniform() * (h - size + 1)).long().minimum(h - size)
        x = (uniform() * (w - size + 1)).long().minimum(w - size)
        span = torch.arange(size, device=dev)
        rows, cols = span.view(1, -1, 1), span.view(1, 1, -1)
        flip = (uniform() < 0.5).view(-1, 1, 1)
        cols = torch.where(flip, size - 1 - cols, cols)
        pos = (y.view(-1, 1, 1) + rows) * w.view(-1, 1, 1) + x.view(-1, 1, 1) + cols
        flat = self.starts[photo].view(-1, 1, 1, 1) + 3 * pos.unsqueeze(-1) + self._channels
        return self.pixels[flat].permute(0, 3, 1, 2).float() / 255.0 - 0.5

    def sample(self, gen: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(blocks, contexts) as float32 NCHW on the device: (B,3,32,32), (B,3,64,64)."""
        blocks, contexts = split_windows(self.windows(gen, batch))
        return blocks, drop_edges(contexts, gen, self.edge_probability)


def split_windows(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """64x64 windows -> (bottom-right 32x32 blocks, windows with that block zeroed); the
    torch twin of ``data.make_training_pair``. Overwrites ``windows``."""
    blocks = windows[:, :, CONTEXT - BLOCK :, CONTEXT - BLOCK :].contiguous()
    windows[:, :, CONTEXT - BLOCK :, CONTEXT - BLOCK :] = 0.0
    return blocks, windows


def drop_edges(contexts: torch.Tensor, gen: torch.Generator, probability: float) -> torch.Tensor:
    """Zero the top or the left context with ``probability`` each (in place), as for blocks on
    the image's first block row or column, which have none."""
    n, dev = contexts.shape[0], contexts.device
    keep_top = (torch.rand(n, device=dev, generator=gen) >= probability).view(-1, 1, 1, 1)
    keep_left = (torch.rand(n, device=dev, generator=gen) >= probability).view(-1, 1, 1, 1)
    contexts[:, :, : CONTEXT - BLOCK] *= keep_top
    contexts[:, :, :, : CONTEXT - BLOCK] *= keep_left
    return contexts


@click.command("pack")
@click.option(
    "--data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder(s) of training photos (the held-out ones are left out).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz to write.")
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option("--quality", type=click.IntRange(50, 100), default=90, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def main(data: tuple[str, ...], out: str, holdout_percent: float, quality: int, seed: int) -> None:
    """Pack the training photos (downsampled once, JPEG) for training on another machine."""
    meta = pack_photos(list(data), out, holdout_percent, quality=quality, seed=seed)
    size = Path(out).stat().st_size / 2**20
    click.echo(
        f"packed {meta['photos']} photos (+ validation windows of "
        f"{meta['held_out_photos']} held-out) into {out}: {size:.1f} MiB"
    )


if __name__ == "__main__":
    main()
