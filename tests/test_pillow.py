"""The Pillow plugin, through Pillow's public API only, with the shipped model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import smooth_image
from PIL import Image

import ir2icodec  # noqa: F401 - registers the plugin
from ir2icodec import api
from ir2icodec import pillow as plugin
from ir2icodec.container import chunk_layout
from ir2icodec.errors import Ir2iError, Ir2iWarning
from ir2icodec.runtime import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent


def _saved(im: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "IR2I", **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode,size", [("RGB", (64, 48)), ("L", (33, 47)), ("RGBA", (33, 47)), ("P", (17, 5))]
)
def test_save_open_round_trip(tmp_path, mode, size):
    w, h = size
    rgb = smooth_image(h, w, seed=w)
    source = Image.fromarray(rgb)
    if mode == "RGBA":
        source.putalpha(Image.fromarray(np.arange(h * w, dtype=np.uint8).reshape(h, w)))
    else:
        source = source.convert(mode)
    path = tmp_path / "x.ir2i"
    source.save(path, stages=3)  # format from the registered extension
    with Image.open(path) as im:
        assert im.format == "IR2I" and im.get_format_mimetype() == "image/x-ir2i"
        assert im.size == size and im.mode == ("RGBA" if mode == "RGBA" else "RGB")
        assert im.info["stages"] == 3 and im.info["model"] == DEFAULT_MODEL
        decoded = np.asarray(im)
    assert decoded.shape == (h, w, len(im.mode))
    if mode == "RGBA":
        np.testing.assert_array_equal(decoded[..., 3], np.asarray(source)[..., 3])
    expected = np.asarray(source.convert("RGB"), dtype=np.float64)
    assert np.abs(decoded[..., :3] - expected).mean() < 40  # a picture, not noise
    # The same bytes as the API (and so the CLI) writes for that image.
    assert path.read_bytes() == api.encode(source, stages=3)


def test_open_is_lazy_and_load_decodes(tmp_path, monkeypatch):
    path = tmp_path / "x.ir2i"
    Image.fromarray(smooth_image(40, 70)).save(path, stages=4)
    api._cached_model.cache_clear()  # fresh sessions: each one created is counted
    created: list[object] = []
    real = ort.InferenceSession

    def counting(*args, **kwargs):
        created.append(args)
        return real(*args, **kwargs)

    decodes: list[int | None] = []
    real_decode = api.decode_stage_counts

    def counting_decode(data, **kwargs):
        decodes.append(kwargs.get("max_stages"))
        return real_decode(data, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    monkeypatch.setattr(api, "decode_stage_counts", counting_decode)
    im = Image.open(path)
    assert (im.size, im.mode, im.info["stages"], im.n_frames, im.tell()) == (
        (70, 40),
        "RGB",
        4,
        3,
        2,
    )
    assert created == [] and decodes == []
    im.load()
    assert created and decodes == [None]  # every frame, in one pass over the stages
    im.load()  # the current frame is kept
    im.seek(0)
    im.load()  # and the others were decoded with it
    assert decodes == [None]


def test_stages_are_frames_and_save_all_animates(tmp_path):
    rgb = smooth_image(48, 64)
    data = _saved(Image.fromarray(rgb), stages=5)
    im = Image.open(io.BytesIO(data))
    assert im.n_frames == 4 and im.is_animated and im.tell() == 3
    for k in range(4):
        im.seek(k)
        want = api.decode(data, max_stages=k + 2, output="numpy")
        np.testing.assert_array_equal(np.asarray(im), want)
    with pytest.raises(EOFError):
        im.seek(4)
    out = tmp_path / "steps.png"
    im.save(out, save_all=True)
    with Image.open(out) as apng:
        assert apng.format == "PNG" and apng.n_frames == 4
        apng.seek(3)
        np.testing.assert_array_equal(
            np.asarray(apng.convert("RGB")), api.decode(data, output="numpy")
        )


def test_truncated_file_opens_to_the_stages_it_holds():
    data = _saved(Image.fromarray(smooth_image(48, 64)), stages=6)
    fourth = [c for c in chunk_layout(data) if c.type == "CODE"][3]  # stage 5
    with Image.open(io.BytesIO(data[: fourth.offset + 9])) as im:
        assert im.info["stages"] == 4 and im.n_frames == 3
        with pytest.warns(Ir2iWarning, match="truncated: 4 of 6 stages"):
            pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels, api.decode(data, max_stages=4, output="numpy"))


def _cli_error(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert r.returncode != 0
    line = r.stderr.strip()
    assert line.startswith("ir2i: error: ") and "\n" not in line, r.stderr
    return line.removeprefix("ir2i: error: ")


def test_errors_are_pillow_exceptions_with_the_cli_messages(tmp_path, tiny_bundle):
    good = _saved(Image.fromarray(smooth_image(48, 64)), stages=3)
    cases = {
        "cut.ir2i": good[:30],  # inside HEAD
        "crc.ir2i": good[:-20] + bytes([good[-20] ^ 0xFF]) + good[-19:],  # last CODE damaged
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        message = _cli_error("decode", str(tmp_path / name), "-o", str(tmp_path / "o.png"))
        with pytest.raises(OSError) as caught:
            Image.open(tmp_path / name).load()
        assert isinstance(caught.value, Ir2iError) and str(caught.value) == message
    with pytest.raises(ValueError) as caught:
        Image.new("RGB", (8, 8)).save(io.BytesIO(), "IR2I", stages=9)
    source = tmp_path / "s.png"
    Image.new("RGB", (8, 8)).save(source)
    message = _cli_error("encode", str(source), "-o", str(tmp_path / "s.ir2i"), "-s", "9")
    # The same check and words; the library names the option, the CLI its flag.
    assert isinstance(caught.value, Ir2iError)
    assert str(caught.value) == message.replace("--stages", "stages")
    # A file of another model: the CLI's "made by model ..." line, as an OSError.
    other = tmp_path / "other.ir2i"
    other.write_bytes(api.encode(smooth_image(8, 8), stages=2, model=tiny_bundle))
    message = _cli_error("decode", str(other), "-o", str(tmp_path / "o.png"))
    with Image.open(other) as im, pytest.raises(OSError, match="made by model 'tiny-ir2i'"):
        im.load()
    assert str(pytest.raises(OSError, Image.open(other).load).value) == message


def test_configure_picks_the_model(tiny_bundle):
    data = api.encode(smooth_image(20, 30), stages=2, model=tiny_bundle)
    try:
        plugin.configure(model=tiny_bundle)
        assert Image.open(io.BytesIO(data)).convert("RGB").size == (30, 20)
        assert Image.open(io.BytesIO(_saved(Image.new("RGB", (9, 9))))).info["model"] == "tiny-ir2i"
    finally:
        plugin.configure()


def test_save_with_quality():
    small = _saved(Image.fromarray(smooth_image(48, 64)), quality=10)
    large = _saved(Image.fromarray(smooth_image(48, 64)), quality=90)
    assert len(small) <= len(large)
    assert Image.open(io.BytesIO(small)).size == (64, 48)
