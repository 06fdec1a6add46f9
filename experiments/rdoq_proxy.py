"""Rate-distortion optimised binarization, estimated on held-out windows (issue "Codes worth
their bits").

The encoder sends sign(tanh(.)) of each code value. A value near 0 is a bit the encoder is
nearly indifferent to, and if the bit model predicts the other value, sending that one
saves bits for little distortion; the next stage sees the error and codes it (as video
encoders' rate-distortion optimised quantisation does). The decoder is unchanged: it decodes
whatever bits were sent.

This estimates the trade on the pack's held-out windows before anything is built into the
codec: each stage's bits are decided position by position in the coder's order, the context
of each from the bits already decided; a bit is flipped to the predicted value when its code
value is within ``threshold`` of 0 (times the bits saved, with ``--scaled``). Rate is the
ideal code length under the model bundle's bit tables as starting probabilities (the static
part of format version 3's coder). Proxy BD-rates of every threshold against plain signs,
as ``experiments.rate_curve`` computes them.

    python -m experiments.rdoq_proxy --model models/ir2i-compact-4 --pack PACK.npz
"""

from __future__ import annotations

import click
import numpy as np
import torch

from ir2icodec.entropy import COUNT_SCALE, OUTSIDE
from ir2icodec.runtime import load_model
from ir2icodec.training.data import make_training_pair
from ir2icodec.training.losses import block_msssim
from ir2icodec.training.nets import ProgressiveCoder
from ir2icodec.training.pack import load_pack
from ir2icodec.training.recover import state_from_bundle

from .rate_curve import proxy_bd

COARSE = 81


def table_probabilities(model_dir: str) -> np.ndarray:
    """(stages, channels * 81) P(bit = 1) of the bundle's bit tables (KT, as the coder)."""
    tables = load_model(model_dir).bit_tables
    if tables is None:
        raise click.ClickException(f"{model_dir} has no bit tables")
    half = COUNT_SCALE // 2
    ones, zeros = tables.ones.astype(np.float64), tables.zeros.astype(np.float64)
    return (2 * ones + 2 * half) / (2 * (ones + zeros) + 4 * half)


def decide_bits(
    values: torch.Tensor,
    previous: torch.Tensor | None,
    p_one: torch.Tensor,
    threshold: float,
    scaled: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 0/1 bits to send for (N, C, H, W) code ``values`` in [-1, 1], in the coder's order
    (channel, row, column), and each block's ideal cost in bits under ``p_one``."""
    n, channels, rows, cols = values.shape
    bits = (values >= 0).long()
    cost = torch.zeros(n, dtype=torch.float64)
    outside = torch.full((n,), OUTSIDE, dtype=torch.long)
    for c in range(channels):
        for y in range(rows):
            for x in range(cols):
                west = bits[:, c, y, x - 1] if x else outside
                north = bits[:, c, y - 1, x] if y else outside
                chan = bits[:, c - 1, y, x] if c else outside
                prev = previous[:, c, y, x] if previous is not None else outside
                ctx = c * COARSE + ((west * 3 + north) * 3 + chan) * 3 + prev
                p1 = p_one[ctx]
                likely = (p1 >= 0.5).long()
                p_likely = torch.where(likely == 1, p1, 1 - p1)
                saved = torch.log2(p_likely / (1 - p_likely))
                margin = values[:, c, y, x].abs().double()
                limit = threshold * saved if scaled else torch.full_like(saved, threshold)
                flip = (bits[:, c, y, x] != likely) & (margin < limit)
                bits[:, c, y, x] = torch.where(flip, likely, bits[:, c, y, x])
                p_sent = torch.where(bits[:, c, y, x] == 1, p1, 1 - p1)
                cost -= torch.log2(p_sent)
    return bits, cost


@torch.no_grad()
def measure(
    coder: ProgressiveCoder,
    windows: np.ndarray,
    p_one: np.ndarray,
    threshold: float,
    scaled: bool,
) -> dict:
    """Per stage: PSNR, block MS-SSIM and cost (fraction of raw bits) over ``windows``."""
    stages = coder.cfg.stages
    sse, msssim, bits_sum = np.zeros(stages), np.zeros(stages), np.zeros(stages)
    pixels = blocks_seen = 0
    tables = torch.from_numpy(p_one)
    for i in range(0, len(windows), 256):
        blocks, contexts = make_training_pair(windows[i : i + 256])
        block = torch.from_numpy(blocks)
        inpainting = (
            coder.inpaint(torch.from_numpy(contexts))
            if coder.inpaint is not None
            else torch.zeros_like(block)
        )
        residual = block - inpainting
        enc_state = dec_state = previous = None
        for s in range(stages):
            values, enc_state = coder.stages[s].encoder(residual, enc_state)
            bits, cost = decide_bits(values, previous, tables[s], threshold, scaled)
            code = bits.float() * 2 - 1
            recon, _, dec_state = coder.stage_decode(s, code, inpainting, dec_state)
            residual = block - recon
            previous = bits
            r = recon.clamp(-0.5, 0.5)
            sse[s] += torch.sum((r - block) ** 2).item()
            msssim[s] += block_msssim(r, block).item() * len(block)
            bits_sum[s] += cost.sum().item()
        pixels += block.numel()
        blocks_seen += len(block)
    code_bits = int(np.prod(values.shape[1:]))
    return {
        "psnr": [10 * np.log10(1 / (e / pixels)) for e in sse],
        "msssim": list(msssim / blocks_seen),
        "rate": list(bits_sum / blocks_seen / code_bits),
    }


@click.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--pack", "pack_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--windows", default=1024, show_default=True, help="held-out windows used")
@click.option("--thresholds", default="0.02,0.05,0.1,0.2", show_default=True)
@click.option("--scaled", is_flag=True, help="threshold x the bits a flip saves")
@click.option("--threads", default=1, show_default=True)
def main(
    model_dir: str, pack_path: str, windows: int, thresholds: str, scaled: bool, threads: int
) -> None:
    """Proxy BD-rate of rate-distortion optimised binarization against plain signs."""
    torch.set_num_threads(threads)
    cfg, weights = state_from_bundle(model_dir)
    coder = ProgressiveCoder(cfg)
    coder.load_state_dict(weights, strict=False)  # stage 1 has no links in the graphs
    coder.eval()
    held_out = load_pack(pack_path).validation[:windows]
    p_one = table_probabilities(model_dir)
    anchor = measure(coder, held_out, p_one, 0.0, scaled)
    click.echo("threshold  rate(8)  msssim(8)  psnr(8)  BD-msssim  BD-psnr  rate per stage")
    for t in [0.0, *(float(x) for x in thresholds.split(","))]:
        entry = anchor if t == 0 else measure(coder, held_out, p_one, t, scaled)
        bd_m, bd_p = proxy_bd(anchor, entry)
        click.echo(
            f"{t:9.3f} {sum(entry['rate']):8.3f} {entry['msssim'][-1]:10.4f} "
            f"{entry['psnr'][-1]:8.2f} {bd_m:+9.2f}% {bd_p:+7.2f}%  "
            + " ".join(f"{r:.3f}" for r in entry["rate"])
        )


if __name__ == "__main__":
    main()
