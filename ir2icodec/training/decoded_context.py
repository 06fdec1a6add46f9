"""Contexts as the decoder sees them: the neighbouring blocks coded to stage 2 by the model
itself, instead of original pixels.

The paper trains inpainting on original contexts, but the codec inpaints from the stage-2
reconstructions of the blocks above and to the left (the first code). Here a training window
is 96x96, i.e. 3x3 blocks: the target block is the bottom-right one, and the three blocks of
its context (top-left, top, left) are each coded with two stages from their own 64x64
windows, with the current weights, deterministic binarization and 8-bit rounding, exactly as
the decoder will reconstruct them. One level deep: those blocks' own contexts stay original.
"""

from __future__ import annotations

import torch

from .nets import BLOCK, CONTEXT, ProgressiveCoder
from .pack import split_windows

WINDOW = CONTEXT + BLOCK  # 96: the target's context plus the context of its context blocks
FIRST_CODE_STAGES = 2

# (row, column) of the top-left corner, in the 96x96 window, of each context block's own
# 64x64 window; the block itself is that window's bottom-right quarter.
_NEIGHBOURS = {"top_left": (0, 0), "top": (0, BLOCK), "left": (BLOCK, 0)}


@torch.no_grad()
def code_neighbours(model: ProgressiveCoder, windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stage-2 reconstructions (8-bit values, [-0.5, 0.5]) of the three context blocks of
    each 96x96 window (B,3,96,96)."""
    blocks, contexts = split_windows(
        torch.cat(
            [windows[:, :, r : r + CONTEXT, c : c + CONTEXT] for r, c in _NEIGHBOURS.values()]
        )
    )
    was_training = model.training
    model.eval()  # deterministic sign, as the encoder writes the bits
    try:
        recon = model(blocks, contexts, stages=FIRST_CODE_STAGES).reconstructions[-1]
    finally:
        model.train(was_training)
    recon = torch.round((recon.float().clamp(-0.5, 0.5) + 0.5) * 255) / 255 - 0.5
    return dict(zip(_NEIGHBOURS, recon.chunk(len(_NEIGHBOURS))))


def decoded_training_pair(
    model: ProgressiveCoder, windows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks, contexts) from 96x96 windows: the original bottom-right block, and its
    64x64 context made of the model's stage-2 reconstructions of the three neighbours."""
    if windows.shape[-2:] != (WINDOW, WINDOW):
        raise ValueError(
            f"decoded contexts need {WINDOW}x{WINDOW} windows, got {tuple(windows.shape[-2:])}"
        )
    coded = code_neighbours(model, windows)
    blocks = windows[:, :, CONTEXT:, CONTEXT:].contiguous()
    contexts = torch.zeros_like(windows[:, :, BLOCK:, BLOCK:])
    contexts[:, :, :BLOCK, :BLOCK] = coded["top_left"]
    contexts[:, :, :BLOCK, BLOCK:] = coded["top"]
    contexts[:, :, BLOCK:, :BLOCK] = coded["left"]
    return blocks, contexts
