"""Per-block stage counts below 2 (issue 8): an upper bound on what they could buy.

    python -m experiments.stage_floor --data heldout_full --model models/ir2i-compact-3 \
        --out results/rate-control/stage-floor-heldout.md

Today every block gets at least the first code (stages 1-2): a block's inpainting context is
its neighbours' stage-2 reconstruction, so the wavefront codes both stages of every block.
This asks what letting a block stop at 0 stages (its inpainting alone) or at 1 could buy. Per
block it measures the distortion after 0 and 1 stages (inpainting from the real stage-2 context
picture, stage 1 decoded from the real first code) next to today's 2..S, then runs the same
Lagrangian (``ratecontrol.allocate``, 128 raw bits per stage, the default ``msssim`` block
distortion) with floors 0, 1 and 2 over a sweep of multipliers. Real files would do worse:
a block coded with fewer than 2 stages would give the blocks after it a poorer context, which
this ignores, and the rates are raw bits (no entropy coding). So the result is an upper
bound: the BD-rate of floors 0 and 1 against floor 2 (today), per image on their common
quality range, for MS-SSIM and PSNR of the unfiltered picture.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ir2icodec import blocks as blk
from ir2icodec.bdrate import bd_rate
from ir2icodec.codec import StageAnalysis, analyse
from ir2icodec.container import FIRST_CODE_STAGES, Header
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import MS_SSIM_MIN_SIDE, psnr, ssim_and_ms_ssim
from ir2icodec.ratecontrol import allocate, block_distortion, quality_to_lambda
from ir2icodec.runtime import OnnxModel, load_model

from .common import images_in

FLOORS = (0, 1, 2)
# Multipliers: today's --quality 50 times 2^e, from nearly every stage to nearly none.
OCTAVES = np.arange(-3.5, 6.51, 0.5)


def floor_table(
    analysis: StageAnalysis, rgb: np.ndarray, model: OnnxModel
) -> tuple[np.ndarray, np.ndarray]:
    """Each block's distortion (n_blocks, S + 1) and 8-bit pixels (S + 1, n_blocks, b, b, 3)
    after n = 0..S stages; n = 0 is the inpainting, from the stage-2 context picture."""
    header = analysis.header
    if analysis.pixels is None:
        raise ValueError("the analysis must keep its stage pixels")
    b, by, bx = header.block_size, header.blocks_y, header.blocks_x
    coords = blk.raster_coords(by, bx)
    context_picture = np.zeros((by * b, bx * b, 3), np.uint8)
    blk.place_blocks(context_picture, coords, analysis.pixels[0], b)  # stage 2, every block
    inpainting = model.inpaint(blk.contexts(context_picture, coords, b))
    first = np.where(analysis.stage_bits[0] > 0, 1.0, -1.0).astype(np.float32)
    stage1, _ = model.decode_stage(1, first.reshape(-1, *model.code_shape), inpainting, None)
    low = np.stack([blk.to_uint8(inpainting), blk.to_uint8(stage1)])
    originals = blk.image_blocks(rgb, b)
    inside = blk.inside_blocks(header.height, header.width, b)
    low_distortion = [block_distortion(originals, p, inside, analysis.kind) for p in low]
    return (
        np.column_stack([*low_distortion, analysis.distortion]),
        np.concatenate([low, analysis.pixels]),
    )


def floor_curve(
    table: np.ndarray, pixels: np.ndarray, header: Header, rgb: np.ndarray, floor: int, kind: str
) -> np.ndarray:
    """(len(OCTAVES), 3): raw bpp, PSNR and MS-SSIM of the picture of each multiplier's
    allocation, every block's count in floor..S."""
    b, by, bx = header.block_size, header.blocks_y, header.blocks_x
    coords = blk.raster_coords(by, bx)
    picture = np.empty((by * b, bx * b, 3), np.uint8)
    points = []
    default = quality_to_lambda(50, kind)
    for octave in OCTAVES:
        lam = default * 2.0**octave
        counts = allocate(table[:, floor:], lam, header.bits_per_stage, floor).astype(np.intp)
        blk.place_blocks(picture, coords, pixels[counts, np.arange(len(counts))], b)
        shown = picture[: header.height, : header.width]
        bpp = header.bits_per_stage * counts.sum() / (header.width * header.height)
        points.append((bpp, psnr(rgb, shown), ssim_and_ms_ssim(rgb, shown)[1]))
    return np.array(points)


@click.command()
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="Photos (held-out ones: python -m ir2icodec.training.holdout).",
)
@click.option("--model", default=None, help="Model bundle (default: the shipped one).")
@click.option("--limit", type=int, default=None, help="Only the first N images.")
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Also write the table here."
)
def main(data: str, model: str | None, limit: int | None, out: str | None) -> None:
    """Upper bound of per-block stage counts below 2, as BD-rate against today's floor."""
    net = load_model(model)
    files, _ = images_in(Path(data), limit)
    bds: dict[int, list[tuple[float, float]]] = {f: [] for f in FLOORS[:-1]}
    below_two = []
    for f in tqdm(files, desc="images", mininterval=5.0):
        rgb = load_rgb(f)
        if min(rgb.shape[:2]) < MS_SSIM_MIN_SIDE:
            continue
        analysis = analyse(rgb, net)
        table, pixels = floor_table(analysis, rgb, net)
        curves = {
            floor: floor_curve(table, pixels, analysis.header, rgb, floor, analysis.kind)
            for floor in FLOORS
        }
        today = curves[FIRST_CODE_STAGES]
        for floor in FLOORS[:-1]:
            c = curves[floor]
            bds[floor].append(
                (
                    bd_rate(today[:, 0], today[:, 2], c[:, 0], c[:, 2]),
                    bd_rate(today[:, 0], today[:, 1], c[:, 0], c[:, 1]),
                )
            )
        counts = allocate(
            table, quality_to_lambda(50, analysis.kind), analysis.header.bits_per_stage, 0
        )
        below_two.append(float(np.mean(counts < FIRST_CODE_STAGES)))
    lines = [
        f"Per-block stage counts below 2, an upper bound (contexts stay stage-2, raw bits): "
        f"model `{net.name}`, {len(below_two)} images of `{data}`, BD-rate against "
        "today's floor of 2 stages (negative = fewer bits), mean over images of each "
        "image's BD-rate on the common range, unfiltered pictures.",
        "",
        "| floor | MS-SSIM BD-rate | PSNR BD-rate | images |",
        "|---|---:|---:|---:|",
    ]
    for floor in FLOORS[:-1]:
        values = np.array(bds[floor], dtype=float)
        ms, ps = (np.nanmean(values[:, i]) for i in (0, 1))
        lines.append(
            f"| {floor} | {ms:+.1f}% | {ps:+.1f}% | {int(np.isfinite(values[:, 0]).sum())} |"
        )
    lines += [
        "",
        f"At today's --quality 50 multiplier, floor 0 would code "
        f"{100 * np.mean(below_two):.1f}% of the blocks with fewer than 2 stages.",
    ]
    text = "\n".join(lines) + "\n"
    click.echo(text, nl=False)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
