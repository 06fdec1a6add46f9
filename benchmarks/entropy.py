"""What entropy coding alone saves: uniform files, range-coded (format 2) against raw bits.

    python -m benchmarks.entropy --data ../shared/data/kodak [--stages 8] [--out results/x.md]

Encodes every image with the same stage count for every block, then writes the very same
codes both ways (``write_container`` with and without stage counts) and compares the bytes,
after checking that the range-coded file reads back to the same bits.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ir2icodec.codec import encode
from ir2icodec.container import read_container, write_container
from ir2icodec.imageio import read_image_file
from ir2icodec.runtime import load_model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def raw_and_coded(rgb: np.ndarray, model, stages: int) -> tuple[int, int]:
    """Bytes of the version-1 (raw bits) and version-2 (range-coded) files of one encoding."""
    coded = encode(rgb, model, stages).data
    container = read_container(coded)
    raw = write_container(container.header, container.stage_bits, container.ancillary)
    if [b.tobytes() for b in read_container(raw).stage_bits] != [
        b.tobytes() for b in container.stage_bits
    ]:
        raise click.ClickException("range-coded and raw files hold different bits")
    return len(raw), len(coded)


@click.command()
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder of images.",
)
@click.option("--stages", type=click.IntRange(2, 8), default=8, show_default=True)
@click.option("--model", "model_path", default=None, help="Bundle (default: shipped model).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the markdown table here.",
)
def main(data: Path, stages: int, model_path: str | None, out: Path | None) -> None:
    """Bytes saved by range coding on uniform --stages files of every image in --data."""
    model = load_model(model_path, device="cpu")
    paths = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise click.ClickException(f"no images in {data}")
    rows = [
        f"Model `{model.name}`, {len(paths)} images from {data.name}, every block "
        f"{stages} stages; saving = 1 - range-coded / raw bytes (whole files).",
        "",
        "| image | raw bytes | range-coded bytes | saving |",
        "|---|---:|---:|---:|",
    ]
    total_raw = total_coded = 0
    for path in tqdm(paths, desc="entropy", unit="image"):
        raw, coded = raw_and_coded(read_image_file(str(path)).rgb, model, stages)
        total_raw, total_coded = total_raw + raw, total_coded + coded
        rows.append(f"| {path.name} | {raw} | {coded} | {100 * (1 - coded / raw):.2f}% |")
    rows.append(
        f"| **all** | {total_raw} | {total_coded} | "
        f"**{100 * (1 - total_coded / total_raw):.2f}%** |"
    )
    text = "\n".join(rows)
    click.echo(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
