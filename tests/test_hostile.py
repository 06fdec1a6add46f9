"""Hostile files: bounded work and memory on every door (issue "Hostile files").

One regression test per class of attack found, and the fuzz harness of
``benchmarks.hostile`` (forged files with correct CRCs and random mutations, every door, in a
child process with a capped address space) on a corpus small enough for the suite.
"""

from __future__ import annotations

import io
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image, tiny_coder
from PIL import Image

import ir2icodec
from benchmarks import hostile
from ir2icodec import container
from ir2icodec.container import read_container, read_header
from ir2icodec.errors import FormatError, LimitError, ModelMismatchError, UsageError
from ir2icodec.training.export import export_bundle

MAX_PIXELS = 2**18  # the suite's server limit: forged pictures at the limit decode quickly


@pytest.fixture(scope="module")
def valid(tiny_model) -> bytes:
    return ir2icodec.encode(smooth_image(40, 70), stages=4, model=tiny_model)


@pytest.fixture(scope="module")
def valid_alpha(tiny_model) -> bytes:
    rgba = np.dstack([smooth_image(40, 70), np.arange(40 * 70, dtype=np.uint8).reshape(40, 70)])
    return ir2icodec.encode(rgba, stages=3, model=tiny_model)


@pytest.fixture(scope="module")
def forged(valid, valid_alpha) -> dict[str, bytes]:
    return hostile.forged_corpus(valid, valid_alpha, MAX_PIXELS)


def test_an_empty_range_coded_payload_is_refused(forged):
    # It used to decode to all-zero codes: a few bytes could declare any picture.
    with pytest.raises(FormatError, match="cannot hold"):
        read_container(forged["zero-word first code at the limit"], max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    "name",
    ["one pixel high, limit wide", "one pixel wide, limit high", "8-pixel blocks of 4096 bits"],
)
def test_padded_blocks_and_code_bits_count_against_the_limit(forged, name):
    # Within the declared-pixel limit, but 32x that in whole blocks (or 64 bits per pixel):
    # refused from the header, before anything is allocated.
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="raise max_pixels"):
            read_header(forged[name], max_pixels=MAX_PIXELS)
        with pytest.raises(LimitError):
            ir2icodec.info(forged[name], max_pixels=MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_a_picture_near_the_limit_still_passes_with_its_padding():
    h = hostile.head(width=1000, height=999, digest=bytes(16), name=b"m")
    read_header(hostile.SIGNATURE + h, max_pixels=1000 * 999)  # 1024 x 1024 padded: allowed


def test_info_reads_no_code(valid, monkeypatch):
    # Looking at a file costs its chunk table, never the entropy decoder.
    def refuse(*args, **kwargs):
        raise AssertionError("info entropy-decoded a code")

    monkeypatch.setattr(container.entropy, "decode_stage_bits", refuse)
    report = ir2icodec.info(valid)
    assert report["stages_present"] == 4 and report["complete"]
    assert sum(row["blocks"] for row in report["stage_histogram"]) == 2 * 3


def test_info_leaves_a_large_stage_map_coded(valid):
    parts = hostile.chunks_of(valid)
    body = bytearray(parts[0][1])
    body[3:11] = (32).to_bytes(4, "big") + (2**17).to_bytes(4, "big")  # 1 x 4096 blocks
    forged = hostile.assemble([(b"HEAD", bytes(body)), *parts[1:]])
    report = ir2icodec.info(forged, max_pixels=2**22)
    assert report["stage_histogram"] is None


def test_salvage_resync_is_linear_in_the_file_size(forged, monkeypatch):
    data = forged["fake chunk headers to resync on"]
    crc_bytes = 0
    original = container.chunks.crc_ok

    def counting(buf, chunk):
        nonlocal crc_bytes
        crc_bytes += chunk.length + 4
        return original(buf, chunk)

    monkeypatch.setattr(container.chunks, "crc_ok", counting)
    got = read_container(data, salvage=True, max_pixels=MAX_PIXELS)
    assert got.stages_found == 2 and got.warnings
    assert crc_bytes <= 5 * len(data) + 2**20


def test_thousands_of_chunks_are_refused(forged):
    with pytest.raises(FormatError, match="more than 1024 chunks"):
        read_container(forged["4000 tiny ancillary chunks"])
    with pytest.raises(FormatError, match="more than 1024 chunks"):
        ir2icodec.info(forged["4000 tiny ancillary chunks"])
    assert len(container.chunk_layout(forged["4000 tiny ancillary chunks"])) == 1024


def test_alpha_after_the_codes_reaches_every_frame(forged, tiny_model):
    data = forged["alpha after the codes"]
    full = ir2icodec.decode(data, model=tiny_model, output="numpy")
    first = ir2icodec.decode(data, model=tiny_model, max_stages=2, output="numpy")
    assert full.shape[2] == first.shape[2] == 4
    np.testing.assert_array_equal(full[..., 3], first[..., 3])
    ir2icodec.pillow.configure(model=tiny_model)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            assert im.convert("RGBA").getchannel("A").getextrema() == (0, 255)
    finally:
        ir2icodec.pillow.configure()


def test_messages_say_what_is_wrong(forged, valid, tiny_model, tmp_path):
    with pytest.raises(FormatError, match=r"no valid stage \(stage bytes 0, 0\)"):
        read_container(forged["stage pair 00 00"])
    with pytest.raises(FormatError, match="not part of format version 1") as info:
        read_container(forged["version 2 labelled 1"])
    assert "upgrade" not in str(info.value)
    # Two models of one name with other weights: say which is which.
    export_bundle(tiny_coder(seed=1), tmp_path, tiny_model.name)
    with pytest.raises(ModelMismatchError, match="another version of model 'tiny-ir2i'"):
        ir2icodec.decode(valid, model=str(tmp_path))


def test_pillow_checks_its_pixel_limit_before_reading_on(valid, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the file is 70 x 40 = 2800 pixels
    stream = io.BytesIO(valid)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(stream)
    assert stream.tell() < 400  # the signature and the header, not the codes


def test_pillow_without_a_pixel_limit_opens_what_the_codec_default_refuses(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    h = hostile.head(width=2**15, height=2**14, digest=bytes(16), name=b"m")  # 2^29 pixels
    data = hostile.SIGNATURE + h  # no codes: it opens, and fails only on use
    with pytest.raises(OSError, match="truncated before the first code"):
        Image.open(io.BytesIO(data))


def test_pillow_reads_at_most_the_file_cap(valid, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1400)  # the codec's limit: 2 x 1400 pixels
    cap = ir2icodec.api.max_file_bytes(2800)
    stream = io.BytesIO(valid + bytes(cap))
    with pytest.raises(LimitError, match="over"):
        Image.open(stream)
    assert stream.tell() <= cap + 1


def test_reencoding_an_ir2i_file_takes_its_full_picture(valid, tiny_model, tmp_path):
    path = tmp_path / "x.ir2i"
    path.write_bytes(valid)
    again = ir2icodec.encode(path, stages=4, model=tiny_model)
    full = ir2icodec.decode(valid, model=tiny_model, output="numpy")
    assert again == ir2icodec.encode(full, stages=4, model=tiny_model)


def test_text_instead_of_bytes_is_a_usage_error(valid):
    with pytest.raises(UsageError, match="as text"):
        ir2icodec.info(valid.decode("latin-1"))


def test_fuzz_harness_every_door(valid, valid_alpha, forged, tiny_bundle, tmp_path):
    """Forged files and 60 mutations through all 8 doors, in a child process whose address
    space may grow by at most 1 GiB after warm-up; nothing may be mishandled."""
    files = {**forged, **hostile.mutations(valid, 60, seed=1)}
    hostile.write_corpus(files, tmp_path)
    outcomes, peak = hostile.run_in_child(
        Path(tmp_path), tiny_bundle, MAX_PIXELS, 1024, look_s=2.0, timeout_s=300
    )
    assert len(outcomes) == len(files) * len(hostile.DOORS)
    bad = [o for o in outcomes if o.result.startswith("MISHANDLED")]
    assert not bad, bad[:5]
    valid_results = {o.door: o.result for o in outcomes if o.file == "valid"}
    assert set(valid_results.values()) == {"ok"}
    assert peak < 1024 + 1024  # warmed-up harness + the cap


def test_fuzz_harness_every_door_version_3(tables_bundle, tmp_path):
    """The same forgeries and mutations of a format-version-3 file (codes counted from the
    model's bit tables), through every door with that model."""
    valid = ir2icodec.encode(smooth_image(40, 70), stages=4, model=tables_bundle)
    rgba = np.dstack([smooth_image(40, 70), np.arange(40 * 70, dtype=np.uint8).reshape(40, 70)])
    valid_alpha = ir2icodec.encode(rgba, stages=3, model=tables_bundle)
    assert ir2icodec.info(valid)["format_version"] == 3
    files = {
        **hostile.forged_corpus(valid, valid_alpha, MAX_PIXELS),
        **hostile.mutations(valid, 40, seed=2),
    }
    hostile.write_corpus(files, tmp_path)
    outcomes, _ = hostile.run_in_child(
        Path(tmp_path), tables_bundle, MAX_PIXELS, 1024, look_s=2.0, timeout_s=300
    )
    bad = [o for o in outcomes if o.result.startswith("MISHANDLED")]
    assert not bad, bad[:5]
    assert {o.result for o in outcomes if o.file == "valid"} == {"ok"}


def test_the_crc_of_a_forged_chunk_is_right():
    assert hostile.chunk(b"IEND", b"") == b"\x00\x00\x00\x00IEND" + zlib.crc32(b"IEND").to_bytes(
        4, "big"
    )


def test_a_picture_too_large_for_the_memory_is_one_line_not_a_crash(tmp_path, tiny_bundle):
    """A file within the pixel limit can still need more memory than a machine has: the
    API says so as a LimitError and the CLI exits 1 with one line, never 70 (internal)."""
    import subprocess
    import sys

    import ir2icodec as codec_api

    data = codec_api.encode(smooth_image(256, 256), stages=8, model=tiny_bundle)
    (tmp_path / "x.ir2i").write_bytes(data)
    script = (
        "import resource, sys\n"
        "import ir2icodec, ir2icodec.codec, ir2icodec.output, ir2icodec.postfilter\n"
        "from ir2icodec.cli import main\n"
        "ir2icodec.load_model(sys.argv[2])\n"
        "now = int(open('/proc/self/statm').read().split()[0]) * 4096\n"
        "resource.setrlimit(resource.RLIMIT_AS, (now + 2**20, now + 2**20))\n"
        "sys.argv = ['ir2i', 'decode', sys.argv[1], '-o', sys.argv[1] + '.png', "
        "'--model', sys.argv[2], '--quiet']\n"
        "main()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.ir2i"), tiny_bundle],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().startswith("ir2i: error: not enough memory to decode this")
    assert len(r.stderr.strip().splitlines()) == 1
