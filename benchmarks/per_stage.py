"""Per-stage quality of an ir2i model beside JPEG at the same bits per pixel.

    python -m benchmarks.per_stage --data ../shared/data/kodak --out results/kodak-stages

For each image and each stage count 2..8: ir2i's bpp (every byte of the file), PSNR and
MS-SSIM of the bit-exact reconstruction (``--no-filter``) and, when the model has a
post-filter, of the filtered picture that ``ir2i decode`` shows; then JPEG
(Pillow/libjpeg-turbo, 4:2:0, optimize) at the highest quality whose file is no larger than
ir2i's. Writes per_stage.csv and per_stage.md (means over the images).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ir2icodec.bench.codecs import codec_registry, jpeg_at_most
from ir2icodec.bench.rd import find_images
from ir2icodec.codec import encode
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import psnr, ssim_and_ms_ssim
from ir2icodec.postfilter import apply as apply_postfilter
from ir2icodec.runtime import load_model


@dataclass(frozen=True)
class Row:
    image: str
    stages: int
    ir2i_bpp: float
    ir2i_psnr: float
    ir2i_ms_ssim: float
    jpeg_quality: int
    jpeg_bpp: float
    jpeg_psnr: float
    jpeg_ms_ssim: float
    filtered_psnr: float = float("nan")  # nan: the model has no post-filter
    filtered_ms_ssim: float = float("nan")


def measure(path: Path, model, jpeg) -> list[Row]:
    rgb = load_rgb(path)
    pixels = rgb.shape[0] * rgb.shape[1]
    rows = []
    for stages in range(2, model.stages + 1):
        result = encode(rgb, model, stages)  # its reconstruction is what --no-filter shows
        q, jdata = jpeg_at_most(rgb, len(result.data), jpeg)
        jrgb = jpeg.decode(jdata)
        filtered = ()
        if model.postfilter_spec is not None:  # a pure function of what the decoder has
            picture = apply_postfilter(result.reconstruction, result.stage_map, model)
            filtered = (psnr(rgb, picture), ssim_and_ms_ssim(rgb, picture)[1])
        rows.append(
            Row(
                path.name,
                stages,
                8 * len(result.data) / pixels,
                psnr(rgb, result.reconstruction),
                ssim_and_ms_ssim(rgb, result.reconstruction)[1],
                q,
                8 * len(jdata) / pixels,
                psnr(rgb, jrgb),
                ssim_and_ms_ssim(rgb, jrgb)[1],
                *filtered,
            )
        )
    return rows


def markdown(rows: list[Row], model_name: str, n_images: int) -> str:
    filtered = not np.isnan(rows[0].filtered_psnr)
    head = "| stages | ir2i bpp | ir2i PSNR | ir2i MS-SSIM |"
    if filtered:
        head += " filtered PSNR | filtered MS-SSIM |"
    out = [
        f"Model `{model_name}` on {n_images} images (means); ir2i = the bit-exact "
        "reconstruction (`--no-filter`)"
        + (", filtered = what `ir2i decode` shows." if filtered else "."),
        "",
        head + " JPEG bpp | JPEG PSNR | JPEG MS-SSIM |",
        "|---" * (head.count("|") + 2) + "|",
    ]
    for stages in sorted({r.stages for r in rows}):
        sel = [r for r in rows if r.stages == stages]

        def mean(attr: str, sel=sel) -> float:
            return float(np.mean([getattr(r, attr) for r in sel]))

        line = (
            f"| {stages} | {mean('ir2i_bpp'):.3f} | {mean('ir2i_psnr'):.2f} | "
            f"{mean('ir2i_ms_ssim'):.4f} |"
        )
        if filtered:
            line += f" {mean('filtered_psnr'):.2f} | {mean('filtered_ms_ssim'):.4f} |"
        out.append(
            line + f" {mean('jpeg_bpp'):.3f} | {mean('jpeg_psnr'):.2f} | "
            f"{mean('jpeg_ms_ssim'):.4f} |"
        )
    return "\n".join(out) + "\n"


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--model", "model_path", default=None, help="Bundle (default: shipped model).")
@click.option("--limit", type=int, default=None, help="Only the first N images.")
def main(data: str, out: str, model_path: str | None, limit: int | None) -> None:
    model = load_model(model_path)
    jpeg = codec_registry()["jpeg"].open()
    images, _ = find_images(Path(data), limit)
    rows: list[Row] = []
    for path in tqdm(images, desc="images"):
        rows.extend(measure(path, model, jpeg))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_stage.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    text = markdown(rows, model.name, len(images))
    (out_dir / "per_stage.md").write_text(text)
    click.echo(text)


if __name__ == "__main__":
    main()
