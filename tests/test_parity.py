"""torch and onnxruntime give the same codes and near-identical reconstructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_coder

from ir2icodec.runtime import load_model
from ir2icodec.training.data import make_training_pair
from ir2icodec.training.export import export_bundle

CYCLED = {"inpaint_layers": 5, "inpaint_dilations": (16, 8, 4, 2, 1)}


@pytest.mark.parametrize(
    "connections,inpainting,kind",
    [
        ("decoding", "joint", "multiscale"),
        ("decoding", "joint", "cycled"),
        ("full", "joint", "multiscale"),
        ("prediction", "none", "multiscale"),
        ("residual", "joint", "multiscale"),
    ],
)
def test_onnx_matches_torch(tmp_path, connections, inpainting, kind):
    coder = tiny_coder(
        seed=2,
        connections=connections,
        inpainting=inpainting,
        inpaint_kind=kind,
        **(CYCLED if kind == "cycled" else {}),
    )
    export_bundle(coder, tmp_path, "parity")
    model = load_model(str(tmp_path), device="cpu")
    windows = np.random.default_rng(0).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    blocks, contexts = make_training_pair(windows)
    with torch.no_grad():
        ref = coder(torch.from_numpy(blocks), torch.from_numpy(contexts))
    inp = model.inpaint(contexts)
    np.testing.assert_allclose(inp, ref.inpainting.numpy(), atol=1e-5)
    recon, enc_state, dec_state = None, None, None
    for s in range(1, coder.cfg.stages + 1):
        code, enc_state = model.encode_stage(
            s, blocks - (inp if recon is None else recon), enc_state
        )
        np.testing.assert_array_equal(code, ref.codes[s - 1].numpy())
        recon, dec_state = model.decode_stage(s, code, inp, dec_state)
        np.testing.assert_allclose(recon, ref.reconstructions[s - 1].numpy(), atol=1e-4)


def test_cropped_inpainting_equals_full_resolution_convolutions():
    """Computing only what the 32x32 output needs is exact, not an approximation."""
    import torch.nn.functional as F

    from ir2icodec.training.nets import InpaintConfig, InpaintNet

    torch.manual_seed(0)
    for cfg in (
        InpaintConfig(kind="multiscale", layers=3, filters_per_dilation=2),
        InpaintConfig(kind="vanilla", layers=3, filters_per_dilation=2),
        InpaintConfig(kind="cycled", layers=5, filters_per_dilation=8, dilations=(16, 8, 4, 2, 1)),
        InpaintConfig(kind="cycled", layers=3, filters_per_dilation=4, dilations=(1, 8)),
    ):
        net = InpaintNet(cfg).eval()
        x = torch.randn(2, 3, 64, 64)
        h = x
        with torch.no_grad():
            for layer in net.layers:
                h = F.leaky_relu(
                    torch.cat(
                        [
                            F.conv2d(h, c.weight, c.bias, padding=d, dilation=d)
                            for c, d in zip(layer.convs, layer.dilations)
                        ],
                        1,
                    ),
                    0.2,
                )
            full = F.conv2d(h, net.final.weight, net.final.bias, padding=1)[:, :, 32:, 32:]
            torch.testing.assert_close(net(x), full, atol=1e-5, rtol=1e-5)


def test_inpainting_trains_on_the_same_function_it_exports():
    """Training mode pads inside each convolution and crops after (a faster backward pass on
    the CPU), inference crops first: the outputs and the weight gradients must not differ."""
    from ir2icodec.training.nets import InpaintConfig, InpaintNet

    torch.manual_seed(0)
    for cfg in (
        InpaintConfig(layers=4, filters_per_dilation=2),  # compact
        InpaintConfig(layers=8, filters_per_dilation=2),  # early layers clamp at 0
        InpaintConfig(kind="vanilla", layers=2, filters_per_dilation=2),
        InpaintConfig(kind="cycled", layers=5, filters_per_dilation=8, dilations=(16, 8, 4, 2, 1)),
    ):
        net = InpaintNet(cfg)
        for p in net.parameters():  # away from the near-zero initial output layer
            p.data.normal_(0, 0.3)
        x = torch.randn(2, 3, 64, 64)
        results = {}
        for training in (True, False):
            net.train(training)
            out = net(x)
            grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
            results[training] = (out.detach(), grads)
        scale = max(1.0, results[False][0].abs().max().item())  # fp32 rounding of large sums
        torch.testing.assert_close(
            results[True][0], results[False][0], atol=1e-5 * scale, rtol=1e-5
        )
        for a, b in zip(results[True][1], results[False][1]):  # fp32 sums in another order
            assert (a - b).norm() <= 1e-4 * b.norm()
