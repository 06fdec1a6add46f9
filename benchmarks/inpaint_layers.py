"""onnxruntime time of an inpainting network per block, for several shapes of network.

    python -m benchmarks.inpaint_layers [--net multiscale:4:2 --net cycled:5:8:16,8,4,2,1]

Each ``--net`` is KIND:LAYERS:FILTERS[:DILATIONS] (``nets.InpaintConfig``: for multiscale
FILTERS per dilation, for cycled FILTERS a layer at one dilation in turn). Exports each
network (random weights: time does not depend on them) and runs it single-threaded on a
batch of contexts, as the codec does on one worker for one diagonal, the networks in
alternating rounds; the median round is reported. This is the measurement behind the
compact preset's 4 layers and the cycled network of issue "Decoding at viewer speed". Needs
torch (the [train] extra).
"""

from __future__ import annotations

import statistics
import time

import click
import numpy as np
import onnxruntime as ort
import torch

from ir2icodec.training.export import to_onnx
from ir2icodec.training.nets import CONTEXT, InpaintConfig, InpaintNet, count_parameters

DEFAULT_NETS = ("multiscale:8:2", "multiscale:4:2")


def parse_net(spec: str) -> InpaintConfig:
    """KIND:LAYERS:FILTERS[:D1,D2,...] -> the inpainting network's config."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in ("multiscale", "vanilla", "cycled"):
        raise click.BadParameter(f"{spec!r}: want KIND:LAYERS:FILTERS[:D1,D2,...]")
    try:
        layers, filters = int(parts[1]), int(parts[2])
        extra = {"dilations": tuple(int(d) for d in parts[3].split(","))} if len(parts) == 4 else {}
    except ValueError as e:
        raise click.BadParameter(f"{spec!r}: {e}") from e
    return InpaintConfig(kind=parts[0], layers=layers, filters_per_dilation=filters, **extra)


def _session(cfg: InpaintConfig) -> tuple[int, ort.InferenceSession]:
    net = InpaintNet(cfg).eval()
    graph = to_onnx(net, (torch.zeros(1, 3, CONTEXT, CONTEXT),), ["context"], ["inpainting"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return count_parameters(net), ort.InferenceSession(
        graph, opts, providers=["CPUExecutionProvider"]
    )


def ms_per_block(
    configs: list[InpaintConfig], batch: int, rounds: int = 21
) -> list[tuple[int, float]]:
    """(parameters, median milliseconds per block) of each network, timed in turn."""
    sessions = [_session(cfg) for cfg in configs]
    contexts = np.random.default_rng(0).uniform(-0.5, 0.5, (batch, 3, CONTEXT, CONTEXT))
    feed = {"context": contexts.astype(np.float32)}
    times: list[list[float]] = [[] for _ in sessions]
    for _, sess in sessions:
        sess.run(None, feed)  # warm-up
    for _ in range(rounds):
        for i, (_, sess) in enumerate(sessions):
            start = time.perf_counter()
            sess.run(None, feed)
            times[i].append(time.perf_counter() - start)
    return [
        (params, 1000 * statistics.median(t) / batch) for (params, _), t in zip(sessions, times)
    ]


@click.command()
@click.option(
    "--net",
    "nets",
    multiple=True,
    default=DEFAULT_NETS,
    show_default=True,
    help="KIND:LAYERS:FILTERS[:DILATIONS], e.g. cycled:5:8:16,8,4,2,1.",
)
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=21, show_default=True)
def main(nets: tuple[str, ...], batch: int, rounds: int) -> None:
    """Time inpainting networks of several shapes, in alternating rounds."""
    configs = [parse_net(n) for n in nets]
    click.echo(f"| network | parameters | ms per block (batch {batch}, 1 thread) |")
    click.echo("|---|---|---|")
    for spec, (params, ms) in zip(nets, ms_per_block(configs, batch, rounds)):
        click.echo(f"| {spec} | {params:,} | {ms:.2f} |")


if __name__ == "__main__":
    main()
