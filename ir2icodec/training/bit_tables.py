"""Count a model's bit tables on training photos and add them to its bundle (format version 3).

    python -m ir2icodec.training.bit_tables --model models/ir2i-compact-4 \
        --data ../shared/data/train --photos 120

The photos are the training folder's, without the held-out ones (``data.split_images``), at
the held-out photos' scale; each is coded by the bundle's own exported networks (every stage
of every block), and the bits of each stage are counted per fine context
(``bittables.count_contexts``). The tables go into the bundle as ``bit_tables.npy`` with a
manifest entry; the bundle digest does not change, so the model's earlier files still decode,
and its encoder writes format version 3 from then on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from .. import bittables
from ..codec import analyse
from ..container import write_container
from ..manifest import MANIFEST_NAME
from ..runtime import load_model
from .data import VALIDATION_SCALE, list_images, load_rgb, rescale, split_images


def training_photos(data: list[str], photos: int, holdout_percent: float = 5.0) -> list[Path]:
    """``photos`` of the training split, spread evenly over it (never a held-out one)."""
    train, _ = split_images(list_images(data), holdout_percent)
    step = max(1, len(train) // photos)
    return train[::step][:photos]


def add_tables(bundle: Path, tables: bittables.BitTables, about: dict) -> str:
    """Write ``tables`` into ``bundle`` and name them in its manifest; returns their SHA-256."""
    data = bittables.tables_bytes(tables)
    (bundle / bittables.TABLES_FILE).write_bytes(data)
    manifest_path = bundle / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    digest = bittables.sha256(data)
    manifest["bit_tables"] = {"file": bittables.TABLES_FILE, "sha256": digest, **about}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return digest


def weight_comparison(
    model, photos: list[Path], ones: np.ndarray, totals: np.ndarray, weights: list[int]
) -> list[str]:
    """Markdown rows: the code bytes of ``photos`` (as they are, rate control at qualities
    20, 50 and 80) with each weight's tables, against version 2's empty counts."""
    sizes = dict.fromkeys([0, *weights], 0)  # 0: version 2
    tables = {w: bittables.tables_from_counts(ones, totals, w) for w in weights}
    for path in tqdm(photos, desc="comparing weights"):
        analysis = analyse(load_rgb(path), model, keep_pixels=False)
        for quality in (20, 50, 80):
            counts = analysis.counts_for(quality=quality)
            top = int(counts.max())
            header = replace(analysis.header, stages=top)
            bits = analysis.stage_bits[:top]
            sizes[0] += len(write_container(header, bits, stage_counts=counts, version=2))
            for w in weights:
                coded = write_container(header, bits, stage_counts=counts, tables=tables[w])
                sizes[w] += len(coded)
    rows = ["| weight | bytes | against version 2 |", "|---|---:|---:|"]
    rows.append(f"| version 2 (empty counts) | {sizes[0]} | 1.0000 |")
    rows += [f"| {w} | {sizes[w]} | {sizes[w] / sizes[0]:.4f} |" for w in weights]
    return rows


def count_into_bundle(
    bundle: Path,
    data: list[str],
    photos: int = 120,
    scale: float = VALIDATION_SCALE,
    weight: int = bittables.DEFAULT_WEIGHT,
    holdout_percent: float = 5.0,
    compare: tuple[list[Path], list[int]] | None = None,
) -> str:
    """Code ``photos`` training photos with the bundle's own networks, count their bits per
    fine context and add the tables to the bundle (its encoder then writes format version
    3). With ``compare`` (held-out photos, weights), first echo the weight comparison.
    Returns the line that says what was written."""
    model = load_model(bundle, device="cpu")
    files = training_photos(data, photos, holdout_percent)

    def codes():
        for path in tqdm(files, desc="coding photos"):
            rgb = rescale(load_rgb(path), scale)
            yield analyse(rgb, model, keep_pixels=False).stage_bits

    ones, totals = bittables.count_contexts(codes(), model.code_shape)
    if compare is not None:
        held, weights = compare
        click.echo("\n".join(weight_comparison(model, held, ones, totals, weights)))
    tables = bittables.tables_from_counts(ones, totals, weight)
    about = {"weight": weight, "photos": len(files), "scale": scale}
    digest = add_tables(bundle, tables, about)
    return (
        f"{bittables.TABLES_FILE} ({digest[:12]}) from {len(files)} photos, "
        f"{int(totals.sum())} bits, weight {weight}"
    )


@click.command()
@click.option("--model", "bundle", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", multiple=True, required=True, type=click.Path(exists=True))
@click.option("--photos", type=click.IntRange(1), default=120, show_default=True)
@click.option("--scale", type=float, default=VALIDATION_SCALE, show_default=True)
@click.option(
    "--weight",
    type=click.IntRange(0, 4096),
    default=bittables.DEFAULT_WEIGHT,
    show_default=True,
    help="The most observations a context's learned counts are worth.",
)
@click.option("--holdout-percent", type=float, default=5.0, show_default=True)
@click.option(
    "--compare-on",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of held-out photos (python -m ir2icodec.training.holdout): first report "
    "their code bytes with each of --compare-weights against version 2 (how --weight's "
    "default was chosen).",
)
@click.option("--compare-weights", default="4,16,64,256,1024", show_default=True)
def main(
    bundle: str,
    data: tuple[str, ...],
    photos: int,
    scale: float,
    weight: int,
    holdout_percent: float,
    compare_on: Path | None,
    compare_weights: str,
) -> None:
    """Count the bundle's bit tables on training photos and add them to it."""
    compare = None
    if compare_on is not None:
        held = sorted(p for p in compare_on.iterdir() if p.suffix.lower() == ".png")
        compare = (held, [int(w) for w in compare_weights.split(",")])
    click.echo(
        count_into_bundle(
            Path(bundle), list(data), photos, scale, weight, holdout_percent, compare=compare
        )
    )


if __name__ == "__main__":
    main()
