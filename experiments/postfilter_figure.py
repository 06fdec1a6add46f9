"""The post-filter's picture for README: one crop at a few stage counts, decoded without and
with the filter, beside JPEG at the same size; each label gives the bpp and the MS-SSIM of
the whole image.

    python -m experiments.postfilter_figure --image examples/kodim23.png \\
        --box 256,40,480,232 --out docs/postfilter-kodim23.png

The whole image is encoded (so each bpp is that of the real file); the crop is enlarged
``--zoom`` times with nearest-neighbour so that the 32x32 block seams stay visible. JPEG is
Pillow/libjpeg-turbo 4:2:0 at the highest quality whose file is no larger than ir2i's.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image

from ir2icodec.bench.codecs import codec_registry, jpeg_at_most
from ir2icodec.codec import decode, encode
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import ssim_and_ms_ssim
from ir2icodec.preview import Frame, labelled
from ir2icodec.runtime import load_model

GAP = 6


def tile(picture: np.ndarray, box: tuple[int, int, int, int], zoom: int, text: str) -> Image.Image:
    left, top, right, bottom = box
    crop = Image.fromarray(picture[top:bottom, left:right])
    crop = crop.resize((crop.width * zoom, crop.height * zoom), Image.Resampling.NEAREST)
    return labelled(Frame(0, 0.0, crop), text)


def grid(rows: list[list[Image.Image]]) -> Image.Image:
    w, h = rows[0][0].size
    out = Image.new("RGB", (len(rows[0]) * (w + GAP) - GAP, len(rows) * (h + GAP) - GAP), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            out.paste(im, (c * (w + GAP), r * (h + GAP)))
    return out


@click.command()
@click.option("--image", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option(
    "--box", default="256,40,480,232", show_default=True, help="Crop: left,top,right,bottom."
)
@click.option("--stages", "stage_counts", default="2,4", show_default=True)
@click.option("--zoom", type=int, default=2, show_default=True)
@click.option("--model", "model_path", default=None, help="Bundle (default: shipped model).")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(
    image: str, box: str, stage_counts: str, zoom: int, model_path: str | None, out: str
) -> None:
    """Crops at each stage count: --no-filter, filtered, JPEG at the same size."""
    model = load_model(model_path)
    if model.postfilter_spec is None:
        raise click.ClickException(f"model {model.name} has no post-filter")
    jpeg = codec_registry()["jpeg"].open()
    rgb = load_rgb(Path(image))
    pixels = rgb.shape[0] * rgb.shape[1]
    crop_box = tuple(int(v) for v in box.split(","))
    rows = []
    for k in (int(v) for v in stage_counts.split(",")):
        data = encode(rgb, model, k).data
        bpp = 8 * len(data) / pixels
        raw = decode(data, model, postfilter=False).rgb
        shown = decode(data, model).rgb
        quality, jdata = jpeg_at_most(rgb, len(data), jpeg)
        jrgb = jpeg.decode(jdata)

        def caption(name: str, picture: np.ndarray, size: float) -> str:
            # MS-SSIM of the whole image, not of the crop
            return f"{name}  {size:.3f} bpp  {ssim_and_ms_ssim(rgb, picture)[1]:.4f}"

        rows.append(
            [
                tile(raw, crop_box, zoom, caption(f"{k} st. raw", raw, bpp)),
                tile(shown, crop_box, zoom, caption(f"{k} st. filtered", shown, bpp)),
                tile(
                    jrgb, crop_box, zoom, caption(f"JPEG q{quality}", jrgb, 8 * len(jdata) / pixels)
                ),
            ]
        )
    grid(rows).save(out, optimize=True)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
