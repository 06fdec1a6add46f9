"""Train a model's post-filter on its own decoded training photos, and put it in the bundle.

The codec's networks are frozen: the filter learns from pairs (decoded picture, original)
that ``postfilter_pairs`` made with the bundle's ONNX graphs, at every stage count, and from
per-block mosaics of them (what rate-controlled files decode to). The loss is the codec's
MS-SSIM/L2 mix; the checkpoint kept is the one best on the held-out photos' pairs.

One command does everything for a bundle (decodes the photos first if PAIRS is empty):

    python -m ir2icodec.training.train_postfilter --data ../shared/data/train \\
        --model models/ir2i-compact-2 --pairs PAIRS --out RUN --minutes 60 --bundle \\
        models/ir2i-compact-2
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim

from ..container import FIRST_CODE_STAGES
from ..metrics import MS_SSIM_MIN_SIDE
from ..postfilter import guide
from .checkpoints import save_atomic
from .export import export_postfilter
from .int8_filter import Int8PostFilter, Ranges, activation_ranges
from .nets import BLOCK, PostFilter, PostFilterConfig, grown_postfilter, shrunk_postfilter
from .postfilter_pairs import DecodedPhoto, load_pair
from .recover import postfilter_from_bundle

CROP = 192  # MS-SSIM's five scales need at least MS_SSIM_MIN_SIDE (161) pixels
UNIFORM_SHARE = 0.4  # the rest of the crops get a per-block mosaic of stage counts
CALIBRATION_BATCHES = 32  # of --batch training crops: the int8 grids' ranges (--int8)


def mix_loss(filtered: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The codec's distortion: 0.5 (1 - MS-SSIM) + 0.5 * 50 * MSE, pixels in [-0.5, 0.5]."""
    d = 1 - ms_ssim(filtered.clamp(-0.5, 0.5) + 0.5, original + 0.5, data_range=1.0)
    return 0.5 * d + 0.5 * 50 * F.mse_loss(filtered, original)


def mse_loss(filtered: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Squared error alone (a PSNR-tuned model's filter), on the mix's scale (x 50)."""
    return 50 * F.mse_loss(filtered, original)


# The filter's loss follows its model's tune: the mix for MS-SSIM, squared error for PSNR.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mix": mix_loss,
    "mse": mse_loss,
}


def random_stage_map(rng: np.random.Generator, shape: tuple[int, int], top: int) -> np.ndarray:
    """Uniform stage counts, or a mosaic spread around a random level (rate control)."""
    level = int(rng.integers(FIRST_CODE_STAGES, top + 1))
    if rng.random() < UNIFORM_SHARE:
        return np.full(shape, level, np.int64)
    spread = rng.integers(-2, 3, size=shape)
    return np.clip(level + spread, FIRST_CODE_STAGES, top)


def mosaic(photo: DecodedPhoto, stage_map: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The decoded pixels of a crop when block (i, j) has ``stage_map[i, j]`` stages."""
    y = np.arange(rows.start, rows.stop) // BLOCK
    x = np.arange(cols.start, cols.stop) // BLOCK
    which = stage_map[y][:, x] - FIRST_CODE_STAGES
    stack = photo.decoded[:, rows, cols]
    return np.take_along_axis(stack, which[None, :, :, None], 0)[0]


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (N, 3, H, W) float in [-0.5, 0.5]."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).float() / 255.0 - 0.5
    return t.reshape(-1, *t.shape[-3:]).permute(0, 3, 1, 2).contiguous()


@dataclass
class CropSampler:
    photos: list[DecodedPhoto]
    crop: int = CROP

    def __post_init__(self) -> None:
        self.photos = [p for p in self.photos if min(p.original.shape[:2]) >= self.crop]
        if not self.photos:
            raise ValueError(f"no decoded photo is at least {self.crop} pixels on each side")

    def sample(
        self, rng: np.random.Generator, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoded, guide, original) crops at even offsets (the filter's 2x2 grouping stays
        aligned with the block grid, as on whole pictures)."""
        decoded, guides, originals = [], [], []
        for _ in range(batch):
            photo = self.photos[int(rng.integers(len(self.photos)))]
            h, w = photo.original.shape[:2]
            top = photo.decoded.shape[0] + FIRST_CODE_STAGES - 1
            stage_map = random_stage_map(rng, (-(-h // BLOCK), -(-w // BLOCK)), top)
            y0 = 2 * int(rng.integers((h - self.crop) // 2 + 1))
            x0 = 2 * int(rng.integers((w - self.crop) // 2 + 1))
            rows, cols = slice(y0, y0 + self.crop), slice(x0, x0 + self.crop)
            decoded.append(mosaic(photo, stage_map, rows, cols))
            originals.append(photo.original[rows, cols])
            guides.append(guide(stage_map, BLOCK, top, (y0, y0 + self.crop), (x0, x0 + self.crop)))
        return (
            to_tensor(np.stack(decoded)),
            torch.from_numpy(np.concatenate(guides)),
            to_tensor(np.stack(originals)),
        )


def _quantised(t: torch.Tensor) -> torch.Tensor:
    """What the decoder writes: 8-bit pixels."""
    return torch.round((t.clamp(-0.5, 0.5) + 0.5) * 255.0) / 255.0


@torch.no_grad()
def validate(net: torch.nn.Module, photos: list[DecodedPhoto], loss: str = "mix") -> dict:
    """Per stage count, over whole held-out pictures (8-bit, as decoded): PSNR and MS-SSIM
    without and with the filter (a ``PostFilter`` or its ``Int8PostFilter``), and the
    training loss with it (the selection score)."""
    net.eval()
    photos = [p for p in photos if min(p.original.shape[:2]) >= MS_SSIM_MIN_SIDE]
    if not photos:
        raise ValueError(f"no held-out photo is at least {MS_SSIM_MIN_SIDE} pixels on each side")
    top = photos[0].decoded.shape[0] + FIRST_CODE_STAGES - 1
    rows = {k: np.zeros(5) for k in range(FIRST_CODE_STAGES, top + 1)}
    for photo in photos:
        h, w = photo.original.shape[:2]
        he, we = h // 2 * 2, w // 2 * 2  # validation crops to even sizes
        original = to_tensor(photo.original[:he, :we])
        for k in rows:
            decoded = to_tensor(photo.decoded[k - FIRST_CODE_STAGES, :he, :we])
            stage_map = np.full((-(-h // BLOCK), -(-w // BLOCK)), k)
            g = torch.from_numpy(guide(stage_map, BLOCK, top, (0, he), (0, we)))
            filtered = net(decoded, g)
            ref = original + 0.5
            raw_q, filt_q = decoded + 0.5, _quantised(filtered)
            rows[k] += [
                10 * math.log10(1 / F.mse_loss(raw_q, ref).item()),
                10 * math.log10(1 / F.mse_loss(filt_q, ref).item()),
                ms_ssim(raw_q, ref, data_range=1.0).item(),
                ms_ssim(filt_q, ref, data_range=1.0).item(),
                LOSSES[loss](filtered, original).item(),
            ]
    net.train()
    per_stage = {k: (v / len(photos)).tolist() for k, v in rows.items()}
    return {
        "psnr": {k: v[:2] for k, v in per_stage.items()},
        "msssim": {k: v[2:4] for k, v in per_stage.items()},
        "gain_psnr": float(np.mean([v[1] - v[0] for v in per_stage.values()])),
        "gain_msssim": float(np.mean([v[3] - v[2] for v in per_stage.values()])),
        "score": float(np.mean([v[4] for v in per_stage.values()])),
    }


def load_pairs(folder: Path, limit: int | None = None) -> list[DecodedPhoto]:
    files = sorted(folder.glob("*.npz"))[:limit]
    if not files:
        raise FileNotFoundError(f"no decoded pairs in {folder}")
    return [load_pair(f) for f in files]


def lr_at(fraction: float, lr: float) -> float:
    """Cosine from ``lr`` to a twentieth of it over the run."""
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0))))


def train_postfilter(
    pairs: Path,
    out: Path,
    *,
    cfg: PostFilterConfig,
    minutes: float,
    batch: int,
    lr: float,
    threads: int | None,
    seed: int,
    val_every: int,
    checkpoint_minutes: float,
    val_photos: int | None,
    resume: bool,
    init: Path | None = None,
    grow: bool = False,
    loss: str = "mix",
    shrink: bool = False,
    int8: bool = False,
) -> Path:
    """Train until ``minutes`` of training have passed (counted across resumes); returns the
    best checkpoint's path. ``init`` (another filter's checkpoint, or a bundle whose filter
    to start from) sets the weights and, in place of ``cfg``, the shape; with ``grow``, it
    is grown into ``cfg``'s shape instead (``grown_postfilter``); with ``shrink``, cut to
    ``cfg``'s width, its most used channels kept (``shrunk_postfilter``). ``loss``: a key
    of ``LOSSES``. With ``int8``, the filter is trained and scored as its int8 graph will
    run it (``int8_filter``), on grids fixed from training crops at the start."""
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sampler = CropSampler(load_pairs(pairs / "train"))
    held = load_pairs(pairs / "heldout", val_photos)
    if init is None:
        net = PostFilter(cfg)
    else:
        net = filter_to_start_from(init)
        if grow:
            net = grown_postfilter(net, cfg)
        elif shrink:
            net = shrunk_postfilter(net, cfg.width)
        net = net.train()
    cfg = net.cfg
    optim = torch.optim.Adam(net.parameters(), lr=lr)
    step, elapsed, best = 0, 0.0, math.inf
    last_path, best_path = out / "last.pt", out / "best.pt"
    ranges: Ranges | None = None
    if resume and last_path.exists():
        ckpt = torch.load(last_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optim"])
        step, elapsed, best = ckpt["step"], ckpt["elapsed"], ckpt["best"]
        ranges = ckpt.get("int8_ranges")
        rng = np.random.default_rng([seed, step])
        if int8 and ranges is None:  # its best was scored in float: not comparable
            raise ValueError(f"{last_path} was a float run: resume it without --int8")
    if int8 and ranges is None:
        calibration = np.random.default_rng([seed, 8])
        crops = (sampler.sample(calibration, batch)[:2] for _ in range(CALIBRATION_BATCHES))
        ranges = activation_ranges(net, crops)
    if ranges is not None and not int8:
        raise ValueError(f"{last_path} was an --int8 run: resume it with --int8")
    # what is trained and scored: the float network, or its int8 graph's arithmetic
    model = net if ranges is None else Int8PostFilter(net, ranges)

    def checkpoint(path: Path) -> None:
        save_atomic(
            {
                "config": cfg.to_dict(),
                "model": net.state_dict(),
                "optim": optim.state_dict(),
                "step": step,
                "elapsed": elapsed,
                "best": best,
                "int8_ranges": ranges,
            },
            path,
        )

    def log(entry: dict) -> None:
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    if step == 0:  # the starting point (identity, or --init's filter) is scored and logged too
        start_scores = validate(model, held, loss)
        best = start_scores["score"]
        checkpoint(best_path)
        log({"step": 0, "elapsed": 0.0, "loss": None, "lr": lr, **start_scores})
    start, saved = time.perf_counter() - elapsed, time.perf_counter()
    losses: list[float] = []
    while elapsed < minutes * 60:
        for group in optim.param_groups:
            group["lr"] = lr_at(elapsed / (minutes * 60), lr)
        decoded, g, original = sampler.sample(rng, batch)
        value = LOSSES[loss](model(decoded, g), original)
        optim.zero_grad(set_to_none=True)
        value.backward()
        optim.step()
        losses.append(value.item())
        step += 1
        elapsed = time.perf_counter() - start
        done = elapsed >= minutes * 60
        if step % val_every == 0 or done:
            result = validate(model, held, loss)
            if result["score"] < best:
                best = result["score"]
                checkpoint(best_path)
            log(
                {
                    "step": step,
                    "elapsed": round(elapsed, 1),
                    "loss": float(np.mean(losses)),
                    "lr": optim.param_groups[0]["lr"],
                    **result,
                }
            )
            losses.clear()
        if done or time.perf_counter() - saved > checkpoint_minutes * 60:
            checkpoint(last_path)
            saved = time.perf_counter()
    return best_path


def filter_to_start_from(init: Path) -> PostFilter:
    """``--init``: a filter checkpoint, or a bundle whose filter to take."""
    if not init.is_dir():
        return load_postfilter(init)[0]
    net, missing = postfilter_from_bundle(init)
    if missing:
        click.echo(f"{init}: not in its filter, left fresh: {', '.join(missing)}", err=True)
    return net


def load_postfilter(path: Path) -> tuple[PostFilter, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    net = PostFilter(PostFilterConfig(**ckpt["config"]))
    net.load_state_dict(ckpt["model"])
    return net.eval(), ckpt


@click.command()
@click.option(
    "--pairs",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Decoded pairs (postfilter_pairs); made here first if --data is given "
    "and they are missing.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Training photos, to decode into --pairs when it is empty.",
)
@click.option(
    "--model",
    "model_dir",
    default=None,
    help="The bundle whose pictures to filter (decodes the pairs).",
)
@click.option(
    "--limit",
    type=int,
    default=None,
    help="Decode at most this many training photos (a random subset).",
)
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option(
    "--bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the best filter into this bundle (postfilter.onnx + manifest).",
)
@click.option("--minutes", type=float, default=60.0, show_default=True)
@click.option("--width", type=int, default=PostFilterConfig.width, show_default=True)
@click.option("--layers", type=int, default=PostFilterConfig.layers, show_default=True)
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--val-photos", type=int, default=None, help="Held-out photos to score on.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option(
    "--init",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Start from another filter: a checkpoint, or a bundle holding one (its shape "
    "replaces --width/--layers), e.g. the previous model's, when filtering a new model.",
)
@click.option(
    "--grow",
    is_flag=True,
    help="Grow --init's filter to --width/--layers "
    "(new channels start unused, added layers as identities) instead.",
)
@click.option(
    "--shrink",
    is_flag=True,
    help="Cut --init's filter to --width channels (each layer's most used ones kept; "
    "the same depth), a cheaper filter to fine-tune, instead.",
)
@click.option(
    "--loss",
    type=click.Choice(sorted(LOSSES)),
    default="mix",
    show_default=True,
    help="mix (MS-SSIM and squared error, the msssim tune) or mse (the psnr tune).",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Quantisation-aware: train the filter as its int8 graph runs it, and write that "
    "graph into --bundle (2.5x faster on CPU than the float one).",
)
def main(
    pairs: Path,
    out: Path,
    data: tuple[str, ...],
    model_dir: str | None,
    limit: int | None,
    holdout_percent: float,
    bundle: Path | None,
    minutes: float,
    width: int,
    layers: int,
    batch: int,
    lr: float,
    threads: int | None,
    seed: int,
    val_every: int,
    val_photos: int | None,
    checkpoint_minutes: float,
    resume: bool,
    init: Path | None,
    grow: bool,
    shrink: bool,
    loss: str,
    int8: bool,
) -> None:
    """Train the post-filter of a model bundle on its decoded training photos."""
    if not (pairs / "train").is_dir() and data:
        from ..runtime import load_model
        from .postfilter_pairs import make_pairs

        make_pairs(
            list(data),
            load_model(model_dir, device="cpu", threads=threads),
            pairs,
            limit=limit,
            holdout_percent=holdout_percent,
        )
    if (grow or shrink) and init is None:
        raise click.UsageError("--grow and --shrink need --init (the filter to change)")
    if grow and shrink:
        raise click.UsageError("--grow and --shrink: one or the other")
    cfg = PostFilterConfig(width=width, layers=layers)  # --init's shape wins unless resized
    try:
        best = train_postfilter(
            pairs,
            out,
            cfg=cfg,
            minutes=minutes,
            batch=batch,
            lr=lr,
            threads=threads,
            seed=seed,
            val_every=val_every,
            checkpoint_minutes=checkpoint_minutes,
            val_photos=val_photos,
            resume=resume,
            init=init,
            grow=grow,
            loss=loss,
            shrink=shrink,
            int8=int8,
        )
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"best post-filter: {best}")
    if bundle is not None:
        net, ckpt = load_postfilter(best)
        spec = export_postfilter(
            net,
            bundle,
            {"step": ckpt["step"], "elapsed_s": round(ckpt["elapsed"])},
            int8_ranges=ckpt.get("int8_ranges"),
        )
        click.echo(f"wrote {spec['file']} into {bundle}")


if __name__ == "__main__":
    main()
