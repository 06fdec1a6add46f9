"""The training losses: per-stage distortion (L2, block MS-SSIM, their mix), the inpainting
term of eq. 4, and the rate term (``rate.py``), computed in fp32."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..ratecontrol import MSSSIM_WEIGHTS  # MS-SSIM's first three scales, one owner
from .nets import CoderOutput
from .rate import rate_term


def _gaussian(size: int, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def _blur(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian of each channel ('valid': the window stays inside the block), as
    weighted sums of shifted slices: for a 3-tap window on 3 channels this is a little faster
    than depthwise convolutions in eager mode, and torch.compile fuses it with the SSIM
    arithmetic around it, which it cannot do with a convolution (``--compile-loss``: the
    loss's forward and backward took 283 instead of 449 ms at batch 256 in a one-off paired
    A/B)."""
    k = g.shape[0]
    h, w = t.shape[-2] - k + 1, t.shape[-1] - k + 1
    across = t[..., :w] * g[0]
    for i in range(1, k):
        across = across + t[..., i : i + w] * g[i]
    down = across[..., :h, :] * g[0]
    for i in range(1, k):
        down = down + across[..., i : i + h, :] * g[i]
    return down


@dataclass(frozen=True)
class MsssimReference:
    """The reference block's side of ``block_msssim`` at each scale: the pixels (in [0, 1]),
    their local means and variances. The same for every stage of a batch, so the loss
    computes it once instead of eight times."""

    pixels: list[torch.Tensor]
    means: list[torch.Tensor]
    variances: list[torch.Tensor]
    window: torch.Tensor


def msssim_reference(
    y: torch.Tensor, win: int = 3, scales: int = len(MSSSIM_WEIGHTS)
) -> MsssimReference:
    """``block_msssim``'s statistics of the reference ``y`` (pixels in [-0.5, 0.5])."""
    g = _gaussian(win).to(y)
    pixels, means, variances = [], [], []
    y = y + 0.5
    for i in range(scales):
        if i:
            y = F.avg_pool2d(y, 2)
        my = _blur(y, g)
        pixels.append(y)
        means.append(my)
        variances.append(_blur(y * y, g) - my**2)
    return MsssimReference(pixels, means, variances, g)


def block_msssim(
    x: torch.Tensor,
    y: torch.Tensor,
    win: int = 3,
    weights: tuple[float, ...] = MSSSIM_WEIGHTS,
    reference: MsssimReference | None = None,
) -> torch.Tensor:
    """MS-SSIM adapted to 32x32 blocks, as a training loss: 3 scales and a 3x3 Gaussian window
    (the standard 5 scales with an 11x11 window need 161+ pixels). Pixels in [-0.5, 0.5];
    ``reference``, if given, is ``msssim_reference(y, win, len(weights))``.
    Evaluation always uses the standard MS-SSIM of ``ir2icodec.metrics``."""
    ref = reference if reference is not None else msssim_reference(y, win, len(weights))
    g = ref.window
    w = torch.tensor(weights, dtype=x.dtype, device=x.device)
    w = w / w.sum()
    x = x + 0.5
    result = x.new_ones(x.shape[0])
    for i in range(len(weights)):
        if i:
            x = F.avg_pool2d(x, 2)
        y, my, syy = ref.pixels[i], ref.means[i], ref.variances[i]
        mx = _blur(x, g)
        sxx, sxy = _blur(x * x, g) - mx**2, _blur(x * y, g) - mx * my
        cs = ((2 * sxy + SSIM_C2) / (sxx + syy + SSIM_C2)).mean(dim=(1, 2, 3))
        if i == len(weights) - 1:
            lum = ((2 * mx * my + SSIM_C1) / (mx**2 + my**2 + SSIM_C1)).mean(dim=(1, 2, 3))
            cs = cs * lum
        result = result * F.relu(cs) ** w[i]
    return result.mean()


MsssimFn = Callable[..., torch.Tensor]  # block_msssim, or a compiled copy of it


def compiled_msssim() -> MsssimFn:
    """``block_msssim`` under torch.compile: the blurs and the SSIM arithmetic become a few
    fused loops. Compiles at its first call (20-45 s on 2 cores, per process; needs a C++
    compiler on the CPU) and for each new batch size, so use it for training steps only."""
    return torch.compile(block_msssim)


def coder_loss(
    out: CoderOutput,
    block: torch.Tensor,
    kind: str,
    joint: bool,
    msssim: MsssimFn = block_msssim,
    stage_bits: list[torch.Tensor] | None = None,
    rate_weight: float = 0.0,
    rate_stage_scales: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Eq. 1/2/4: the sum over stages of each stage's distortion (+ inpainting loss if joint),
    plus ``rate_weight`` times the estimated rate when ``stage_bits`` (``rate.BitModel``) are
    given, each stage's scaled by ``rate_stage_scales`` when given. ``msssim`` computes
    ``block_msssim`` (e.g. ``compiled_msssim()``)."""
    total = block.new_zeros(())
    if stage_bits is not None and rate_weight:
        total = total + rate_weight * rate_term(
            stage_bits, out.codes[0][0].numel(), rate_stage_scales
        )
    # The MS-SSIM term runs on contiguous copies: on the channels_last tensors the model
    # trains with, the compiled term's backward took 3x as long (30 vs 10 ms per stage at
    # batch 256, one thread, in a one-off timing).
    dense = block.contiguous()
    reference = msssim_reference(dense) if kind != "l2" else None
    for target, pred in zip(out.stage_targets, out.stage_outputs):
        if kind == "l2":
            total = total + F.mse_loss(pred, target)
        else:
            recon = pred if target is block else None
            if recon is None:  # residual variant: MS-SSIM is defined on images only
                raise ValueError("MS-SSIM losses need an R2I variant (image-out stages)")
            d = 1 - msssim(recon.clamp(-0.5, 0.5).contiguous(), dense, reference=reference)
            mix = 0.5 * d + 0.5 * 50 * F.mse_loss(recon, block)  # 50: MSE ~1e-3 vs 1-MS-SSIM
            total = total + (d if kind == "msssim" else mix)
    if joint:
        total = total + F.mse_loss(out.inpainting, block)
    return total


def float_output(out: CoderOutput) -> CoderOutput:
    """The networks' outputs in fp32: SSIM variances (E[x^2] - E[x]^2) cancel badly in bf16,
    so the loss is always computed in fp32, outside autocast."""

    def f(ts: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.float() for t in ts]

    return CoderOutput(
        f(out.reconstructions),
        f(out.codes),
        out.inpainting.float(),
        f(out.stage_targets),
        f(out.stage_outputs),
    )
