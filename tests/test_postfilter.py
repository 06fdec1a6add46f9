"""The post-filter: a tiny trained-shape filter exported into a copy of the tiny bundle, run
by onnxruntime through the codec, the API and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from ir2icodec import postfilter
from ir2icodec.codec import decode, encode
from ir2icodec.container import read_container
from ir2icodec.errors import ModelError
from ir2icodec.runtime import load_model
from ir2icodec.training.export import export_postfilter
from ir2icodec.training.nets import PostFilter, PostFilterConfig


def tiny_filter(seed: int = 0) -> PostFilter:
    """A filter whose output differs visibly from its input (the trained head starts at
    zero, which would make it the identity)."""
    torch.manual_seed(seed)
    net = PostFilter(PostFilterConfig(width=8, layers=3))
    torch.nn.init.normal_(net.head.weight, std=0.05)
    return net.eval()


@pytest.fixture(scope="module")
def filtered_bundle(tmp_path_factory, tiny_bundle) -> Path:
    out = tmp_path_factory.mktemp("filtered") / "tiny-ir2i"
    shutil.copytree(tiny_bundle, out)
    export_postfilter(tiny_filter(), out, {"step": 0})
    return out


@pytest.fixture(scope="module")
def filtered_model(filtered_bundle):
    return load_model(str(filtered_bundle), device="cpu")


@pytest.fixture(scope="module")
def encoded(filtered_model):
    rgb = smooth_image(75, 101, seed=3)
    return rgb, encode(rgb, filtered_model, quality=60)


def test_the_filter_keeps_the_bundle_digest(filtered_model, tiny_model, filtered_bundle):
    # Files made before the model had a filter still decode with it.
    assert filtered_model.digest == tiny_model.digest
    spec = json.loads((filtered_bundle / "model.json").read_text())["postfilter"]
    assert spec["file"] == "postfilter.onnx" and spec["halo"] == 8


@pytest.mark.parametrize("shape", [(1, 1), (33, 47), (1000, 3), (3, 1000), (64, 64)])
def test_filter_runs_on_any_size(filtered_model, shape):
    rgb = smooth_image(*shape, seed=1)
    by, bx = -(-shape[0] // 32), -(-shape[1] // 32)
    stage_map = np.full((by, bx), 4)
    out = postfilter.apply(rgb, stage_map, filtered_model)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    if min(shape) > 1:
        assert not np.array_equal(out, rgb)


def test_onnx_filter_matches_the_torch_network(filtered_model):
    rgb = smooth_image(70, 90, seed=2)
    stage_map = np.array([[2, 5, 8], [3, 6, 7], [8, 2, 4]])
    out = postfilter.apply(rgb, stage_map, filtered_model)
    g = postfilter.guide(stage_map, 32, 8, (0, 70), (0, 90))
    with torch.no_grad():
        x = torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255 - 0.5)
        ref = tiny_filter()(x, torch.from_numpy(g))[0].numpy().transpose(1, 2, 0)
    expected = np.clip(np.rint((ref + 0.5) * 255), 0, 255)
    assert np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("shape", [(203, 70), (161, 33), (97, 129)])
def test_bands_equal_the_whole_image(filtered_model, shape):
    rgb = smooth_image(*shape, seed=4)
    stage_map = np.random.default_rng(0).integers(2, 9, (-(-shape[0] // 32), -(-shape[1] // 32)))
    one_band = shape[0] // 2 * 2 + 2
    whole = postfilter.apply(rgb, stage_map, filtered_model, band_rows=one_band)
    for rows in (2, 16, 22, 64):  # halo 8: bands thinner and thicker than their halos
        assert len(postfilter.band_bounds(shape[0], rows)) > 1
        np.testing.assert_array_equal(
            postfilter.apply(rgb, stage_map, filtered_model, band_rows=rows), whole
        )


def test_guide_marks_block_edges_and_stage_counts():
    stage_map = np.array([[2, 8]])
    g = postfilter.guide(stage_map, 32, 8, (0, 2), (30, 34))[0]
    np.testing.assert_allclose(g[0, 0], [2 / 8, 2 / 8, 1, 1])
    assert g[1, 0, 1] > 0.4 and g[1, 0, 2] < -0.4  # the jump between columns 31 and 32
    np.testing.assert_allclose(g[2, :, 0], [-0.5 + 0.5 / 32, -0.5 + 1.5 / 32])


def test_decode_filters_and_no_filter_is_the_bit_exact_reconstruction(filtered_model, encoded):
    rgb, result = encoded
    raw = decode(result.data, filtered_model, postfilter=False)
    assert not raw.filtered
    np.testing.assert_array_equal(raw.rgb, result.reconstruction)
    shown = decode(result.data, filtered_model)
    assert shown.filtered
    np.testing.assert_array_equal(
        shown.rgb, postfilter.apply(result.reconstruction, result.stage_map, filtered_model)
    )
    assert not np.array_equal(shown.rgb, raw.rgb)


def test_a_truncated_file_is_filtered_for_the_stages_it_holds(filtered_model, encoded):
    _, result = encoded
    assert len(read_container(result.data).stage_bits) >= 4
    cut = _cut_after_stage(result.data, 3)
    partial = decode(cut, filtered_model)
    assert partial.stages == 3 and partial.warnings
    raw = decode(cut, filtered_model, postfilter=False)
    np.testing.assert_array_equal(partial.stage_map, np.minimum(result.stage_map, 3))
    np.testing.assert_array_equal(
        partial.rgb, postfilter.apply(raw.rgb, np.minimum(result.stage_map, 3), filtered_model)
    )
    np.testing.assert_array_equal(
        partial.rgb, decode(result.data, filtered_model, max_stages=3).rgb
    )


def test_a_replaced_filter_is_refused(tmp_path, filtered_bundle, encoded):
    bundle = tmp_path / "tiny-ir2i"
    shutil.copytree(filtered_bundle, bundle)
    shutil.copy(filtered_bundle / "stage1_decoder.onnx", bundle / "postfilter.onnx")
    model = load_model(str(bundle), device="cpu")
    with pytest.raises(ModelError, match="postfilter.onnx does not match"):
        decode(encoded[1].data, model)
    # ... while --no-filter still decodes: the codes do not depend on the filter
    decode(encoded[1].data, model, postfilter=False)


def test_cli_no_filter(tmp_path, filtered_bundle, encoded):
    _, result = encoded
    src = tmp_path / "in.ir2i"
    src.write_bytes(result.data)
    ir2i = [sys.executable, "-m", "ir2icodec"]
    for flag, name in (([], "shown.png"), (["--no-filter"], "raw.png")):
        subprocess.run(
            [
                *ir2i,
                "decode",
                str(src),
                "-o",
                str(tmp_path / name),
                "--model",
                str(filtered_bundle),
                "-q",
                *flag,
            ],
            check=True,
        )
    raw = np.asarray(Image.open(tmp_path / "raw.png"))
    shown = np.asarray(Image.open(tmp_path / "shown.png"))
    np.testing.assert_array_equal(raw, result.reconstruction)
    assert not np.array_equal(shown, raw)


def _cut_after_stage(data: bytes, stage: int) -> bytes:
    """The file's bytes up to and including the CODE chunk of ``stage`` (no IEND)."""
    from ir2icodec.container import chunk_layout

    codes = [c for c in chunk_layout(data) if c[0] == "CODE"]
    _, offset, length, _ = codes[stage - 2]  # the first CODE chunk holds stages 1-2
    return data[: offset + 12 + length]


def test_train_postfilter_end_to_end(tmp_path, tiny_bundle):
    """One command: decode the photos with the bundle, train for a moment, write the filter
    into the bundle; the bundle then filters what it decodes."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(8):  # these names split 4 / 4 at a 20% hold-out
        # held out at 0.65x, still above MS-SSIM's 161 pixels
        Image.fromarray(smooth_image(250 + 4 * i, 260, seed=i)).save(photos / f"p{i}.png")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ir2icodec.training.train_postfilter",
            "--data",
            str(photos),
            "--model",
            str(bundle),
            "--pairs",
            str(tmp_path / "pairs"),
            "--out",
            str(tmp_path / "run"),
            "--minutes",
            "0.01",
            "--width",
            "8",
            "--layers",
            "2",
            "--batch",
            "2",
            "--threads",
            "1",
            "--holdout-percent",
            "20",
            "--bundle",
            str(bundle),
        ],
        check=True,
        capture_output=True,
    )
    assert len(list((tmp_path / "pairs" / "train").glob("*.npz"))) == 4
    assert len(list((tmp_path / "pairs" / "heldout").glob("*.npz"))) == 4
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] >= 1 and set(log[-1]["msssim"]) == {str(k) for k in range(2, 9)}
    assert log[0]["step"] == 0 and log[0]["loss"] is None  # the starting filter's scores
    assert set(log[0]["msssim"]) == set(log[-1]["msssim"])
    model = load_model(str(bundle), device="cpu")
    assert model.postfilter_spec["halo"] == 6
    data = encode(smooth_image(40, 50), model, 3).data
    assert decode(data, model).filtered

    def train_from(init: Path, out: str, *flags: str) -> subprocess.CompletedProcess:
        """A second, tiny filter run on the same pairs, started from ``init``."""
        command = [sys.executable, "-m", "ir2icodec.training.train_postfilter"]
        command += ["--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / out)]
        command += ["--init", str(init), "--minutes", "0.01", "--batch", "2", "--threads", "1"]
        return subprocess.run([*command, *flags], capture_output=True, text=True)

    # --grow: a wider, deeper filter from that one's checkpoint
    grow = train_from(
        tmp_path / "run" / "best.pt", "grown", "--grow", "--width", "12", "--layers", "3"
    )
    assert grow.returncode == 0, grow.stderr
    grown = torch.load(tmp_path / "grown" / "best.pt", weights_only=False)
    assert grown["config"] == {"width": 12, "layers": 3}

    # --shrink: back to a narrower filter (a cheaper decoder), from the grown checkpoint
    shrink = train_from(tmp_path / "grown" / "best.pt", "shrunk", "--shrink", "--width", "6")
    assert shrink.returncode == 0, shrink.stderr
    shrunk = torch.load(tmp_path / "shrunk" / "best.pt", weights_only=False)
    assert shrunk["config"] == {"width": 6, "layers": 3}
    both = train_from(tmp_path / "grown" / "best.pt", "both", "--shrink", "--grow")
    assert both.returncode == 2 and "one or the other" in both.stderr

    # --int8: quantisation-aware, from the bundle's filter; writes the int8 graph it trained
    int8 = train_from(bundle, "int8", "--int8", "--bundle", str(bundle))
    assert int8.returncode == 0, int8.stderr
    ckpt = torch.load(tmp_path / "int8" / "best.pt", weights_only=False)
    spec = load_model(str(bundle), device="cpu").postfilter_spec
    assert set(spec["int8"]["ranges"]) == set(ckpt["int8_ranges"]) >= {"image", "head", "act0"}
    ops = {n.op_type for n in __import__("onnx").load(bundle / spec["file"]).graph.node}
    assert "QuantizeLinear" in ops
    assert decode(data, load_model(str(bundle), device="cpu")).filtered
    # a quantisation-aware run is resumed as one
    again = train_from(bundle, "int8", "--resume")
    assert again.returncode != 0 and "--int8" in again.stderr
    # and a float run is not resumed as a quantisation-aware one
    float_again = train_from(tmp_path / "shrunk" / "best.pt", "shrunk", "--resume", "--int8")
    assert float_again.returncode != 0 and "float run" in float_again.stderr


def test_a_grown_filter_starts_from_the_small_one():
    """Widening keeps the function exactly; an added layer (an identity convolution) keeps
    it up to the leaky slope applied twice to negative activations."""
    from ir2icodec.training.nets import grown_postfilter

    torch.manual_seed(0)
    small = PostFilter(PostFilterConfig(width=8, layers=3))
    torch.nn.init.normal_(small.head.weight, std=0.05)  # a trained filter's head is not zero
    image, guide = torch.rand(2, 3, 16, 20) - 0.5, torch.rand(2, 3, 16, 20) - 0.5
    with torch.no_grad():
        expected = small(image, guide)
        wider = grown_postfilter(small, PostFilterConfig(width=12, layers=3))
        torch.testing.assert_close(wider(image, guide), expected, rtol=0, atol=1e-6)
        deeper = grown_postfilter(small, PostFilterConfig(width=12, layers=4))
        change = (deeper(image, guide) - expected).abs().max()
        assert 0 < change < 0.5 * (expected - image).abs().max()
    # the fresh channels get gradients, so training can give them a use
    loss = (wider(image, guide) - image).square().mean() + wider(image, guide).mean()
    loss.backward()
    assert wider.head.weight.grad[:, 8:].abs().max() > 0
    with pytest.raises(ValueError, match="cannot grow"):
        grown_postfilter(small, PostFilterConfig(width=4, layers=3))


def test_a_shrunk_filter_keeps_the_channels_its_layers_use():
    """Channels nothing reads (a grown filter's fresh ones) are the ones dropped, so
    shrinking a widened filter back gives the original function exactly."""
    from ir2icodec.training.nets import grown_postfilter, shrunk_postfilter

    torch.manual_seed(0)
    small = PostFilter(PostFilterConfig(width=8, layers=3))
    torch.nn.init.normal_(small.head.weight, std=0.05)
    image, guide = torch.rand(2, 3, 16, 20) - 0.5, torch.rand(2, 3, 16, 20) - 0.5
    with torch.no_grad():
        wider = grown_postfilter(small, PostFilterConfig(width=12, layers=3))
        for conv in wider.body:  # the fresh channels' incoming weights are not small
            conv.weight.mul_(3.0)
            conv.bias.normal_()
        for conv, old in zip(wider.body, small.body):
            cout, cin = old.weight.shape[:2]
            conv.weight[:cout, :cin] = old.weight
            conv.bias[:cout] = old.bias
        back = shrunk_postfilter(wider, 8)
        assert back.cfg == small.cfg
        torch.testing.assert_close(back(image, guide), small(image, guide), rtol=0, atol=1e-6)
        # a cut into the used channels changes the function, but keeps the shape
        narrower = shrunk_postfilter(small, 5)
        assert narrower.body[0].weight.shape == (5, small.body[0].weight.shape[1], 3, 3)
        assert narrower.head.weight.shape[1] == 5
        assert not torch.allclose(narrower(image, guide), small(image, guide))
    with pytest.raises(ValueError, match="cannot shrink"):
        shrunk_postfilter(small, 9)


def test_pillow_plugin_filters_unless_configured_not_to(tmp_path, filtered_bundle, encoded):
    from ir2icodec import pillow as plugin

    _, result = encoded
    path = tmp_path / "x.ir2i"
    path.write_bytes(result.data)
    try:
        plugin.configure(model=str(filtered_bundle), postfilter=False)
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), result.reconstruction)
        plugin.configure(model=str(filtered_bundle))
        with Image.open(path) as im:
            assert not np.array_equal(np.asarray(im.convert("RGB")), result.reconstruction)
    finally:
        plugin.configure()


@pytest.mark.parametrize(
    "entry",
    [
        {"file": "../x.onnx"},
        "postfilter.onnx",
        {"file": "postfilter.onnx", "sha256": "00", "halo": 8},
    ],
)
def test_a_malformed_postfilter_entry_is_a_model_error(tmp_path, filtered_bundle, entry):
    bundle = tmp_path / "tiny-ir2i"
    shutil.copytree(filtered_bundle, bundle)
    manifest = json.loads((bundle / "model.json").read_text())
    manifest["postfilter"] = entry
    (bundle / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="postfilter entry is malformed"):
        load_model(str(bundle), device="cpu")


@pytest.mark.parametrize(
    "width, height, halo, workers",
    [
        (768, 512, 14, 2),
        (481, 321, 14, 2),
        (8192, 6144, 14, 2),
        (100, 60, 14, 2),
        (768, 512, 14, 1),
        (4000, 3000, 8, 4),
    ],
)
def test_default_bands_are_even_balanced_and_bounded(width, height, halo, workers):
    rows = postfilter.band_rows_for(width, halo, height, workers)
    bounds = postfilter.band_bounds(height, rows)
    heights = [b - a for a, b in bounds]
    assert rows % 2 == 0 and rows >= min(8 * halo, height)
    # no larger than the width-only rule's bands (the memory bound), give or take rounding
    assert rows <= postfilter.band_rows_for(width, halo) + 2
    if rows > 8 * halo:  # set by the balance, not by the halo floor
        assert len(bounds) % workers == 0
        assert max(heights) - min(heights) <= 3  # even band heights, odd picture height


def test_a_768x512_picture_filters_as_two_equal_bands():
    bounds = postfilter.band_bounds(512, postfilter.band_rows_for(768, 14, 512, 2))
    assert bounds == [(0, 256), (256, 512)]


def test_export_can_take_another_bundles_filter(tmp_path, filtered_bundle, tiny_coder_model):
    """A fine-tuned model starts with the filter of the model it came from (--postfilter-from):
    the same file, its hash checked at load, and the new model's own digest."""
    from click.testing import CliRunner

    from ir2icodec.training.export import main as export_main

    ckpt = tmp_path / "c.pt"
    torch.save(
        {
            "config": tiny_coder_model.cfg.to_dict(),
            "model": tiny_coder_model.state_dict(),
            "step": 7,
        },
        ckpt,
    )
    out = tmp_path / "new"
    r = CliRunner().invoke(
        export_main,
        [str(ckpt), str(out), "--name", "new-ir2i", "--postfilter-from", str(filtered_bundle)],
    )
    assert r.exit_code == 0, r.output
    assert (out / "postfilter.onnx").read_bytes() == (
        Path(filtered_bundle) / "postfilter.onnx"
    ).read_bytes()
    model = load_model(str(out), device="cpu")
    assert model.postfilter_spec is not None and model.name == "new-ir2i"
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["postfilter"]["training"]["copied_from"] == Path(filtered_bundle).name
