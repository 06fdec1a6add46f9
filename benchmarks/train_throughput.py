"""Training throughput: windows per second of the joint IR2I model on this CPU machine.

    python -m benchmarks.train_throughput --out results/train_throughput.md

One row per preset x loss x batch x sampler x processes x threads x precision x MS-SSIM term:
a fresh model, ``--warmup`` steps, then full training steps for ``--seconds`` of wall clock
(``time.perf_counter``). A step is the trainer's (``ir2icodec/training/train.py``): draw a
batch, channels_last, forward,
``coder_loss``, ``zero_grad``, ``backward``, the non-finite gradient check
(``clip_grad_norm_(..., inf)``), Adam ``step``; drawing the batch counts, as it does in
training. Samplers: ``pack`` is the trainer's ``--pack`` path (``DeviceSampler`` over
``load_pack``: photos downsampled once, a batch is one gather); ``photos`` its ``--data`` path
(``PatchSampler``: a photo resized for every 8 windows), over the training photos of
``--data`` (held-out ones excluded), decoded once up front as in a long run. The compact
preset runs with 4 inpainting layers. ``--precisions fp32,bf16`` also times the trainer's
``--precision bf16`` (bf16 autocast, the loss in fp32), which oneDNN runs on CPUs with
AVX-512 BF16 or AMX. ``--processes 2`` runs the step as data-parallel training does
(``torchrun --nproc_per_node 2 -m ir2icodec.training.train``): two processes of ``--threads``
threads each, the model wrapped in DistributedDataParallel over gloo, gradients averaged
every step, each process drawing its own ``--batches`` windows; the rate counts the windows
of all processes. ``--msssim eager,compiled`` also times the trainer's ``--compile-loss``
(the MS-SSIM term under ``torch.compile``; compiled in the warm-up, per process).
``--compile`` wraps the whole model in ``torch.compile``. A row that fails to compile (e.g.
no working compiler) says why in the table instead of stopping it.

Measure on an idle machine: pause a training run first with
``pkill -STOP -f ir2icodec.training.train`` and resume it with ``pkill -CONT -f
ir2icodec.training.train``; a busy CPU makes every row meaningless.

The issue's baseline, today's trainer (compact, mix loss, 2 threads): about 140 windows/s at
batch 32 and 190 at batch 128. Target: at least 350 windows/s for compact with the mix loss.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ir2icodec.training.batches import Draw, pack_draw, photos_draw
from ir2icodec.training.data import PatchSampler, list_images, split_images
from ir2icodec.training.nets import PRESETS, ModelConfig, ProgressiveCoder, make_config
from ir2icodec.training.pack import DeviceSampler, load_pack
from ir2icodec.training.train import (
    LOSSES,
    TrainOptions,
    block_msssim,
    compiled_msssim,
    data_parallel,
    train_step,
)

SAMPLERS = ("pack", "photos")
PRECISIONS = ("fp32", "bf16")
MSSSIM_MODES = ("eager", "compiled")
HEADER = (
    "| preset | loss | batch | sampler | processes | threads | precision | MS-SSIM term | "
    "windows/s | ms/step |\n|---|---|---:|---|---:|---:|---|---|---:|---:|"
)

# draw(batch) -> (blocks, contexts), float32 NCHW on the CPU


@dataclass(frozen=True)
class Setting:
    preset: str
    loss: str
    batch: int
    sampler: str
    threads: int  # per process
    precision: str = "fp32"
    processes: int = 1  # data-parallel processes (DDP over gloo), each drawing ``batch``
    msssim: str = "eager"  # "compiled": train --compile-loss


def model_config(preset: str) -> ModelConfig:
    """The benchmarked network: compact with 4 inpainting layers, other presets as they are."""
    return make_config(preset, inpaint_layers=4) if preset == "compact" else make_config(preset)


def pack_source(path: str, seed: int = 0) -> Draw:
    """The trainer's ``--pack`` batches, on the CPU."""
    sampler = DeviceSampler(load_pack(path).photos, torch.device("cpu"))
    return pack_draw(sampler, torch.Generator().manual_seed(seed))


def photos_source(data: str, holdout_percent: float, seed: int = 0) -> Draw:
    """The trainer's ``--data`` batches over the training photos of ``data``."""
    train_files, _ = split_images(list_images([data]), holdout_percent)
    if not train_files:
        raise click.ClickException(f"every photo under {data} is held out")
    sampler = PatchSampler(train_files)
    # A long run keeps every decoded photo cached: the timed rows see that steady state,
    # not JPEG decoding.
    sampler.preload()
    return photos_draw(sampler, np.random.default_rng(seed))


@dataclass(frozen=True)
class Source:
    """Where a process draws its windows from (each process builds its own sampler)."""

    sampler: str
    pack_path: str
    data: str
    holdout_percent: float

    def draw(self, seed: int) -> Draw:
        if self.sampler == "pack":
            return pack_source(self.pack_path, seed)
        return photos_source(self.data, self.holdout_percent, seed)


def measure(
    setting: Setting, draw: Draw, seconds: float, warmup: int, compile_model: bool = False
) -> tuple[float, float]:
    """(windows/s, ms/step) of training steps as ``train.py`` runs them on the CPU; inside a
    gloo process group, as one of its data-parallel processes (the rate counts them all)."""
    torch.set_num_threads(setting.threads)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.manual_seed(rank)
    cfg = model_config(setting.preset)
    device = torch.device("cpu")
    model = ProgressiveCoder(cfg).to(device, memory_format=torch.channels_last)
    net = torch.compile(model) if compile_model else model
    if distributed:
        net = data_parallel(net)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=TrainOptions.lr)
    joint = cfg.inpainting == "joint"
    msssim = compiled_msssim() if setting.msssim == "compiled" else block_msssim

    # train.py's own step (forward, loss, backward, gradient check, Adam), minus the loop's
    # bookkeeping (LR lookup, progress bar), which costs microseconds.
    def step() -> None:
        b, c = draw(setting.batch)
        b = b.to(device, memory_format=torch.channels_last)
        c = c.to(device, memory_format=torch.channels_last)
        train_step(
            net, optim, b, c, setting.loss, joint, bf16=setting.precision == "bf16", msssim=msssim
        )

    def done(steps: int, start: float) -> bool:
        stop = steps > 0 and time.perf_counter() - start >= seconds
        if not distributed:
            return stop
        flag = torch.tensor([int(stop)])  # every process must agree, as in train.py
        dist.all_reduce(flag)
        return bool(flag.item())

    for _ in range(warmup):  # also where torch.compile compiles
        step()
    if distributed:
        dist.barrier()
    steps, start = 0, time.perf_counter()
    while not done(steps, start):
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    return world * steps * setting.batch / elapsed, 1000 * elapsed / steps


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process(
    rank: int,
    setting: Setting,
    source: Source,
    seconds: float,
    warmup: int,
    compile_model: bool,
    port: int,
    results: mp.SimpleQueue,
) -> None:
    """One data-parallel process of ``measure_processes`` (spawned)."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=setting.processes
    )
    measured = measure(setting, source.draw(seed=rank), seconds, warmup, compile_model)
    if rank == 0:
        results.put(measured)
    dist.barrier()
    # Leave without tearing gloo down: its teardown at exit aborts now and then ("terminate
    # called without an active exception", about 1 run in 10 here), after the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def measure_processes(
    setting: Setting, source: Source, seconds: float, warmup: int, compile_model: bool = False
) -> tuple[float, float]:
    """``measure`` in ``setting.processes`` spawned processes trained data-parallel."""
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    # Each process sets its own thread count; the spawned interpreters must not each start
    # with every core's worth of OpenMP threads before that.
    env = {"OMP_NUM_THREADS": str(setting.threads)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        mp.start_processes(
            _process,
            args=(setting, source, seconds, warmup, compile_model, _free_port(), results),
            nprocs=setting.processes,
            start_method="spawn",
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results.get()


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error (torch.compile's run to pages), '|'-safe."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text.replace("|", "/")[:120]


def _row(
    setting: Setting, measured: list[tuple[float, float]], error: str | None, repeat: int
) -> str:
    """A table row: the median rate and step time, every round's rate when there are several."""
    s = setting
    cells = [
        s.preset,
        s.loss,
        str(s.batch),
        s.sampler,
        str(s.processes),
        str(s.threads),
        s.precision,
        s.msssim,
    ]
    if error is not None:
        cells += [f"failed: {error}", "-"] + (["-"] if repeat > 1 else [])
    else:
        rates = [rate for rate, _ in measured]
        cells += [
            f"{float(np.median(rates)):.1f}",
            f"{float(np.median([ms for _, ms in measured])):.1f}",
        ]
        if repeat > 1:
            cells.append(", ".join(f"{r:.0f}" for r in rates))
    return "| " + " | ".join(cells) + " |"


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
@click.option(
    "--presets",
    default="compact",
    show_default=True,
    callback=_split(tuple(sorted(PRESETS))),
    help="Comma-separated presets.",
)
@click.option(
    "--losses",
    default="mix",
    show_default=True,
    callback=_split(LOSSES),
    help=f"Comma-separated, of {', '.join(LOSSES)}.",
)
@click.option("--batches", default="32,64,128,256", show_default=True, callback=_positive_ints)
@click.option(
    "--samplers",
    default="pack,photos",
    show_default=True,
    callback=_split(SAMPLERS),
    help="pack: DeviceSampler; photos: PatchSampler.",
)
@click.option(
    "--threads",
    default="2",
    show_default=True,
    callback=_positive_ints,
    help="torch CPU threads (comma-separated counts).",
)
@click.option(
    "--precisions",
    default="fp32",
    show_default=True,
    callback=_split(PRECISIONS),
    help="fp32, and/or bf16 (autocast, as train --precision bf16).",
)
@click.option(
    "--msssim",
    "msssim_modes",
    default="eager",
    show_default=True,
    callback=_split(MSSSIM_MODES),
    help="eager, and/or compiled (the MS-SSIM term under torch.compile, as train --compile-loss).",
)
@click.option(
    "--processes",
    default="1",
    show_default=True,
    callback=_positive_ints,
    help="Data-parallel processes (comma-separated counts), each with --threads "
    "threads and its own batch, as torchrun --nproc_per_node N runs train.py; "
    "layouts with more threads in all than cores are skipped.",
)
@click.option(
    "--pack",
    "pack_path",
    type=click.Path(dir_okay=False),
    default=".gpu/train.npz",
    show_default=True,
    help="Packed photos (python -m ir2icodec.training.pack --data ../shared/data/train "
    "--out .gpu/train.npz).",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    default="../shared/data/train",
    show_default=True,
    help="Photo folder for the photos sampler.",
)
@click.option(
    "--holdout-percent",
    type=float,
    default=TrainOptions.holdout_percent,
    show_default=True,
    help="Photos held out of --data, as the trainer does.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, min_open=True),
    default=20.0,
    show_default=True,
    help="Timed wall clock per row.",
)
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="Untimed steps per row first.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Rounds over all settings, interleaved; each row reports the median.",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="Wrap the model in torch.compile (compiled during the warm-up).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the table to this file.",
)
def main(
    presets: list[str],
    losses: list[str],
    batches: list[int],
    samplers: list[str],
    threads: list[int],
    precisions: list[str],
    msssim_modes: list[str],
    processes: list[int],
    pack_path: str,
    data: str,
    holdout_percent: float,
    seconds: float,
    warmup: int,
    repeat: int,
    compile_model: bool,
    out: str | None,
) -> None:
    """Training windows per second per setting, as a markdown table on stdout."""
    draws: dict[str, Draw] = {}
    if "pack" in samplers:
        if not Path(pack_path).is_file():
            raise click.UsageError(
                f"no pack at {pack_path}: build it with python -m "
                f"ir2icodec.training.pack --data {data} --out {pack_path}"
            )
        draws["pack"] = pack_source(pack_path)
    if "photos" in samplers:
        if not Path(data).is_dir():
            raise click.UsageError(f"--data {data} is not a folder")
        draws["photos"] = photos_source(data, holdout_percent)

    cores = os.cpu_count() or 1
    settings = [
        Setting(preset, loss, batch, sampler, n, precision, procs, mode)
        for preset, loss, batch, sampler, procs, n, precision, mode in itertools.product(
            presets, losses, batches, samplers, processes, threads, precisions, msssim_modes
        )
        if procs == 1 or procs * n <= cores
    ]  # more threads than cores: contention only
    if not settings:
        raise click.UsageError(f"every --processes x --threads layout exceeds the {cores} cores")
    # Rounds interleave the settings, so that a shared machine's drift in speed (on this
    # one, 20-40% within an hour) falls on every setting alike; each row is the median.
    results: dict[Setting, list[tuple[float, float]]] = {s: [] for s in settings}
    errors: dict[Setting, str] = {}
    for _ in range(repeat):
        for setting in settings:
            if setting in errors:
                continue
            source = Source(setting.sampler, pack_path, data, holdout_percent)
            try:
                if setting.processes == 1:
                    measured = measure(
                        setting, draws[setting.sampler], seconds, warmup, compile_model
                    )
                else:
                    measured = measure_processes(setting, source, seconds, warmup, compile_model)
                results[setting].append(measured)
            except Exception as e:  # one failed row (e.g. compile) keeps the rest
                traceback.print_exc()
                errors[setting] = one_line(e)
            click.echo(
                _row(setting, results[setting], errors.get(setting), repeat), err=True
            )  # progress: rows take --seconds
    rows = [_row(s, results[s], errors.get(s), repeat) for s in settings]
    rounds = f", median of {repeat} interleaved rounds" if repeat > 1 else ""
    title = (
        f"Training throughput (torch {torch.__version__}, {seconds:g} s per row after "
        f"{warmup} warm-up steps{rounds}{', torch.compile' if compile_model else ''})"
    )
    header = (
        HEADER
        if repeat == 1
        else HEADER.replace(" ms/step |\n", " ms/step | windows/s, all rounds |\n") + "---|"
    )
    table = "\n".join([title, "", header, *rows]) + "\n"
    click.echo(table, nl=False)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(table)
    # A row that compiles is an experiment whose failure the table reports; a failed row
    # that compiles nothing is a bug, so say so in the exit status.
    if not compile_model and any(s.msssim == "eager" for s in errors):
        sys.exit(1)


if __name__ == "__main__":
    main()
