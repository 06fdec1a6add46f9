"""Quantisation-aware training of the post-filter (issue 23): the torch twin computes what
onnxruntime's int8 graph of the filter computes, on the grids it trained with."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ir2icodec.training.export import export_postfilter, to_onnx
from ir2icodec.training.int8_filter import (
    Int8PostFilter,
    activation_ranges,
    tensor_names,
    uint8_grid,
)
from ir2icodec.training.nets import PostFilter, PostFilterConfig
from ir2icodec.training.quantize import quantized_postfilter
from ir2icodec.training.recover import postfilter_from_bundle


def random_filter(width: int, seed: int = 0) -> PostFilter:
    torch.manual_seed(seed)
    net = PostFilter(PostFilterConfig(width=width, layers=3))
    for conv in net.body:  # distinct biases (the exporter merges equal initializers)
        torch.nn.init.normal_(conv.bias, std=0.01)
    torch.nn.init.normal_(net.head.weight, std=0.05)
    torch.nn.init.normal_(net.head.bias, std=0.01)
    return net.eval()


def batch(seed: int, height: int = 32, width: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded pixels (k / 255 - 0.5, as the codec feeds them) and a guide-like input."""
    g = torch.Generator().manual_seed(seed)
    image = torch.round(torch.rand(2, 3, height, width, generator=g) * 255) / 255 - 0.5
    guide = torch.rand(2, 3, height, width, generator=g) - 0.5
    guide[:, 0] = torch.randint(2, 9, (1,), generator=g).item() / 8
    return image, guide


def int8_session(net: PostFilter, ranges) -> ort.InferenceSession:
    sample = torch.zeros(1, 3, 64, 64)
    sizes = {0: "batch", 2: "height", 3: "width"}
    graph = to_onnx(net, (sample, sample), ["image", "guide"], ["filtered"], sizes)
    return ort.InferenceSession(
        quantized_postfilter(graph, ranges), providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("width", [8, 24])
def test_the_int8_graph_computes_what_the_twin_trained(width):
    net = random_filter(width)
    ranges = activation_ranges(net, [batch(s) for s in range(4)])
    assert set(ranges) == set(tensor_names(net))
    image, guide = batch(9)
    session = int8_session(net, ranges)
    out = session.run(None, {"image": image.numpy(), "guide": guide.numpy()})[0]
    with torch.no_grad():
        twin = Int8PostFilter(net, ranges)(image, guide).numpy()
        flt = net(image, guide).numpy()
    step = uint8_grid(*ranges["head"])[0]
    diff = np.abs(out - twin)
    # the same arithmetic: equal but for a rare rounding tie (float sums vs integer ones)
    assert diff.max() <= step * 1.001 and (diff > 1e-7).mean() < 0.01
    # and not the float network's (the int8 rounding is real and the twin models it)
    assert np.abs(flt - out).max() > 2 * step


def test_the_int8_residual_sum_adds_the_float_picture():
    """An untrained filter (zero head) returns its input exactly: the decoded picture is
    added in float, not its 8-bit copy (half a level off for k / 255 - 0.5)."""
    net = PostFilter(PostFilterConfig(width=8, layers=2)).eval()
    ranges = activation_ranges(net, [batch(s) for s in range(2)])
    image, guide = batch(5)
    out = int8_session(net, ranges).run(None, {"image": image.numpy(), "guide": guide.numpy()})
    assert np.array_equal(out[0], image.numpy())


def test_the_twin_trains_through_the_rounding():
    """Straight-through gradients reach every weight, and a step lowers the int8 loss."""
    net = random_filter(8).train()
    ranges = activation_ranges(net, [batch(s) for s in range(2)])
    twin = Int8PostFilter(net, ranges)
    image, guide = batch(3)
    target = image + 0.01
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(twin(image, guide), target)
        optim.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_missing_ranges_are_refused():
    net = random_filter(8)
    ranges = activation_ranges(net, [batch(0)])
    del ranges["act1"]
    with pytest.raises(ValueError, match="act1"):
        Int8PostFilter(net, ranges)


def test_an_int8_bundle_gives_back_its_rounded_weights(tmp_path, tiny_bundle):
    """--init from a bundle whose filter is int8: the weights come back dequantised."""
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    net = random_filter(8)
    ranges = activation_ranges(net, [batch(0)])
    export_postfilter(net, bundle, {"step": 0}, int8_ranges=ranges)
    back, missing = postfilter_from_bundle(bundle)
    assert missing == []
    for name, value in net.state_dict().items():
        step = value.abs().max() / 127 if "weight" in name else 1e-3
        assert torch.allclose(back.state_dict()[name], value, atol=float(step)), name
