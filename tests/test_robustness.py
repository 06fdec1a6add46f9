"""Hostile and damaged .ir2i input through the whole decoder (container + model + wavefront)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import smooth_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir2icodec.codec import decode, encode
from ir2icodec.container import chunk_layout
from ir2icodec.errors import FormatError, Ir2iError


@pytest.fixture(scope="module")
def small_file(tiny_model) -> bytes:
    return encode(smooth_image(40, 70), tiny_model, 4).data


def test_every_cut_decodes_complete_stages_or_fails_cleanly(tiny_model, small_file):
    ends = {
        c.offset + c.length + 12: i
        for i, c in enumerate(c for c in chunk_layout(small_file) if c.type == "CODE")
    }
    full = decode(small_file, tiny_model).rgb
    for cut in range(len(small_file)):
        try:
            d = decode(small_file[:cut], tiny_model)
        except Ir2iError:
            assert cut < min(ends), cut  # only cuts inside the first code may fail
            continue
        complete = max(i for end, i in ends.items() if end <= cut) + 2
        assert d.stages == complete
        assert any("truncated" in w for w in d.warnings)
        if complete == 4:
            np.testing.assert_array_equal(d.rgb, full)


def test_every_flipped_byte_is_detected_and_salvage_keeps_intact_stages(tiny_model, small_file):
    for pos in range(8, len(small_file)):
        bad = bytearray(small_file)
        bad[pos] ^= 1 << (pos % 8)
        with pytest.raises(FormatError):
            decode(bytes(bad), tiny_model)
        try:
            d = decode(bytes(bad), tiny_model, salvage=True)
        except FormatError:
            continue  # damage in HEAD or the first code: nothing trustworthy to show
        assert 2 <= d.stages <= 4 and d.warnings


@settings(
    max_examples=150,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzzed_files_raise_only_codec_errors(tiny_model, small_file, data):
    buf = bytearray(small_file)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if kind == "flip" and buf:
            buf[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "set" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del buf[pos:]
        else:
            buf[pos:pos] = data.draw(st.binary(max_size=16))
    for salvage in (False, True):
        try:
            d = decode(bytes(buf), tiny_model, salvage=salvage, max_pixels=10**6)
        except Ir2iError:
            continue
        assert d.rgb.dtype == np.uint8 and d.rgb.ndim == 3


def test_encoding_is_byte_identical_across_processes(tmp_path, tiny_bundle):
    from PIL import Image

    src = tmp_path / "p.png"
    Image.fromarray(smooth_image(50, 80, seed=9)).save(src)
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}.ir2i"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ir2icodec",
                "encode",
                str(src),
                "-o",
                str(out),
                "--model",
                tiny_bundle,
                "--threads",
                str(i + 1),
            ],
            check=True,
            timeout=120,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
