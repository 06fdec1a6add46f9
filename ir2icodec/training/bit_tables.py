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
from pathlib import Path

import click
from tqdm import tqdm

from .. import bittables
from ..codec import analyse
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
def main(
    bundle: str,
    data: tuple[str, ...],
    photos: int,
    scale: float,
    weight: int,
    holdout_percent: float,
) -> None:
    """Count the bundle's bit tables on training photos and add them to it."""
    model = load_model(bundle, device="cpu")
    files = training_photos(list(data), photos, holdout_percent)

    def codes():
        for path in tqdm(files, desc="coding photos"):
            rgb = rescale(load_rgb(path), scale)
            yield analyse(rgb, model, keep_pixels=False).stage_bits

    ones, totals = bittables.count_contexts(codes(), model.code_shape)
    tables = bittables.tables_from_counts(ones, totals, weight)
    about = {"weight": weight, "photos": len(files), "scale": scale}
    digest = add_tables(Path(bundle), tables, about)
    click.echo(
        f"{bittables.TABLES_FILE} ({digest[:12]}) from {len(files)} photos, "
        f"{int(totals.sum())} bits, weight {weight}"
    )


if __name__ == "__main__":
    main()
