"""The public Python API (ir2icodec.encode/decode/info/load_model) with the shipped model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

import ir2icodec
from ir2icodec import codec
from ir2icodec.container import chunk_layout
from ir2icodec.errors import Ir2iError, Ir2iWarning, ModelMismatchError, UsageError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return smooth_image(47, 33)


def test_numpy_round_trip_and_stage_count(rgb):
    data = ir2icodec.encode(rgb, stages=3)
    assert data.startswith(b"\x89IR2\r\n\x1a\n")
    picture = ir2icodec.decode(data)
    assert isinstance(picture, Image.Image) and picture.mode == "RGB" and picture.size == (33, 47)
    array = ir2icodec.decode(data, output="numpy")
    assert array.shape == (47, 33, 3) and array.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(picture), array)
    # The API's bytes are the codec's: same model, same stages.
    model = ir2icodec.load_model()
    assert data == codec.encode(rgb, model, 3).data
    assert ir2icodec.info(data)["stages"] == 3


def test_pil_gray_rgba_and_path_inputs(rgb, tmp_path):
    gray = Image.fromarray(rgb[..., 1])
    assert ir2icodec.decode(ir2icodec.encode(gray, stages=2)).mode == "RGB"
    rgba = np.dstack([rgb, np.arange(47 * 33, dtype=np.uint8).reshape(47, 33)])
    for image in (rgba, Image.fromarray(rgba)):
        out = ir2icodec.decode(ir2icodec.encode(image, stages=2), output="numpy")
        assert out.shape == (47, 33, 4)
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])  # alpha is lossless
    with pytest.warns(Ir2iWarning, match="alpha channel dropped"):
        no_alpha = ir2icodec.decode(ir2icodec.encode(rgba, stages=2, alpha="drop"))
    assert no_alpha.mode == "RGB"
    path = tmp_path / "p.png"
    Image.fromarray(rgb).save(path)
    from_path = ir2icodec.encode(path, stages=2)
    assert from_path == ir2icodec.encode(rgb, stages=2)
    (tmp_path / "p.ir2i").write_bytes(from_path)
    assert ir2icodec.decode(str(tmp_path / "p.ir2i")).size == (33, 47)


def test_max_stages_and_truncated_files_warn(rgb):
    data = ir2icodec.encode(rgb, stages=5)
    three = ir2icodec.decode(data, max_stages=3, output="numpy")
    np.testing.assert_array_equal(
        three, ir2icodec.decode(ir2icodec.encode(rgb, stages=3), output="numpy")
    )
    fourth = [c for c in chunk_layout(data) if c.type == "CODE"][2]
    with pytest.warns(Ir2iWarning, match="truncated: 3 of 5 stages"):
        cut = ir2icodec.decode(data[: fourth.offset + 7], output="numpy")
    np.testing.assert_array_equal(cut, three)


def test_info_is_what_the_cli_reports(rgb, tmp_path):
    data = ir2icodec.encode(rgb, stages=4)
    report = ir2icodec.info(data)
    assert (report["width"], report["height"], report["stages"]) == (33, 47, 4)
    assert [p["stages"] for p in report["progressive"]] == [2, 3, 4]
    assert report["progressive"][-1]["bytes"] == len(data) - 12  # all but IEND
    path = tmp_path / "x.ir2i"
    path.write_bytes(data)
    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec", "info", str(path), "--json"],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    cli = json.loads(r.stdout)
    assert {k: v for k, v in report.items() if k in cli} == {k: cli[k] for k in report if k in cli}
    assert ir2icodec.info(path) == report


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda im: ir2icodec.encode(im, stages=9),
            "stages must be a whole number of stages from 2 to 8, got 9",
        ),
        (lambda im: ir2icodec.encode(im, quality=50, target_bpp=0.5), "mutually exclusive"),
        (lambda im: ir2icodec.encode(im.astype(np.float32)), "uint8 array"),
        (
            lambda im: ir2icodec.decode(ir2icodec.encode(im, stages=2), max_stages=1),
            "max_stages must be a whole number of stages from 2 to 8, got 1",
        ),
        # Wrong types are usage errors too, raised before any work.
        (lambda im: ir2icodec.encode(im, stages="4"), "stages must be a whole number"),
        (lambda im: ir2icodec.encode(im, stages=3.0), "stages must be a whole number"),
        (lambda im: ir2icodec.encode(im, quality=True), "quality must be a number"),
        (lambda im: ir2icodec.encode(im, quality="high"), "quality must be a number"),
        (lambda im: ir2icodec.encode(im, target_bpp=float("nan")), "target_bpp must be a number"),
        (lambda im: ir2icodec.encode(im, max_pixels=0), "max_pixels must be a positive"),
        (lambda im: ir2icodec.decode(b"", max_stages="2"), "max_stages must be a whole number"),
        (lambda im: ir2icodec.decode(b"", max_pixels=-1), "max_pixels must be a positive"),
        (lambda im: ir2icodec.decode(b"", salvage="yes"), "salvage must be True or False"),
        (lambda im: ir2icodec.info(b"", max_pixels=2.5), "max_pixels must be a positive"),
        (
            lambda im: ir2icodec.decode(ir2icodec.encode(im, stages=2).decode("latin-1")),
            "contents as text",
        ),
        (lambda im: ir2icodec.decode(b"\x89PNG\r\n\x1a\n" + bytes(40)), "not an ir2i file"),
    ],
)
def test_errors_are_the_codec_errors(rgb, call, message):
    with pytest.raises(Ir2iError, match=message) as info:
        call(rgb)
    if "must be" in message or "as text" in message:
        assert isinstance(info.value, UsageError)


def test_model_mismatch_names_the_model(rgb, tiny_bundle):
    data = ir2icodec.encode(rgb, stages=2, model=tiny_bundle)
    with pytest.raises(ModelMismatchError, match="made by model 'tiny-ir2i'"):
        ir2icodec.decode(data)
    assert ir2icodec.decode(data, model=tiny_bundle).size == (33, 47)


def test_import_is_cheap_and_registers_the_plugin():
    code = (
        "import sys, ir2icodec; from PIL import Image; "
        "print('onnxruntime' in sys.modules, Image.registered_extensions()['.ir2i'])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    assert r.stdout.split() == ["False", "IR2I"]


def test_quality_and_target_bpp(rgb):
    low = ir2icodec.encode(rgb, quality=10)
    high = ir2icodec.encode(rgb, quality=90)
    assert len(low) <= len(high)
    capped = ir2icodec.encode(rgb, quality=90, stages=3)
    assert ir2icodec.info(capped)["stages"] <= 3
    with pytest.warns(Ir2iWarning, match="the first code alone takes"):  # as the CLI says
        small = ir2icodec.encode(rgb, target_bpp=0.5)
    assert ir2icodec.decode(small).size == (33, 47)
    assert ir2icodec.encode(rgb, target_bytes=len(high)) == ir2icodec.encode(
        rgb, target_bpp=8 * len(high) / (33 * 47)
    )


def test_a_target_above_the_models_top_says_so(rgb):
    """A budget larger than the model's best picture takes: the file is that picture, and
    the note says so (not the quality that budget would buy)."""
    with pytest.warns(Ir2iWarning, match="the best picture this model codes takes"):
        top = ir2icodec.encode(rgb, target_bpp=16.0)
    with pytest.warns(Ir2iWarning, match="below the target of 6204"):
        assert top == ir2icodec.encode(rgb, target_bpp=32.0)  # a larger budget buys nothing
    with pytest.warns(Ir2iWarning, match="codes in at most 3 stages takes"):
        capped = ir2icodec.encode(rgb, target_bpp=16.0, stages=3)
    assert ir2icodec.info(capped)["stages"] <= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a budget that binds: no note
        smaller = ir2icodec.encode(rgb, target_bytes=len(top) - 30)
    assert len(smaller) <= len(top) - 30


def test_warnings_from_the_image_conversion(rgb):
    wide = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # mode I;16
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ir2icodec.encode(wide, stages=2)
    assert any(issubclass(w.category, Ir2iWarning) and "16-bit" in str(w.message) for w in caught)


def test_files_of_another_shipped_model_decode_without_naming_it(
    rgb, tiny_bundle, tmp_path, monkeypatch
):
    """When the default model changes, files made by the earlier one (still shipped under its
    name) keep decoding: the decoder takes the shipped model the file names."""
    from ir2icodec import runtime

    shelf = tmp_path / "models"
    shutil.copytree(tiny_bundle, shelf / "tiny-ir2i")
    monkeypatch.setattr(runtime, "models_root", lambda: shelf)
    data = ir2icodec.encode(rgb, stages=2, model=tiny_bundle)
    assert ir2icodec.decode(data).size == (33, 47)
    assert runtime.model_for_file(None, "tiny-ir2i") == "tiny-ir2i"
    assert runtime.model_for_file("mine", "tiny-ir2i") == "mine"  # an explicit choice wins
    for unknown in ("not-shipped", "../models/tiny-ir2i", ""):
        assert runtime.model_for_file(None, unknown) is None


@pytest.mark.parametrize("postfilter", [True, False])
def test_every_stage_count_in_one_pass_is_each_decode(rgb, postfilter):
    """decode_stage_counts (decode --progressive, the Pillow frames) runs each block-stage
    once, and each picture is exactly the decode of that many stages; rate-controlled
    blocks keep their own counts, a truncated file gives the stages it holds."""
    data = ir2icodec.encode(rgb, quality=60)
    for file in (data, data[:-40]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Ir2iWarning)
            pictures = ir2icodec.api.decode_stage_counts(file, postfilter=postfilter)
            present = ir2icodec.info(file)["stages_present"]
            assert [p.stages for p in pictures] == list(range(2, present + 1))
            for p in pictures:
                want = ir2icodec.decode(
                    file, max_stages=p.stages, output="numpy", postfilter=postfilter
                )
                np.testing.assert_array_equal(p.array(), want)
