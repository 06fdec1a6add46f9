"""Quantisation-aware training of the post-filter for its int8 graph.

The int8 filter is onnxruntime's static QDQ quantisation of the float graph
(``quantize.quantize_graph``): int8 weights per output channel (symmetric, a step of
absmax / 127), int32 biases, and every tensor from the inputs to the last convolution's output
held as uint8 on a fixed grid: its [min, max] range, widened to hold zero, in 255 steps. The
residual sum adds the float picture to the dequantised correction.

``Int8PostFilter`` computes that arithmetic in float, with straight-through gradients, so
that fine-tuning finds weights that lose little when rounded (the filter's 2.5x faster int8
graph cost 0.02-0.05 dB of its gain when merely calibrated; docs/postfilter.md).
``activation_ranges`` fixes the grids once, on training crops through the float network,
before the fine-tuning (clipping the activations' rarest values, where onnxruntime's
calibration spans them all); the int8 graph is then made with exactly those ranges
(``quantize.postfilter_overrides``), not calibrated again, so that it runs what was trained.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .nets import PostFilter, _act

Ranges = dict[str, tuple[float, float]]

UINT8_STEPS = 255
INT8_LIMIT = 127  # onnxruntime's symmetric int8 weights: -127..127
CLIP_PERCENTILE = 99.99  # the activations' grids span this share of their values
SAMPLE_PER_BATCH = 50_000  # values of each tensor kept per calibration batch


def tensor_names(net: PostFilter) -> list[str]:
    """The filter's quantised tensors in the order they are computed: the two inputs, their
    concatenation, each body convolution's output and its activation, the head's output."""
    body = [n for i in range(len(net.body)) for n in (f"conv{i}", f"act{i}")]
    return ["image", "guide", "concat", *body, "head"]


def uint8_grid(rmin: float, rmax: float) -> tuple[float, int]:
    """(scale, zero point) of a uint8 tensor with range [rmin, rmax]: onnxruntime's own
    ``compute_scale_zp``, which makes the int8 graph's (zero always representable, the scale
    in float32)."""
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    zero_point, scale = compute_scale_zp(
        np.array(rmin, np.float32),
        np.array(rmax, np.float32),
        np.array(0, np.uint8),
        np.array(UINT8_STEPS, np.uint8),
    )
    return float(scale), int(zero_point)


def fake_uint8(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``x`` quantised to the uint8 grid and back (QuantizeLinear: round half to even,
    saturate), with the identity's gradient."""
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, UINT8_STEPS)
    return x + ((q - zero_point) * scale - x).detach()


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per output channel: the int8 step of symmetric quantisation, absmax / 127 (1 for an
    all-zero channel, as onnxruntime)."""
    absmax = weight.detach().abs().flatten(1).amax(1)
    scale = (absmax.double() / INT8_LIMIT).float()
    return torch.where(scale < torch.finfo(torch.float32).tiny, torch.ones_like(scale), scale)


def fake_int8_conv(conv: torch.nn.Conv2d, x: torch.Tensor, input_scale: float) -> torch.Tensor:
    """``conv`` with its weights rounded to int8 steps per output channel and its bias to
    int32 steps of input_scale x weight step, as the integer convolution runs it."""
    w_scale = weight_scales(conv.weight)
    w = conv.weight
    wq = torch.clamp(torch.round(w / w_scale[:, None, None, None]), -INT8_LIMIT, INT8_LIMIT)
    w = w + (wq * w_scale[:, None, None, None] - w).detach()
    b_scale = input_scale * w_scale
    b = conv.bias + (torch.round(conv.bias / b_scale) * b_scale - conv.bias).detach()
    return F.conv2d(x, w, b, padding=conv.padding)


class Int8PostFilter(torch.nn.Module):
    """A ``PostFilter`` run in the int8 graph's arithmetic (its weights are the float
    network's, trained through this forward). ``ranges``: ``activation_ranges``'s."""

    def __init__(self, net: PostFilter, ranges: Ranges):
        super().__init__()
        missing = set(tensor_names(net)) - set(ranges)
        if missing:
            raise ValueError(f"no int8 range for {', '.join(sorted(missing))}")
        self.net = net
        self.grids = {k: uint8_grid(*v) for k, v in ranges.items()}

    def _q(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return fake_uint8(x, *self.grids[name])

    def forward(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        x = self._q(torch.cat([self._q(image, "image"), self._q(guide, "guide")], 1), "concat")
        x = F.pixel_unshuffle(x, 2)  # data movement: the same grid
        scale = self.grids["concat"][0]
        for i, conv in enumerate(self.net.body):
            x = self._q(fake_int8_conv(conv, x, scale), f"conv{i}")
            x = self._q(_act(x), f"act{i}")
            scale = self.grids[f"act{i}"][0]
        correction = self._q(fake_int8_conv(self.net.head, x, scale), "head")
        return image + F.pixel_shuffle(correction, 2)  # the float picture, as the graph


@torch.no_grad()
def activation_ranges(
    net: PostFilter,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    percentile: float = CLIP_PERCENTILE,
    seed: int = 0,
) -> Ranges:
    """The grid of each quantised tensor, from the float network's values over ``batches``
    of (image, guide): the inputs and their concatenation by their [min, max] (they are
    bounded pixels and guides); the convolutions' outputs and activations from the
    ``percentile``-th lowest to highest of a sample of their values, clipping the rare tail
    for a finer step (onnxruntime's min/max ranges were 2-3x wider and kept 91% of the
    filter's PSNR gain, these 97%, before any fine-tuning; 40 held-out photos, a one-off
    measurement: docs/postfilter.md)."""
    bounds: dict[str, tuple[float, float]] = {}
    samples: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(seed)

    def whole(name: str, t: torch.Tensor) -> torch.Tensor:
        lo, hi = float(t.min()), float(t.max())
        old = bounds.get(name, (lo, hi))
        bounds[name] = (min(lo, old[0]), max(hi, old[1]))
        return t

    def sampled(name: str, t: torch.Tensor) -> torch.Tensor:
        values = t.flatten().numpy()
        take = rng.choice(values.size, min(values.size, SAMPLE_PER_BATCH), replace=False)
        samples.setdefault(name, []).append(values[take])
        return t

    for image, guide in batches:
        whole("image", image)
        whole("guide", guide)
        x = F.pixel_unshuffle(whole("concat", torch.cat([image, guide], 1)), 2)
        for i, conv in enumerate(net.body):
            x = sampled(f"act{i}", _act(sampled(f"conv{i}", conv(x))))
        sampled("head", net.head(x))
    if not bounds:
        raise ValueError("no calibration batches")
    for name, parts in samples.items():
        values = np.concatenate(parts)
        lo, hi = np.percentile(values, [100 - percentile, percentile])
        bounds[name] = (float(lo), float(hi))
    return bounds
