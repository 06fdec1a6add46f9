"""The rate term of the training loss: a differentiable twin of the entropy coder's bit model.

Format version 2 codes every stage bit with the probability of its context (``entropy.py``):
the bit's channel and its west, north, previous-channel and previous-stage neighbours (W, N,
C, P, each 0, 1 or OUTSIDE), counted while coding. Nothing in the distortion loss rewards a
bit that those neighbours predict, so the binarizer spends every bit (``../shared/notes/
bit-model-headroom.md``: stages 7-8 cost 0.99 of their raw size). Here each stage has a table
of learned log-odds over the same fine contexts; a code's rate is its cross-entropy under that
table, in bits. The table learns the code statistics the adaptive coder will count, and the
rate's gradient reaches the stage encoders through the binarizer's straight-through estimator,
so training with ``distortion + rate_weight * rate`` makes codes that the coder predicts.

The contexts are computed from the hard bits, without gradient (a bit's neighbours are
treated as given, as in the coder); only the coded bit itself carries one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..entropy import OUTSIDE
from .nets import CODE_SHAPE

CONTEXT_VALUES = 3  # a neighbour bit is 0, 1 or OUTSIDE
COARSE_CONTEXTS = CONTEXT_VALUES**4  # (W, N, C, P), as entropy._COARSE


def fine_contexts(bits: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """Context index of every bit of (N, C, H, W) 0/1 ``bits``, as ``entropy._position_context``
    numbers them: channel * 81 + ((W * 3 + N) * 3 + C) * 3 + P; ``previous`` holds the same
    blocks' bits of the stage before (None for stage 1)."""
    b = bits.long()
    west = F.pad(b[..., :, :-1], (1, 0), value=OUTSIDE)
    north = F.pad(b[..., :-1, :], (0, 0, 1, 0), value=OUTSIDE)
    chan = F.pad(b[:, :-1], (0, 0, 0, 0, 1, 0), value=OUTSIDE)
    prev = previous.long() if previous is not None else torch.full_like(b, OUTSIDE)
    coarse = ((west * 3 + north) * 3 + chan) * 3 + prev
    channel = torch.arange(b.shape[1], device=b.device).view(1, -1, 1, 1)
    return channel * COARSE_CONTEXTS + coarse


class BitModel(nn.Module):
    """Per stage, learned log-odds of P(bit = 1) for each fine context."""

    def __init__(self, stages: int, code_shape: tuple[int, int, int] = CODE_SHAPE):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(stages, code_shape[0] * COARSE_CONTEXTS))
        self.code_bits = code_shape[0] * code_shape[1] * code_shape[2]

    def stage_bits(self, codes: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each stage's estimated cost in bits per block, (N,) each, from its {-1, +1} codes
        (straight-through tensors: the gradient flows back into the code values)."""
        costs, previous = [], None
        for s, code in enumerate(codes):
            code = code.float()
            hard = (code.detach() > 0).long()
            logit = self.logits[s][fine_contexts(hard, previous)]
            one = (code + 1) / 2  # 0/1 in value, the code's gradient
            # -log2 P(bit): softplus(-l) = -ln sigmoid(l), softplus(l) = -ln(1 - sigmoid(l))
            nats = one * F.softplus(-logit) + (1 - one) * F.softplus(logit)
            costs.append(nats.flatten(1).sum(1) / torch.log(torch.tensor(2.0)))
            previous = hard
        return costs

    @torch.no_grad()
    def calibrate(self, codes: list[torch.Tensor]) -> None:
        """Set every table to the smoothed log-odds counted on ``codes`` (a warm start: the
        table then tracks the codes as they change)."""
        previous = None
        for s, code in enumerate(codes):
            hard = (code > 0).long()
            ctx = fine_contexts(hard, previous).flatten()
            n = self.logits.shape[1]
            ones = torch.bincount(ctx, weights=hard.flatten().float(), minlength=n)
            total = torch.bincount(ctx, minlength=n).float()
            self.logits[s] = torch.log((ones + 0.5) / (total - ones + 0.5))
            previous = hard


class RateAwareCoder(nn.Module):
    """A coder and its bit model as one module (one DistributedDataParallel wrapper for both):
    ``forward`` returns the coder's output and each stage's estimated bits per block."""

    def __init__(self, coder: nn.Module, bit_model: BitModel):
        super().__init__()
        self.coder = coder
        self.bit_model = bit_model

    def forward(self, block: torch.Tensor, context: torch.Tensor | None = None):
        out = self.coder(block, context)
        with torch.autocast(block.device.type, enabled=False):  # log-odds in fp32
            return out, self.bit_model.stage_bits(out.codes)


def rate_term(
    stage_bits: list[torch.Tensor],
    code_bits: int,
    stage_scales: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """The rate of the loss: the sum over stages of each stage's mean cost as a fraction of
    its raw size (a stage whose every bit costs one bit counts 1), each stage's scaled by
    ``stage_scales`` when given (a rate weight per stage)."""
    scales = stage_scales or (1.0,) * len(stage_bits)
    return sum(w * b.mean() for w, b in zip(scales, stage_bits)) / code_bits
