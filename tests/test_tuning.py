"""--tune: a bundle names the metric it serves, rate control measures that metric, and the
front ends pick the shipped model of a tune."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import smooth_image, tiny_coder
from PIL import Image

from ir2icodec import api
from ir2icodec.codec import analyse, encode
from ir2icodec.errors import ModelError, UsageError
from ir2icodec.runtime import load_model
from ir2icodec.training.export import export_bundle, export_postfilter
from ir2icodec.training.nets import PostFilter, PostFilterConfig
from ir2icodec.training.recover import postfilter_from_bundle
from ir2icodec.training.train_postfilter import LOSSES
from ir2icodec.tuning import SHIPPED_MODELS, manifest_tune, model_for


@pytest.fixture(scope="module")
def psnr_bundle(tmp_path_factory, tiny_coder_model) -> str:
    out = tmp_path_factory.mktemp("tiny-psnr")
    export_bundle(tiny_coder_model, out, "tiny-psnr", {"tune": "psnr"})
    return str(out)


def test_a_bundle_without_a_tune_is_msssim_tuned(tiny_model, psnr_bundle):
    assert tiny_model.tune == "msssim"
    assert load_model(psnr_bundle, device="cpu").tune == "psnr"
    assert manifest_tune({}) == "msssim"


def test_rate_control_measures_what_the_model_is_tuned_for(tiny_model, psnr_bundle):
    psnr_model = load_model(psnr_bundle, device="cpu")
    rgb = smooth_image(70, 90, seed=4)
    assert analyse(rgb, tiny_model).kind == "msssim"
    assert analyse(rgb, psnr_model).kind == "mse"
    # The same weights: the PSNR-tuned bundle allocates as squared error does with the other,
    # and an explicit distortion still wins over the tune.
    for quality in (20, 50, 80):
        mse_map = encode(rgb, tiny_model, quality=quality, distortion="mse").stage_map
        assert np.array_equal(encode(rgb, psnr_model, quality=quality).stage_map, mse_map)
    assert analyse(rgb, psnr_model, distortion="msssim").kind == "msssim"


def test_an_unknown_tune_is_refused_when_the_model_loads(tmp_path, tiny_bundle):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "model.json").read_text())
    (bundle / "model.json").write_text(json.dumps({**manifest, "tune": "vmaf"}))
    with pytest.raises(ModelError, match="unknown tune 'vmaf'"):
        load_model(str(bundle), device="cpu")


def test_tune_picks_a_shipped_model_and_excludes_model(tiny_bundle):
    assert model_for(None, "psnr") == SHIPPED_MODELS["psnr"]
    assert model_for(tiny_bundle, None) == tiny_bundle
    with pytest.raises(UsageError, match="tune and model are mutually exclusive"):
        model_for(tiny_bundle, "psnr")
    rgb = smooth_image(40, 40)
    with pytest.raises(UsageError, match="tune and model"):
        api.encode(rgb, tune="psnr", model=tiny_bundle)
    with pytest.raises(UsageError, match="tune must be one of msssim, psnr"):
        api.encode(rgb, tune="ssim")


def test_every_tune_has_a_shipped_model():
    for tune, name in SHIPPED_MODELS.items():
        assert load_model(name, device="cpu").tune == tune


def test_cli_tune_with_model_is_one_line_in_flag_words(tmp_path, tiny_bundle):
    src = tmp_path / "in.png"
    Image.fromarray(smooth_image(40, 40)).save(src)
    out = tmp_path / "out.ir2i"
    run = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "encode", str(src), "-o", str(out)]
        + ["--tune", "psnr", "--model", tiny_bundle],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and not out.exists()
    assert run.stderr.strip().splitlines() == [
        "ir2i: error: --tune and --model are mutually exclusive (tune picks a shipped model)"
    ]


def test_export_writes_the_tune(tmp_path):
    ckpt = tmp_path / "c.pt"
    coder = tiny_coder()
    torch.save({"config": coder.cfg.to_dict(), "model": coder.state_dict(), "step": 3}, ckpt)
    for tune, key in (("psnr", "psnr"), ("msssim", None)):
        out = tmp_path / tune
        subprocess.run(
            [sys.executable, "-m", "ir2icodec.training.export", str(ckpt), str(out)]
            + ["--name", f"t-{tune}", "--tune", tune],
            check=True,
            capture_output=True,
        )
        manifest = json.loads((out / "model.json").read_text())
        assert manifest.get("tune") == key  # earlier bundles have no key: msssim stays unsaid
        assert load_model(str(out), device="cpu").tune == tune


def test_a_bundles_filter_comes_back_as_torch(tmp_path, tiny_bundle):
    """--init BUNDLE: the shipped filter is the one copy left when its checkpoint is lost."""
    torch.manual_seed(2)
    net = PostFilter(PostFilterConfig(width=8, layers=3))
    torch.nn.init.normal_(net.head.weight, std=0.05)
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    export_postfilter(net.eval(), bundle)
    back, missing = postfilter_from_bundle(bundle)
    assert missing == ["body.1.bias"]  # equal to body.0.bias (both zero): merged on export
    image, guide = torch.rand(1, 3, 16, 16) - 0.5, torch.rand(1, 3, 16, 16) - 0.5
    with torch.no_grad():
        torch.testing.assert_close(back(image, guide), net(image, guide), rtol=0, atol=0)
    torch.nn.init.normal_(net.body[0].bias, std=0.05)  # a trained filter's biases differ
    export_postfilter(net.eval(), bundle)
    back, missing = postfilter_from_bundle(bundle)
    assert missing == []
    with torch.no_grad():
        torch.testing.assert_close(back(image, guide), net(image, guide), rtol=0, atol=0)
    with pytest.raises(ValueError, match="has no post-filter"):
        postfilter_from_bundle(tiny_bundle)


def test_the_filters_squared_error_loss_is_the_mix_scale():
    a, b = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)
    assert LOSSES["mse"](a, b).item() == pytest.approx(50 * 0.01)
