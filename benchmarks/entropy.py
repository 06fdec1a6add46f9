"""What entropy coding alone saves: uniform files, range-coded against raw bits.

    python -m benchmarks.entropy --data ../shared/data/kodak [--stages 8] [--out results/x.md]

Encodes every image with the same stage count for every block, then writes the very same
codes as raw bits (format version 1), range-coded from empty counts (version 2) and, for a
model with bit tables, range-coded from its tables (version 3), and compares the bytes,
after checking that every file reads back to the same bits.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ir2icodec.codec import encode
from ir2icodec.container import chunk_layout, read_container, write_container
from ir2icodec.imageio import read_image_file
from ir2icodec.runtime import load_model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def chunk_sizes(data: bytes) -> np.ndarray:
    """Bytes of each CODE chunk of a file, in stage order (the first holds stages 1-2)."""
    return np.array([c.length for c in chunk_layout(data) if c.type == "CODE"])


def file_sizes(rgb: np.ndarray, model, stages: int) -> dict[str, bytes]:
    """The version-1 (raw bits), version-2 (range-coded from empty counts) and, when the
    model has bit tables, version-3 files of one encoding's codes."""
    coded = encode(rgb, model, stages).data
    tables = model.bit_tables
    container = read_container(coded, tables=tables)
    bits = container.stage_bits
    counts = container.stage_counts
    files = {
        "raw": write_container(container.header, bits, container.ancillary),
        "v2": write_container(
            replace(container.header, model_digest=model.digest),
            bits,
            container.ancillary,
            stage_counts=counts,
            version=2,
        ),
    }
    if tables is not None:
        files["v3"] = coded
    for name, data in files.items():
        back = read_container(data, tables=tables if name == "v3" else None).stage_bits
        if [b.tobytes() for b in back] != [b.tobytes() for b in bits]:
            raise click.ClickException(f"the {name} file holds other bits")
    return files


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
        f"{stages} stages; saving = 1 - range-coded / raw bytes (whole files): version 2 "
        "(counts from zero), version 3 (counts from the model's bit tables, if it has them).",
        "",
        "| image | raw bytes | version 2 bytes | saving | version 3 bytes | saving |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def saving(coded: int, raw: int) -> str:
        return f"{100 * (1 - coded / raw):.2f}%" if coded else "n/a"

    totals = {"raw": 0, "v2": 0, "v3": 0}
    chunks: dict[str, np.ndarray] = {}  # per coding: summed CODE chunk bytes, in stage order
    for path in tqdm(paths, desc="entropy", unit="image"):
        files = file_sizes(read_image_file(str(path)).rgb, model, stages)
        sizes = {name: len(data) for name, data in files.items()}
        for name, data in files.items():
            totals[name] += sizes[name]
            chunks[name] = chunks.get(name, 0) + chunk_sizes(data)
        raw, v2, v3 = sizes["raw"], sizes["v2"], sizes.get("v3", 0)
        rows.append(
            f"| {path.name} | {raw} | {v2} | {saving(v2, raw)} | {v3 or 'n/a'} | "
            f"{saving(v3, raw)} |"
        )
    raw, v2, v3 = totals["raw"], totals["v2"], totals["v3"]
    rows.append(
        f"| **all** | {raw} | {v2} | **{saving(v2, raw)}** | {v3 or 'n/a'} | "
        f"**{saving(v3, raw)}** |"
    )
    rows += [
        "",
        "Per CODE chunk, all images (bytes; the first chunk holds stages 1-2):",
        "",
        "| chunk | raw | version 2 | version 2 / raw | version 3 | version 3 / raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, raw in enumerate(chunks["raw"]):
        v2 = int(chunks["v2"][i])
        v3 = int(chunks["v3"][i]) if "v3" in chunks else 0
        label = "stages 1-2" if i == 0 else f"stage {i + 2}"
        rows.append(
            f"| {label} | {raw} | {v2} | {v2 / raw:.3f} | {v3 or 'n/a'} | "
            + (f"{v3 / raw:.3f} |" if v3 else "n/a |")
        )
    text = "\n".join(rows)
    click.echo(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
