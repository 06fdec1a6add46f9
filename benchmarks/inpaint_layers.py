"""onnxruntime time of the inpainting network per block, by number of multi-scale layers.

    python -m benchmarks.inpaint_layers [--layers 8 --layers 4] [--batch 8]

Exports the compact preset's inpainting network (random weights: time does not depend on
them) at each depth and runs it single-threaded on a batch of contexts, as the codec does
on one worker for one diagonal. This is the measurement behind the compact preset's 4
layers. Needs torch (the [train] extra).
"""

from __future__ import annotations

import time
from dataclasses import replace

import click
import numpy as np
import onnxruntime as ort
import torch

from ir2icodec.training.export import to_onnx
from ir2icodec.training.nets import CONTEXT, PRESETS, InpaintNet, count_parameters


def ms_per_block(layers: int, batch: int, seconds: float = 1.5) -> tuple[int, float]:
    """(parameters, milliseconds per block) of the compact inpainting net with ``layers``."""
    net = InpaintNet(replace(PRESETS["compact"].inpaint, layers=layers)).eval()
    graph = to_onnx(net, (torch.zeros(1, 3, CONTEXT, CONTEXT),), ["context"], ["inpainting"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    contexts = np.random.default_rng(0).uniform(-0.5, 0.5, (batch, 3, CONTEXT, CONTEXT))
    feed = {"context": contexts.astype(np.float32)}
    sess.run(None, feed)  # warm-up
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < seconds:
        sess.run(None, feed)
        runs += 1
    return count_parameters(net), 1000 * (time.perf_counter() - start) / runs / batch


@click.command()
@click.option(
    "--layers",
    "depths",
    type=click.IntRange(1, 64),
    multiple=True,
    default=(8, 4),
    show_default=True,
)
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
def main(depths: tuple[int, ...], batch: int) -> None:
    """Time the compact inpainting network at several depths."""
    click.echo(f"| layers | parameters | ms per block (batch {batch}, 1 thread) |")
    click.echo("|---|---|---|")
    for layers in depths:
        params, ms = ms_per_block(layers, batch)
        click.echo(f"| {layers} | {params:,} | {ms:.2f} |")


if __name__ == "__main__":
    main()
