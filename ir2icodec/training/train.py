"""Training loop: Adam, step LR drops, checkpoints with --resume, held-out validation, DDP.

Run ``python -m ir2icodec.training.train --data DIR --out runs/x`` (or ``ir2i train``), or
``torchrun --nproc_per_node N -m ir2icodec.training.train ...`` for DistributedDataParallel
(gloo on CPU, nccl on CUDA). On 2 CPU cores the fastest is 2 processes of ``--threads 1`` with
``--precision bf16 --compile-loss`` (README, ``benchmarks.train_throughput``). On a GPU,
``--pack`` (``python -m ir2icodec.training.pack``) cuts the windows on the device and the
networks run under bf16 autocast; ``--steps 0 --max-minutes M`` trains for M minutes with the
LR drops placed by time (``experiments/gpu_train.sh``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .batches import pack_draw, photos_draw
from .checkpoints import save_atomic
from .data import PatchSampler, list_images, make_training_pair, split_images, validation_windows
from .decoded_context import WINDOW, decoded_training_pair
from .losses import (  # noqa: F401 - the losses' home; names kept here for callers
    MSSSIM_WEIGHTS,
    MsssimFn,
    block_msssim,
    coder_loss,
    compiled_msssim,
    float_output,
    msssim_reference,
)
from .nets import (
    LINK_INITS,
    PRESETS,
    InpaintNet,
    ModelConfig,
    ProgressiveCoder,
    init_links,
    make_config,
)
from .pack import DeviceSampler, drop_edges, load_pack
from .rate import BitModel, RateAwareCoder
from .recover import is_bundle, state_from_bundle

LOSSES = ("l2", "msssim", "mix")


@dataclass
class TrainOptions:
    data: list[str]
    out: str
    pack: str | None = None  # a packed-photos .npz instead of data folders
    steps: int = 20000  # 0: train until max_minutes, LR drops placed by time
    batch: int = 32
    lr: float = 1e-3
    lr_drops: tuple[float, ...] = (0.27, 0.59, 0.82)  # fractions of steps (the paper's IR2I)
    loss: str = "l2"
    seed: int = 0
    holdout_percent: float = 5.0
    val_every: int = 500
    checkpoint_minutes: float = 5.0
    max_minutes: float | None = None
    threads: int | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    decoded_context: bool = False  # contexts from the model's own stage-2 codes (needs pack)
    compile_loss: bool = False  # torch.compile the MS-SSIM term (fused kernels)
    resume: bool = False
    init_inpaint: str | None = None  # checkpoint to take a (pre-trained) inpainting net from
    init: str | None = None  # checkpoint to warm-start from (every tensor whose shape fits)
    link_init: str = "zero"  # how the connection links start (nets.init_links)
    rate_weight: float = 0.0  # > 0: loss + rate_weight * estimated rate (rate.py)
    rate_stage_scales: tuple[float, ...] | None = None  # per stage, times rate_weight
    bit_model_lr_scale: float = 10.0  # the bit model's tables learn this much faster
    # With --stages 0: learn this checkpoint's or bundle's inpainting network's predictions
    # instead of the blocks (distillation into another shape of network)
    inpaint_teacher: str | None = None


def progress(step: int, elapsed: float, opts: TrainOptions) -> float:
    """How far through the run, in [0, 1]: by steps, or by time for a time-boxed run."""
    if opts.steps:
        return step / opts.steps
    return elapsed / (60 * opts.max_minutes) if opts.max_minutes else 0.0


def lr_at(fraction: float, opts: TrainOptions) -> float:
    drops = sum(fraction >= f for f in opts.lr_drops)
    return opts.lr * (0.1**drops)


def train_step(
    net: torch.nn.Module,
    optim: torch.optim.Optimizer,
    blocks: torch.Tensor,
    contexts: torch.Tensor,
    loss_kind: str,
    joint: bool,
    bf16: bool,
    msssim: MsssimFn = block_msssim,
    rate_weight: float = 0.0,
    rate_stage_scales: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, bool]:
    """One optimisation step on a batch; returns the loss and whether the step was taken.
    ``net`` is a coder, or a ``RateAwareCoder`` whose rate enters the loss at ``rate_weight``."""
    with torch.autocast(blocks.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = net(blocks, contexts)
    out, stage_bits = out if isinstance(out, tuple) else (out, None)  # RateAwareCoder
    loss = coder_loss(
        float_output(out) if bf16 else out,
        blocks,
        loss_kind,
        joint,
        msssim,
        stage_bits,
        rate_weight,
        rate_stage_scales,
    )
    optim.zero_grad(set_to_none=True)
    loss.backward()
    # A non-finite gradient (bf16 overflow, a kernel bug) would poison Adam's moments for
    # good: skip that step instead (the caller counts it in the log).
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), math.inf)
    took = bool(torch.isfinite(grad_norm))
    if took:
        optim.step()
    return loss, took


@torch.no_grad()
def calibrate_bit_model(
    model: ProgressiveCoder, bit_model: BitModel, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Start the bit model's tables from the counts of the codes ``model`` makes now
    (stochastic, as in training) on ``batches``."""
    codes = [model(b, c).codes for b, c in batches]
    bit_model.calibrate([torch.cat(stage) for stage in zip(*codes)])


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` wrapped for data-parallel training in an initialised process group. Stage 1
    has no previous stage, so its connection weights get no gradient: DDP looks for unused
    parameters at every step. That search is cheap: about 6 ms of a 1.45 s step in a one-off
    A/B (batch 256, bf16, 1 thread; median of 24 paired steps against the same model with
    those weights frozen and no search). ``static_graph=True`` would skip it too, but then
    the processes' weights drift apart: tests/test_training.py."""
    return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "auto":
        return device.type == "cuda"
    return precision == "bf16"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def validate(
    model: ProgressiveCoder,
    windows: np.ndarray,
    device: torch.device,
    bit_model: BitModel | None = None,
    rate_weight: float = 0.0,
    loss: str = "mix",
    rate_stage_scales: tuple[float, ...] | None = None,
) -> dict:
    """Per-stage PSNR and block MS-SSIM on held-out blocks (deterministic binarization), and
    the inpainting PSNR. With a ``bit_model``, also each stage's estimated cost as a fraction
    of its raw bits ("rate") and the held-out objective: the training ``loss``'s
    distortion plus the rate term ("objective", lower is better)."""
    model.eval()
    sse = np.zeros(model.cfg.stages)
    msssim = np.zeros(model.cfg.stages)
    stage_bits = np.zeros(model.cfg.stages)
    inp_sse = 0.0
    n = batches = 0
    for i in range(0, len(windows), 256):
        blocks, contexts = make_training_pair(windows[i : i + 256])
        b = torch.from_numpy(blocks).to(device)
        out = model(b, torch.from_numpy(contexts).to(device))
        for s, r in enumerate(out.reconstructions):
            r = r.clamp(-0.5, 0.5)
            sse[s] += F.mse_loss(r, b, reduction="sum").item()
            msssim[s] += block_msssim(r, b).item() * len(b)
        inp_sse += F.mse_loss(out.inpainting, b, reduction="sum").item()
        if bit_model is not None:
            stage_bits += [c.sum().item() for c in bit_model.stage_bits(out.codes)]
        n += b.numel()
        batches += len(b)
    model.train()
    psnr = [10 * math.log10(1 / max(e / n, 1e-12)) for e in sse]
    inpaint_psnr = 10 * math.log10(1 / max(inp_sse / n, 1e-12))
    # --stages 0 trains the inpainting network alone: select checkpoints on its PSNR then.
    metrics = {
        "psnr": psnr,
        "mean_psnr": float(np.mean(psnr)) if psnr else inpaint_psnr,
        "msssim": list(msssim / max(batches, 1)),
        "mean_msssim": float(np.mean(msssim)) / max(batches, 1) if psnr else math.nan,
        "inpaint_psnr": inpaint_psnr,
    }
    if bit_model is not None and psnr:
        rate = stage_bits / max(batches, 1) / bit_model.code_bits
        mse = sse / max(n, 1)
        distortion = held_out_distortion(loss, 1 - msssim / max(batches, 1), mse)
        metrics["rate"] = [round(float(r), 5) for r in rate]
        scales = np.asarray(rate_stage_scales or (1.0,) * len(rate))
        metrics["objective"] = float(distortion.sum() + rate_weight * (scales * rate).sum())
    return metrics


def held_out_distortion(loss: str, one_minus_msssim: np.ndarray, mse: np.ndarray) -> np.ndarray:
    """Each stage's distortion as ``losses.coder_loss`` weighs it for ``loss``."""
    if loss == "l2":
        return mse
    if loss == "msssim":
        return one_minus_msssim
    return 0.5 * one_minus_msssim + 25 * mse  # the mix loss's terms


def selection_metric(loss: str, stages: int, rate_aware: bool = False) -> str:
    """The held-out number best.pt selects on: the one the loss optimises (maximised; the
    rate-aware "objective" is a loss, and ``selection_score`` negates it)."""
    if rate_aware and stages:
        return "objective"
    return "mean_psnr" if loss == "l2" or stages == 0 else "mean_msssim"


def selection_score(metrics: dict, metric: str) -> float:
    """Higher is better."""
    return -metrics[metric] if metric == "objective" else metrics[metric]


def warm_start(model: torch.nn.Module, source: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``source`` whose name and shape match ``model``; returns the names
    left at their fresh initialisation (e.g. a resized inpainting network)."""
    own = model.state_dict()
    fits = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fits, strict=False)
    return sorted(set(own) - set(fits))


def load_weights(source: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Named weights of a training checkpoint (.pt) or of an exported model bundle (a
    directory with model.json), e.g. the shipped ``models/ir2i-compact``."""
    if is_bundle(source):
        return {k: v.to(device) for k, v in state_from_bundle(source)[1].items()}
    return torch.load(source, map_location=device, weights_only=False)["model"]


def inpaint_state(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inpainting network's own weights out of a whole coder's (``inpaint.`` cut off)."""
    return {k.removeprefix("inpaint."): v for k, v in weights.items() if k.startswith("inpaint.")}


def load_inpaint_teacher(source: str, device: torch.device) -> InpaintNet:
    """The inpainting network of a checkpoint (.pt) or a model bundle, frozen, in inference
    mode: the target of a distillation (``--inpaint-teacher``)."""
    if is_bundle(source):
        cfg, weights = state_from_bundle(source)
    else:
        ckpt = torch.load(source, map_location="cpu", weights_only=False)
        cfg, weights = ModelConfig.from_dict(ckpt["config"]), ckpt["model"]
    if cfg.inpainting == "none":
        raise click.ClickException(f"{source} has no inpainting network to learn from")
    teacher = InpaintNet(cfg.inpaint)
    teacher.load_state_dict(inpaint_state(weights))
    return teacher.to(device).eval().requires_grad_(False)


def train(cfg: ModelConfig, opts: TrainOptions) -> Path:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(opts.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    else:
        rank, world = 0, 1
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    out_dir = Path(opts.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / "last.pt"

    torch.manual_seed(opts.seed + rank)
    rng = np.random.default_rng(opts.seed + 1000 * rank)
    random.seed(opts.seed + rank)
    # channels_last runs the small convolutions ~2-3x faster on CPU (oneDNN).
    model = ProgressiveCoder(cfg).to(device, memory_format=torch.channels_last)
    init_links(model, opts.link_init)  # before any warm start, which may overwrite them
    fresh = None
    if opts.init and not (opts.resume and last_path.exists()):  # resuming restores it all
        fresh = warm_start(model, load_weights(opts.init, device))
    if opts.init_inpaint and model.inpaint is not None:
        src = torch.load(opts.init_inpaint, map_location=device, weights_only=False)["model"]
        model.inpaint.load_state_dict(inpaint_state(src))
    if cfg.inpainting == "separate" and model.inpaint is not None:
        model.inpaint.requires_grad_(False)
    # The rate term's bit model (rate.py): its tables learn faster than the networks, so
    # that they keep up with the codes they estimate.
    bit_model = BitModel(cfg.stages).to(device) if opts.rate_weight > 0 and cfg.stages else None
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
    if bit_model is not None:
        groups.append({"params": list(bit_model.parameters()), "lr_scale": opts.bit_model_lr_scale})
    optim = torch.optim.Adam(groups, lr=opts.lr)
    step, elapsed, best = 0, 0.0, -math.inf
    if opts.resume and last_path.exists():
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        if ModelConfig.from_dict(ckpt["config"]) != cfg:
            raise click.ClickException(f"{last_path} was trained with another model config")
        model.load_state_dict(ckpt["model"])
        if bit_model is not None:
            bit_model.load_state_dict(ckpt["bit_model"])
        optim.load_state_dict(ckpt["optimizer"])
        step, elapsed, best = ckpt["step"], ckpt["elapsed"], ckpt.get("best", -math.inf)
        rng = np.random.default_rng([opts.seed + 1000 * rank, step])  # fresh, reproducible stream
        torch.manual_seed(opts.seed + rank + step)

    if opts.pack:
        pack = load_pack(opts.pack)
        photos = pack.photos
        if opts.decoded_context:  # 96x96 windows: the few smaller photos sit this run out
            photos = [p for p in photos if min(p.shape[:2]) >= WINDOW]
        device_sampler = DeviceSampler(photos, device)
        n_train, n_held = pack.meta["photos"], pack.meta["held_out_photos"]
        val = pack.validation if rank == 0 else None
        gen = torch.Generator(device=device)
        gen.manual_seed(opts.seed + 1000 * rank + 7919 * step)
        draw = pack_draw(device_sampler, gen)
    else:
        files = list_images(opts.data)
        train_files, held_files = split_images(files, opts.holdout_percent)
        if not train_files:
            raise click.ClickException(
                f"all {len(files)} photos are held out for validation; "
                "add photos or lower --holdout-percent"
            )
        draw = photos_draw(PatchSampler(train_files), rng)
        n_train, n_held = len(train_files), len(held_files)
        val = validation_windows(held_files) if rank == 0 and held_files else None
    bf16 = use_bf16(opts.precision, device)
    if rank == 0:
        (out_dir / "config.json").write_text(
            json.dumps(
                {
                    "model": cfg.to_dict(),
                    "options": {**opts.__dict__, "data": opts.data},
                    "train_images": n_train,
                    "held_out_images": n_held,
                    "world_size": world,
                    "device": str(device),
                    "bf16_autocast": bf16,
                    "warm_start_fresh_tensors": fresh,
                },
                indent=2,
            )
        )

    teacher = load_inpaint_teacher(opts.inpaint_teacher, device) if opts.inpaint_teacher else None

    def draw_batch() -> tuple[torch.Tensor, torch.Tensor]:
        if teacher is not None:  # --stages 0: the loss compares the inpainting with these
            blocks, contexts = draw(opts.batch)
            with torch.no_grad():
                blocks = teacher(contexts.to(device).float())
        elif opts.decoded_context:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                blocks, contexts = decoded_training_pair(
                    model, device_sampler.windows(gen, opts.batch, WINDOW)
                )
            contexts = drop_edges(contexts.float(), gen, device_sampler.edge_probability)
            blocks = blocks.float()
        else:
            blocks, contexts = draw(opts.batch)
        return (
            blocks.to(device, memory_format=torch.channels_last),
            contexts.to(device, memory_format=torch.channels_last),
        )

    if bit_model is not None and step == 0:
        # Before the wrapper: DDP hands rank 0's tables to every process.
        calibrate_bit_model(model, bit_model, [draw_batch() for _ in range(16)])
    wrapped = RateAwareCoder(model, bit_model) if bit_model is not None else model
    net = data_parallel(wrapped) if distributed else wrapped
    metric = selection_metric(opts.loss, cfg.stages, bit_model is not None)

    def checkpoint_state() -> dict:
        state = {
            "config": cfg.to_dict(),
            "model": model.state_dict(),
            "step": step,
            "optimizer": optim.state_dict(),
            "elapsed": elapsed,
            "best": best,
        }
        if bit_model is not None:
            state["bit_model"] = bit_model.state_dict()
            state["rate_weight"] = opts.rate_weight
        return state

    def log_validation(loss: float | None) -> dict:
        metrics = validate(
            model, val, device, bit_model, opts.rate_weight, opts.loss, opts.rate_stage_scales
        )
        with open(out_dir / "log.jsonl", "a") as log:
            log.write(
                json.dumps(
                    {
                        "step": step,
                        "windows": step * opts.batch * world,
                        "elapsed": round(elapsed, 1),
                        "loss": loss,
                        "skipped_steps": skipped,
                        "lr": lr_at(progress(max(step - 1, 0), elapsed, opts), opts),
                        **metrics,
                    }
                )
                + "\n"
            )
        return metrics

    joint = cfg.inpainting == "joint"
    msssim = compiled_msssim() if opts.compile_loss and opts.loss != "l2" else block_msssim
    skipped = 0  # steps whose gradient was not finite
    start = time.time() - elapsed
    last_save = time.time()
    if step == 0 and val is not None:  # the starting point (e.g. --init) competes for best.pt
        best = selection_score(log_validation(None), metric)
        save_atomic(checkpoint_state(), out_dir / "best.pt")
    bar = tqdm(
        total=opts.steps or None,
        initial=step,
        disable=rank != 0,
        dynamic_ncols=True,
        mininterval=5.0,
    )
    window_t, window_n = time.time(), 0
    while not opts.steps or step < opts.steps:
        lr = lr_at(progress(step, time.time() - start, opts), opts)
        for g in optim.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        b, c = draw_batch()
        loss, took = train_step(
            net,
            optim,
            b,
            c,
            opts.loss,
            joint,
            bf16,
            msssim,
            opts.rate_weight,
            opts.rate_stage_scales,
        )
        skipped += not took
        step += 1
        window_n += opts.batch * world
        if rank == 0:
            if step % 20 == 0:  # .item() waits for the device: not every step
                rate = window_n / max(time.time() - window_t, 1e-9)
                bar.set_postfix(loss=f"{loss.item():.4f}", samples_s=f"{rate:.0f}", refresh=False)
            bar.update(1)
            if step % 200 == 0:
                window_t, window_n = time.time(), 0
        stop = opts.max_minutes is not None and time.time() - start > 60 * opts.max_minutes
        if rank == 0:
            elapsed = time.time() - start
            state = checkpoint_state()
            if val is not None and (step % opts.val_every == 0 or step == opts.steps or stop):
                score = selection_score(log_validation(loss.item()), metric)
                if score > best:  # checkpoint selection on held-out photos
                    best = state["best"] = score
                    save_atomic(state, out_dir / "best.pt")
            if time.time() - last_save > 60 * opts.checkpoint_minutes or step == opts.steps or stop:
                save_atomic(state, last_path)
                last_save = time.time()
        if distributed:  # every rank must agree to stop, or DDP deadlocks
            flag = torch.tensor([int(stop)], device=device)
            dist.all_reduce(flag)
            stop = bool(flag.item())
        if stop:
            break
    bar.close()
    if distributed:
        dist.destroy_process_group()
    return last_path


@click.command("train")
@click.option(
    "--data",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder(s) of training photos (searched recursively).",
)
@click.option(
    "--pack",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Packed photos (python -m ir2icodec.training.pack) instead of --data: "
    "windows are cut on the training device.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="compact", show_default=True)
@click.option(
    "--connections",
    type=click.Choice(["residual", "prediction", "full", "decoding"]),
    default="decoding",
    show_default=True,
)
@click.option(
    "--inpainting",
    type=click.Choice(["none", "joint", "separate"]),
    default="joint",
    show_default=True,
)
@click.option(
    "--inpaint-kind",
    type=click.Choice(["multiscale", "vanilla", "cycled"]),
    default="multiscale",
    show_default=True,
    help="cycled: one convolution a layer at one dilation (--inpaint-dilations in turn), "
    "--filters-per-dilation filters each; about 5x faster to run than multiscale's four.",
)
@click.option(
    "--inpaint-dilations",
    default=None,
    metavar="D1,D2,...",
    help="Dilations of the inpainting network (overrides the preset), e.g. 16,8,4,2,1.",
)
@click.option("--filters-per-dilation", type=int, default=None, help="Override the preset.")
@click.option(
    "--inpaint-layers",
    type=click.IntRange(1, 64),
    default=None,
    help="Multi-scale layers of the inpainting network (overrides the preset).",
)
@click.option("--widths", default=None, help="Override the stage widths, e.g. 16,32,64.")
@click.option(
    "--stages",
    type=click.IntRange(0, 16),
    default=8,
    show_default=True,
    help="0 trains the inpainting network alone (eq. 3), e.g. for Sep-Inp.",
)
@click.option(
    "--steps",
    type=click.IntRange(0),
    default=20000,
    show_default=True,
    help="0: until --max-minutes, with the LR drops placed by time.",
)
@click.option("--batch", type=int, default=32, show_default=True, help="Per process.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option(
    "--lr-drops",
    default="0.27,0.59,0.82",
    show_default=True,
    help="Fractions of --steps where the LR drops 10x.",
)
@click.option("--loss", type=click.Choice(LOSSES), default="l2", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option("--val-every", type=int, default=500, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option(
    "--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this."
)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1...")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="auto: bf16 autocast on CUDA (loss in fp32), fp32 else.",
)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option(
    "--decoded-context",
    is_flag=True,
    help="Inpaint from the model's own stage-2 reconstructions of the neighbouring "
    "blocks, as the decoder does, instead of original pixels (needs --pack).",
)
@click.option(
    "--compile-loss",
    is_flag=True,
    help="torch.compile the MS-SSIM term of the msssim/mix losses: 5-30% faster CPU "
    "steps in README's table, after 20-45 s of compiling at the start (needs a "
    "C++ compiler).",
)
@click.option(
    "--link-init",
    type=click.Choice(LINK_INITS),
    default="zero",
    show_default=True,
    help="How the connection links between stages start: zero (each stage an "
    "independent coder), identity (the previous stage's features passed on) "
    "or msra (the paper's He-normal).",
)
@click.option(
    "--rate-weight",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Rate in the loss: + this x the stage codes' estimated cost under a learned "
    "twin of the entropy coder's context model (each stage's cost as a fraction "
    "of its raw bits). 0: distortion only.",
)
@click.option(
    "--rate-stage-scales",
    default=None,
    metavar="S1,...,S8",
    help="A rate weight per stage: each stage's cost in the rate term times its scale "
    "(e.g. 2,2,1.5,1,1,1,1,1 to press the early stages, where most bits are).",
)
@click.option(
    "--bit-model-lr-scale",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="The rate's bit-model tables learn at this multiple of --lr.",
)
@click.option(
    "--init-inpaint",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Checkpoint whose inpainting network to start from (Sep-Inp).",
)
@click.option(
    "--inpaint-teacher",
    type=click.Path(exists=True),
    default=None,
    help="With --stages 0: train the inpainting network to predict this checkpoint's or "
    "bundle's inpainting network (distillation, e.g. into a faster shape) instead of "
    "the blocks. Validation still scores it against the blocks.",
)
@click.option(
    "--init",
    type=click.Path(exists=True),
    default=None,
    help="Checkpoint (.pt) or model bundle directory to warm-start from: every "
    "tensor whose name and shape fit.",
)
def main(
    preset: str,
    connections: str,
    inpainting: str,
    inpaint_kind: str,
    filters_per_dilation: int | None,
    inpaint_layers: int | None,
    inpaint_dilations: str | None,
    widths: str | None,
    stages: int,
    lr_drops: str,
    rate_stage_scales: str | None,
    **kw,
) -> None:
    """Train a progressive coder (IR2I by default) on random crops of photos."""
    over: dict = {
        "connections": connections,
        "inpainting": inpainting,
        "stages": stages,
        "inpaint_kind": inpaint_kind,
    }
    if filters_per_dilation:
        over["inpaint_filters_per_dilation"] = filters_per_dilation
    if inpaint_layers:
        over["inpaint_layers"] = inpaint_layers
    if inpaint_dilations:
        over["inpaint_dilations"] = tuple(int(d) for d in inpaint_dilations.split(","))
    if widths:
        over["widths"] = tuple(int(w) for w in widths.split(","))
    cfg = make_config(preset, **over)
    if bool(kw["data"]) == bool(kw["pack"]):
        raise click.UsageError("give either --data folders or --pack")
    if kw["decoded_context"] and not kw["pack"]:
        raise click.UsageError("--decoded-context cuts 96x96 windows on the device: give --pack")
    if kw["inpaint_teacher"] and stages != 0:
        raise click.UsageError("--inpaint-teacher trains the inpainting network alone: --stages 0")
    if kw["steps"] == 0 and not kw["max_minutes"]:
        raise click.UsageError("--steps 0 trains until --max-minutes: give it")
    scales = tuple(float(x) for x in rate_stage_scales.split(",")) if rate_stage_scales else None
    if scales is not None and (len(scales) != stages or min(scales) < 0):
        raise click.UsageError(f"--rate-stage-scales needs {stages} values of at least 0")
    opts = TrainOptions(
        lr_drops=tuple(float(f) for f in lr_drops.split(",") if f),
        data=list(kw.pop("data")),
        rate_stage_scales=scales,
        **kw,
    )
    train(cfg, opts)


if __name__ == "__main__":
    main()
