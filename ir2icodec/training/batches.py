"""Batch sources: where training windows come from, shared by the trainer and the
throughput benchmark (``benchmarks.train_throughput``), so both draw exactly alike.

A ``Draw`` takes a batch size and returns (blocks (B,3,32,32), contexts (B,3,64,64)) float32
tensors, pixels in [-0.5, 0.5], on the sampler's device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .data import PatchSampler
from .pack import DeviceSampler

Draw = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def pack_draw(sampler: DeviceSampler, gen: torch.Generator) -> Draw:
    """Windows cut from packed photos on their device (``--pack``): one gather a batch."""
    return lambda batch: sampler.sample(gen, batch)


def photos_draw(sampler: PatchSampler, rng: np.random.Generator) -> Draw:
    """Windows cut from photo files (``--data``), resized on the host."""

    def draw(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        blocks, contexts = sampler.sample(rng, batch)
        return torch.from_numpy(blocks), torch.from_numpy(contexts)

    return draw
