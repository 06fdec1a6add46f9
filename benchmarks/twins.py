"""A model against its faster twins (``python -m ir2icodec.training.quantize``): quality on
held-out photos and decode time, side by side.

    python -m benchmarks.twins --data HELDOUT065 --every 4 \\
        --bundle float=models/ir2i-compact-4 --bundle int8-filter=TWIN ... --out FILE

Quality: every ``--every``-th held-out photo (sides >= 161 for MS-SSIM), encoded with every
block at 3 and at 8 stages, decoded with the post-filter; means of bpp, PSNR and MS-SSIM.
Speed: each bundle decodes the uniform 8-stage file of ``--image`` that it encoded itself,
in process, in ``--rounds`` interleaved rounds (alternating who goes first); the median.
Time it on an idle machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

from ir2icodec.codec import decode, encode
from ir2icodec.metrics import ms_ssim, psnr
from ir2icodec.runtime import OnnxModel, load_model

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kodim23.png"
STAGES = (3, 8)


def quality(models: dict[str, OnnxModel], photos: list[np.ndarray]) -> dict[tuple, np.ndarray]:
    """(name, stages) -> mean (bpp, PSNR, MS-SSIM) over the photos."""
    rows: dict[tuple, list] = {}
    for rgb in photos:
        pixels = rgb.shape[0] * rgb.shape[1]
        for name, model in models.items():
            for stages in STAGES:
                data = encode(rgb, model, stages=stages, keep_reconstruction=False).data
                out = decode(data, model).rgb
                rows.setdefault((name, stages), []).append(
                    (len(data) * 8 / pixels, psnr(rgb, out), ms_ssim(rgb, out))
                )
    return {k: np.mean(v, axis=0) for k, v in rows.items()}


def decode_seconds(models: dict[str, OnnxModel], rgb: np.ndarray, rounds: int) -> dict:
    files = {n: encode(rgb, m, stages=8, keep_reconstruction=False).data for n, m in models.items()}
    times: dict[str, list[float]] = {n: [] for n in models}
    order = list(models)
    for r in range(rounds + 1):
        for name in order if r % 2 else order[::-1]:
            start = time.perf_counter()
            decode(files[name], models[name])
            if r:  # round 0 warms every session up
                times[name].append(time.perf_counter() - start)
    return {n: float(np.median(t)) for n, t in times.items()}


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--bundle", "bundles", multiple=True, required=True, help="NAME=DIR, repeated.")
@click.option("--every", type=int, default=4, show_default=True, help="Every k-th photo.")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=str(EXAMPLE))
@click.option("--rounds", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None)
def main(data: str, bundles: tuple[str, ...], every: int, image: str, rounds: int, out: str | None):
    """Quality on held-out photos and decode time of each NAME=DIR bundle."""
    models = {}
    for spec in bundles:
        name, _, path = spec.partition("=")
        models[name] = load_model(path, device="cpu")
    paths = sorted(p for p in Path(data).iterdir() if p.suffix.lower() == ".png")[::every]
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    photos = [p for p in photos if min(p.shape[:2]) >= 161]
    scores = quality(models, photos)
    seconds = decode_seconds(models, np.asarray(Image.open(image).convert("RGB")), rounds)
    first = next(iter(models))
    lines = [
        f"{len(photos)} photos of {data} (every {every}th), every block at 3 and 8 stages, "
        f"post-filter on; decode: {Path(image).name}, 8 stages, median of {rounds} "
        "interleaved rounds, in process.",
        "",
        f"| bundle | bpp (3 / 8) | PSNR dB (3 / 8) | MS-SSIM (3 / 8) | decode s | vs {first} |",
        "|---|---|---|---|---:|---:|",
    ]
    for name in models:
        lo, hi = scores[(name, 3)], scores[(name, 8)]
        lines.append(
            f"| {name} | {lo[0]:.4f} / {hi[0]:.4f} | {lo[1]:.3f} / {hi[1]:.3f} | "
            f"{lo[2]:.5f} / {hi[2]:.5f} | {seconds[name]:.3f} | "
            f"{seconds[name] / seconds[first]:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    click.echo(text)
    if out:
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
