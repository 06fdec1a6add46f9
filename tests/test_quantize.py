"""The int8 twin of a bundle (issue 23): a model of its own that decodes its own files
exactly as its encoder tracked them, and refuses the float model's files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import smooth_image, tiny_coder

from ir2icodec.codec import decode, encode
from ir2icodec.container import read_header_and_version
from ir2icodec.errors import ModelMismatchError
from ir2icodec.manifest import MANIFEST_NAME
from ir2icodec.runtime import load_model
from ir2icodec.training.export import export_bundle, export_postfilter
from ir2icodec.training.nets import PostFilter, PostFilterConfig
from ir2icodec.training.quantize import graphs_of, quantize_bundle


@pytest.fixture(scope="module")
def float_and_int8(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize")
    export_bundle(tiny_coder(), root / "float", "tiny-float")
    export_postfilter(PostFilter(PostFilterConfig(width=8, layers=2)), root / "float", {"step": 0})
    photos = [smooth_image(96, 128, seed=s) for s in range(2)]
    quantize_bundle(root / "float", root / "int8", "tiny-int8", photos)
    return load_model(str(root / "float"), device="cpu"), load_model(str(root / "int8"), "cpu")


def test_the_twin_quantises_what_a_decoder_runs_and_names_itself(float_and_int8):
    fp32, int8 = float_and_int8
    manifest = json.loads((int8.directory / MANIFEST_NAME).read_text())
    assert manifest["name"] == "tiny-int8" and manifest["digest"] != fp32.manifest["digest"]
    assert manifest["quantized"]["from_digest"] == fp32.manifest["digest"]
    assert set(manifest["quantized"]["graphs"]) == set(
        graphs_of(fp32, ("inpaint", "decoders", "postfilter"))
    )
    for fname, digest in manifest["files"].items():
        changed = digest != fp32.manifest["files"][fname]
        assert changed == (fname in manifest["quantized"]["graphs"]), fname
        ops = {n.op_type for n in __import__("onnx").load(int8.directory / fname).graph.node}
        assert ("QuantizeLinear" in ops) == changed, fname
    assert manifest["postfilter"]["sha256"] != fp32.manifest["postfilter"]["sha256"]


def test_the_twin_decodes_what_its_encoder_tracked_bit_for_bit(float_and_int8):
    fp32, int8 = float_and_int8
    rgb = smooth_image(80, 112, seed=5)
    written = encode(rgb, int8, stages=4)
    again = encode(rgb, int8, stages=4)
    assert written.data == again.data  # deterministic
    plain = decode(written.data, int8, postfilter=False)
    assert np.array_equal(plain.rgb, written.reconstruction)
    # close to the float model's own picture of the same codes, not equal to it
    float_file = encode(rgb, fp32, stages=4)
    ref = decode(float_file.data, fp32, postfilter=False).rgb.astype(float)
    err = np.abs(plain.rgb.astype(float) - ref).mean()
    assert 0 < err < 20
    filtered = decode(written.data, int8)
    assert filtered.filtered and filtered.rgb.shape == rgb.shape


def test_a_file_of_the_float_model_is_refused_by_the_twin(float_and_int8):
    fp32, int8 = float_and_int8
    data = encode(smooth_image(64, 64), fp32, stages=2).data
    with pytest.raises(ModelMismatchError, match="tiny-float"):
        decode(data, int8)


def test_the_quantize_command_writes_the_parts_it_is_given(tmp_path, tiny_bundle):
    from PIL import Image

    data = tmp_path / "photos"
    data.mkdir()
    for i in range(3):
        Image.fromarray(smooth_image(64, 96, seed=i)).save(data / f"p{i}.png")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ir2icodec.training.quantize",
            tiny_bundle,
            str(tmp_path / "q"),
            "--name",
            "tiny-q",
            "--data",
            str(data),
            "--photos",
            "2",
            "--parts",
            "decoders",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "q" / MANIFEST_NAME).read_text())
    assert manifest["quantized"]["graphs"] == [f"stage{s}_decoder.onnx" for s in range(1, 9)]
    assert manifest["quantized"]["calibration_photos"] == 2


def test_the_twins_benchmark_scores_and_times_every_bundle(tmp_path, float_and_int8):
    from click.testing import CliRunner
    from PIL import Image

    from benchmarks import twins

    fp32, int8 = float_and_int8
    photos = tmp_path / "heldout"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(176, 192, seed=i)).save(photos / f"p{i}.png")
    Image.fromarray(smooth_image(20, 20)).save(photos / "small.png")  # too small: left out
    image = tmp_path / "photo.png"
    Image.fromarray(smooth_image(64, 96)).save(image)
    out = tmp_path / "twins.md"
    r = CliRunner().invoke(
        twins.main,
        [
            "--data",
            str(photos),
            "--every",
            "1",
            "--image",
            str(image),
            "--rounds",
            "1",
            "--bundle",
            f"float={fp32.directory}",
            "--bundle",
            f"int8={int8.directory}",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("2 photos")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| float") or line.startswith("| int8")
    ]
    assert len(rows) == 2 and rows[0].endswith("| 1.00x |")
    low, high = (float(x) for x in rows[0].split(" | ")[1].split(" / "))
    assert 0 < low < high


def test_the_twin_of_a_bundle_with_bit_tables_keeps_them_and_writes_version_3(
    tmp_path, tables_bundle
):
    quantize_bundle(tables_bundle, tmp_path / "int8", "tiny-int8-v3", [smooth_image(64, 96)])
    twin = load_model(str(tmp_path / "int8"), device="cpu")
    source = load_model(tables_bundle, device="cpu")
    assert twin.manifest["bit_tables"] == source.manifest["bit_tables"]
    assert np.array_equal(twin.bit_tables.ones, source.bit_tables.ones)
    rgb = smooth_image(64, 96, seed=3)
    written = encode(rgb, twin, stages=4)
    assert read_header_and_version(written.data)[1] == 3
    assert np.array_equal(decode(written.data, twin, postfilter=False).rgb, written.reconstruction)
