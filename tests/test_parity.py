"""torch and onnxruntime give the same codes and near-identical reconstructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_coder

from ir2icodec.runtime import load_model
from ir2icodec.training.data import make_training_pair
from ir2icodec.training.export import export_bundle


@pytest.mark.parametrize("connections,inpainting", [("decoding", "joint"), ("full", "joint"),
                                                    ("prediction", "none"),
                                                    ("residual", "joint")])
def test_onnx_matches_torch(tmp_path, connections, inpainting):
    coder = tiny_coder(seed=2, connections=connections, inpainting=inpainting)
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
        code, enc_state = model.encode_stage(s, blocks - (inp if recon is None else recon),
                                             enc_state)
        np.testing.assert_array_equal(code, ref.codes[s - 1].numpy())
        recon, dec_state = model.decode_stage(s, code, inp, dec_state)
        np.testing.assert_allclose(recon, ref.reconstructions[s - 1].numpy(), atol=1e-4)


def test_cropped_inpainting_equals_full_resolution_convolutions():
    """Computing only what the 32x32 output needs is exact, not an approximation."""
    import torch.nn.functional as F

    from ir2icodec.training.nets import InpaintConfig, InpaintNet

    torch.manual_seed(0)
    for kind in ("multiscale", "vanilla"):
        net = InpaintNet(InpaintConfig(kind=kind, layers=3, filters_per_dilation=2)).eval()
        x = torch.randn(2, 3, 64, 64)
        h = x
        with torch.no_grad():
            for layer in net.layers:
                h = F.leaky_relu(torch.cat([F.conv2d(h, c.weight, c.bias, padding=d, dilation=d)
                                            for c, d in zip(layer.convs, layer.dilations)], 1),
                                 0.2)
            full = F.conv2d(h, net.final.weight, net.final.bias, padding=1)[:, :, 32:, 32:]
            torch.testing.assert_close(net(x), full, atol=1e-5, rtol=1e-5)
