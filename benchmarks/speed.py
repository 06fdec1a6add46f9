"""Encode/decode speed of a model on one image (768x512 by default), and the wavefront gain.

    python -m benchmarks.speed [--image examples/kodim23.png] [--model DIR] [--repeat 3]

Times encode and decode at 2, 4 and 8 stages (median of --repeat runs, after one warm-up;
decode as ``ir2i decode`` runs it, post-filter included), the post-filter's share of
decoding 8 stages (a filtered decode, ``--no-filter`` and the filter alone, alternating), a
rate-controlled file at --target-bpp (per-block stage counts, what ``ir2i encode`` writes)
beside the uniform 4-stage file and a rate-controlled file of that file's size (entropy
coding makes 4 uniform stages smaller than the 0.5 bpp they were in raw bits, so a file of
the same size is the like-for-like decode comparison; these three decodes alternate), and
the first-code decode in diagonal-wavefront order against one block at a time in raster
order. Prints a markdown table (also written to --out if given).

    python -m benchmarks.speed --baseline 8714341 [--decode-rounds 11]

times instead this checkout's decode against an earlier revision's, each with its own
default model and its own file (``benchmarks/revisions.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import onnxruntime as ort

from ir2icodec.codec import decode, encode
from ir2icodec.imageio import read_image_file
from ir2icodec.postfilter import apply as apply_postfilter
from ir2icodec.runtime import load_model

DEFAULT_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "kodim23.png"


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    return _interleaved_median_seconds([fn], repeat)[0]


def _interleaved_median_seconds(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each of ``fns`` over ``repeat`` rounds, after one warm-up call each
    (session creation and first-run allocations are not steady-state cost). The functions
    take turns within every round, so a drift of this machine's speed (20-40% within an
    hour) hits all of them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            t = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t)
    return [statistics.median(spent) for spent in times]


@click.command()
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False),
    default=str(DEFAULT_IMAGE),
    show_default=True,
)
@click.option("--model", "model_path", default=None, help="Bundle (default: shipped model).")
@click.option("--threads", type=int, default=None, help="onnxruntime threads (default: all).")
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option(
    "--target-bpp",
    type=float,
    default=0.5,
    show_default=True,
    help="Size of the rate-controlled file.",
)
@click.option(
    "--decode-rounds",
    type=click.IntRange(min=1),
    default=11,
    show_default=True,
    help="Rounds of the alternating measurements (decode with and without the "
    "post-filter and the filter alone; the decodes of rate-controlled and uniform "
    "files): their differences are a few percent, so they need more than --repeat.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where onnxruntime runs the networks (cuda: onnxruntime-gpu).",
)
@click.option(
    "--baseline",
    default=None,
    metavar="REV",
    help="Instead: time the decode of git revision REV (a temporary worktree, its own "
    "default model) against this checkout's, --decode-rounds interleaved rounds, in "
    "process and as the whole `ir2i decode` process (benchmarks/revisions.py).",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the table here.")
def main(
    image: str,
    model_path: str | None,
    threads: int | None,
    repeat: int,
    target_bpp: float,
    decode_rounds: int,
    device: str,
    baseline: str | None,
    out: str | None,
) -> None:
    if baseline is not None:
        from .revisions import compare, table

        if model_path is not None or device != "cpu":
            raise click.UsageError("--baseline times each revision's default model on the CPU")
        _emit(table(compare(baseline, Path(image), decode_rounds, threads)), out)
        return
    model = load_model(model_path, device=device, threads=threads)
    rgb = read_image_file(image).rgb
    h, w = rgb.shape[:2]
    rows = [
        f"Model `{model.name}`, image {Path(image).name} ({w}x{h}), onnxruntime "
        f"{ort.__version__} {device.upper()}, threads: {threads or 'default'}, median of "
        f"{repeat} "
        f"({decode_rounds} alternating rounds for the rows compared with each other).",
        "",
        "| operation | stages | seconds |",
        "|---|---|---|",
    ]
    data8 = encode(rgb, model, 8).data
    for stages in (2, 4, 8):
        enc = _median_seconds(lambda s=stages: encode(rgb, model, s), repeat)
        dec = _median_seconds(lambda s=stages: decode(data8, model, max_stages=s), repeat)
        rows += [f"| encode | {stages} | {enc:.3f} |", f"| decode | {stages} | {dec:.3f} |"]
    if model.postfilter_spec is not None:
        raw8 = decode(data8, model, postfilter=False)
        # Alternating with a filtered decode, so that the three rows add up on this machine.
        filtered, unfiltered, alone = _interleaved_median_seconds(
            [
                lambda: decode(data8, model),
                lambda: decode(data8, model, postfilter=False),
                lambda: apply_postfilter(raw8.rgb, raw8.stage_map, model),
            ],
            decode_rounds,
        )
        rows += [
            f"| decode, alternating with the next two rows | 8 | {filtered:.3f} |",
            f"| decode --no-filter | 8 | {unfiltered:.3f} |",
            f"| post-filter alone ({alone / (unfiltered + alone):.0%} of decoding 8 "
            f"stages) | 8 | {alone:.3f} |",
        ]
    uniform4 = encode(rgb, model, 4).data
    controlled = encode(rgb, model, target_bpp=target_bpp).data
    enc = _median_seconds(lambda: encode(rgb, model, target_bpp=target_bpp), repeat)
    bpp, bpp4 = 8 * len(controlled) / (w * h), 8 * len(uniform4) / (w * h)
    same_size = encode(rgb, model, target_bpp=bpp4).data
    dec, dec4, dec_same = _interleaved_median_seconds(
        [lambda f=f: decode(f, model) for f in (controlled, uniform4, same_size)], decode_rounds
    )
    rows += [
        f"| encode, rate control to {target_bpp:g} bpp ({bpp:.3f} reached) | per block "
        f"| {enc:.3f} |",
        f"| decode of that file | per block | {dec:.3f} |",
        f"| decode of the uniform 4-stage file ({bpp4:.3f} bpp) | 4 | {dec4:.3f} |",
        f"| decode of a rate-controlled file of that size ({8 * len(same_size) / (w * h):.3f}"
        f" bpp) | per block | {dec_same:.3f} |",
    ]
    first = {"max_stages": 2, "postfilter": False}
    wave = _median_seconds(lambda: decode(data8, model, **first), repeat)
    raster = _median_seconds(
        lambda: decode(data8, model, **first, schedule="raster"), max(1, repeat // 2)
    )
    same = np.abs(
        decode(data8, model, **first).rgb.astype(int)
        - decode(data8, model, **first, schedule="raster").rgb.astype(int)
    ).max()
    rows += [
        "",
        "| first code (stages 1-2) decode | seconds |",
        "|---|---|",
        f"| diagonal wavefront (one batch per anti-diagonal) | {wave:.3f} |",
        f"| raster, one block at a time | {raster:.3f} |",
        f"| speed-up | {raster / wave:.1f}x (max pixel difference {same}) |",
    ]
    _emit("\n".join(rows), out)


def _emit(text: str, out: str | None) -> None:
    click.echo(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    main()
