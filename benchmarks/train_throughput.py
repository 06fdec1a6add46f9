"""Training throughput: windows per second of the joint IR2I model on this CPU machine.

    python -m benchmarks.train_throughput --out results/train_throughput.md

One row per preset x loss x batch x sampler x threads: a fresh model, ``--warmup`` steps, then
full training steps for ``--seconds`` of wall clock (``time.perf_counter``). A step is the
trainer's (``ir2icodec/training/train.py``): draw a batch, channels_last, forward,
``coder_loss``, ``zero_grad``, ``backward``, the non-finite gradient check
(``clip_grad_norm_(..., inf)``), Adam ``step``; drawing the batch counts, as it does in
training. Samplers: ``pack`` is the trainer's ``--pack`` path (``DeviceSampler`` over
``load_pack``: photos downsampled once, a batch is one gather); ``photos`` its ``--data`` path
(``PatchSampler``: a photo resized for every 8 windows), over the training photos of
``--data`` (held-out ones excluded), decoded once up front as in a long run. The compact
preset runs with 4 inpainting layers. ``--precisions fp32,bf16`` also times the trainer's
``--precision bf16`` (bf16 autocast, the loss in fp32), which oneDNN runs on CPUs with
AVX-512 BF16 or AMX. ``--compile`` wraps the model in ``torch.compile``; a
row that fails (e.g. no working compiler) says why in the table instead of stopping it.

Measure on an idle machine: pause a training run first with
``pkill -STOP -f ir2icodec.training.train`` and resume it with ``pkill -CONT -f
ir2icodec.training.train``; a busy CPU makes every row meaningless.

The issue's baseline, today's trainer (compact, mix loss, 2 threads): about 140 windows/s at
batch 32 and 190 at batch 128. Target: at least 350 windows/s for compact with the mix loss.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from ir2icodec.training.data import PatchSampler, list_images, split_images
from ir2icodec.training.nets import PRESETS, ModelConfig, ProgressiveCoder, make_config
from ir2icodec.training.pack import DeviceSampler, load_pack
from ir2icodec.training.train import LOSSES, TrainOptions, train_step

SAMPLERS = ("pack", "photos")
PRECISIONS = ("fp32", "bf16")
HEADER = ("| preset | loss | batch | sampler | threads | precision | windows/s | ms/step |\n"
          "|---|---|---:|---|---:|---|---:|---:|")

# draw(batch) -> (blocks, contexts), float32 NCHW on the CPU
Draw = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Setting:
    preset: str
    loss: str
    batch: int
    sampler: str
    threads: int
    precision: str = "fp32"


def model_config(preset: str) -> ModelConfig:
    """The benchmarked network: compact with 4 inpainting layers, other presets as they are."""
    return make_config(preset, inpaint_layers=4) if preset == "compact" else make_config(preset)


def pack_draw(path: str) -> Draw:
    """The trainer's ``--pack`` sampler, on the CPU."""
    sampler = DeviceSampler(load_pack(path).photos, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    return lambda batch: sampler.sample(gen, batch)


def photos_draw(data: str, holdout_percent: float) -> Draw:
    """The trainer's ``--data`` sampler over the training photos of ``data``."""
    train_files, _ = split_images(list_images([data]), holdout_percent)
    if not train_files:
        raise click.ClickException(f"every photo under {data} is held out")
    sampler = PatchSampler(train_files)
    # A long run keeps every decoded photo cached; decode them all now so the timed rows see
    # the steady state, not JPEG decoding.
    for i in range(len(train_files)):
        sampler._image(i)
    rng = np.random.default_rng(0)

    def draw(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        blocks, contexts = sampler.sample(rng, batch)
        return torch.from_numpy(blocks), torch.from_numpy(contexts)
    return draw


def measure(setting: Setting, draw: Draw, seconds: float, warmup: int,
            compile_model: bool = False) -> tuple[float, float]:
    """(windows/s, ms/step) of training steps as ``train.py`` runs them on the CPU."""
    torch.set_num_threads(setting.threads)
    torch.manual_seed(0)
    cfg = model_config(setting.preset)
    device = torch.device("cpu")
    model = ProgressiveCoder(cfg).to(device, memory_format=torch.channels_last)
    net = torch.compile(model) if compile_model else model
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                             lr=TrainOptions.lr)
    joint = cfg.inpainting == "joint"

    # train.py's own step (forward, loss, backward, gradient check, Adam), minus the loop's
    # bookkeeping (LR lookup, progress bar), which costs microseconds.
    def step() -> None:
        b, c = draw(setting.batch)
        b = b.to(device, memory_format=torch.channels_last)
        c = c.to(device, memory_format=torch.channels_last)
        train_step(net, optim, b, c, setting.loss, joint, bf16=setting.precision == "bf16")

    for _ in range(warmup):  # also where torch.compile compiles
        step()
    steps, start = 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - start < seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    return steps * setting.batch / elapsed, 1000 * elapsed / steps


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error (torch.compile's run to pages), '|'-safe."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text.replace("|", "/")[:120]


def _split(choices: tuple[str, ...] | None = None) -> Callable:
    """A click callback for comma-separated lists, checked against ``choices``."""
    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if choices is not None and v not in choices]
        if not items or bad:
            raise click.BadParameter(f"comma-separated, of {', '.join(choices or ('...',))}")
        return items
    return parse


def _positive_ints(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        items = []
    if not items or min(items) < 1:
        raise click.BadParameter("comma-separated positive integers, e.g. 32,64")
    return items


@click.command()
@click.option("--presets", default="compact", show_default=True,
              callback=_split(tuple(sorted(PRESETS))), help="Comma-separated presets.")
@click.option("--losses", default="mix", show_default=True, callback=_split(LOSSES),
              help=f"Comma-separated, of {', '.join(LOSSES)}.")
@click.option("--batches", default="32,64,128,256", show_default=True,
              callback=_positive_ints)
@click.option("--samplers", default="pack,photos", show_default=True,
              callback=_split(SAMPLERS), help="pack: DeviceSampler; photos: PatchSampler.")
@click.option("--threads", default="2", show_default=True, callback=_positive_ints,
              help="torch CPU threads (comma-separated counts).")
@click.option("--precisions", default="fp32", show_default=True, callback=_split(PRECISIONS),
              help="fp32, and/or bf16 (autocast, as train --precision bf16).")
@click.option("--pack", "pack_path", type=click.Path(dir_okay=False), default=".gpu/train.npz",
              show_default=True,
              help="Packed photos (python -m ir2icodec.training.pack --data ../shared/data/train "
                   "--out .gpu/train.npz).")
@click.option("--data", type=click.Path(file_okay=False), default="../shared/data/train",
              show_default=True, help="Photo folder for the photos sampler.")
@click.option("--holdout-percent", type=float, default=TrainOptions.holdout_percent,
              show_default=True, help="Photos held out of --data, as the trainer does.")
@click.option("--seconds", type=click.FloatRange(0, min_open=True), default=20.0,
              show_default=True, help="Timed wall clock per row.")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True,
              help="Untimed steps per row first.")
@click.option("--compile", "compile_model", is_flag=True,
              help="Wrap the model in torch.compile (compiled during the warm-up).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the table to this file.")
def main(presets: list[str], losses: list[str], batches: list[int], samplers: list[str],
         threads: list[int], precisions: list[str], pack_path: str, data: str,
         holdout_percent: float, seconds: float, warmup: int, compile_model: bool,
         out: str | None) -> None:
    """Training windows per second per setting, as a markdown table on stdout."""
    draws: dict[str, Draw] = {}
    if "pack" in samplers:
        if not Path(pack_path).is_file():
            raise click.UsageError(f"no pack at {pack_path}: build it with python -m "
                                   f"ir2icodec.training.pack --data {data} --out {pack_path}")
        draws["pack"] = pack_draw(pack_path)
    if "photos" in samplers:
        if not Path(data).is_dir():
            raise click.UsageError(f"--data {data} is not a folder")
        draws["photos"] = photos_draw(data, holdout_percent)

    rows, failed = [], False
    for preset in presets:
        for loss in losses:
            for batch in batches:
                for sampler in samplers:
                    for n in threads:
                        for precision in precisions:
                            setting = Setting(preset, loss, batch, sampler, n, precision)
                            try:
                                rate, ms = measure(setting, draws[sampler], seconds, warmup,
                                                   compile_model)
                                cells = f"{rate:.1f} | {ms:.1f}"
                            except Exception as e:  # one failed row (e.g. compile) keeps
                                traceback.print_exc()  # the rest
                                cells = f"failed: {one_line(e)} | -"
                                failed = True
                            rows.append(f"| {preset} | {loss} | {batch} | {sampler} | {n} | "
                                        f"{precision} | {cells} |")
                            click.echo(rows[-1], err=True)  # progress: rows take --seconds
    title = (f"Training throughput (torch {torch.__version__}, {seconds:g} s per row after "
             f"{warmup} warm-up steps{', torch.compile' if compile_model else ''})")
    table = "\n".join([title, "", HEADER, *rows]) + "\n"
    click.echo(table, nl=False)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(table)
    # --compile is an experiment whose failure the table reports; without it, a failed row
    # is a bug, so say so in the exit status.
    if failed and not compile_model:
        sys.exit(1)


if __name__ == "__main__":
    main()
