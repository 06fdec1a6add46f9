"""Write the held-out training photos as PNGs, to choose between trained models on them.

The photos ``train`` holds out (a stable split by file name) never reach the optimiser; this
copies them, downsampled like the validation windows, into a folder that
``python -m ir2icodec.bench.rd --data`` or ``benchmarks.per_stage`` can measure. Kodak stays for
reporting only.
"""

from __future__ import annotations

from pathlib import Path

import click
from PIL import Image

from .data import VALIDATION_SCALE, list_images, load_rgb, rescale, split_images


def write_holdout(
    data: list[str],
    out: Path,
    holdout_percent: float = 5.0,
    scale: float = VALIDATION_SCALE,
    limit: int | None = None,
) -> list[Path]:
    """Save the held-out photos of ``data`` (rescaled by ``scale``) as PNG files in ``out``."""
    _, held = split_images(list_images(data), holdout_percent)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in held[:limit]:
        target = out / f"{path.stem}.png"
        Image.fromarray(rescale(load_rgb(path), scale)).save(target)
        written.append(target)
    return written


@click.command()
@click.option(
    "--data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The training folder(s), as given to train.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option(
    "--scale",
    type=float,
    default=VALIDATION_SCALE,
    show_default=True,
    help="Downsampling factor (training crops use 0.5-0.8).",
)
@click.option("--limit", type=int, default=None, help="At most this many photos.")
def main(
    data: tuple[str, ...], out: Path, holdout_percent: float, scale: float, limit: int | None
) -> None:
    """Write the photos held out of training as PNGs."""
    written = write_holdout(list(data), out, holdout_percent, scale, limit)
    click.echo(f"{len(written)} held-out photos written to {out}")


if __name__ == "__main__":
    main()
