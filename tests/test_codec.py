"""Encoding and decoding with real onnxruntime sessions of a tiny exported model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smooth_image

from ir2icodec import codec as codec_module
from ir2icodec.codec import decode, encode
from ir2icodec.container import chunk_layout, read_container, truncate_stages
from ir2icodec.errors import CorruptDataError, ModelMismatchError, UsageError
from ir2icodec.runtime import load_model


@pytest.mark.parametrize("h,w", [(1, 1), (33, 47), (1000, 3), (70, 100)])
def test_decoder_reproduces_encoder_bit_for_bit(tiny_model, h, w):
    img = smooth_image(h, w)
    result = encode(img, tiny_model, 4)
    decoded = decode(result.data, tiny_model)
    assert decoded.rgb.shape == (h, w, 3) and decoded.stages == 4
    np.testing.assert_array_equal(decoded.rgb, result.reconstruction)


def test_encoding_is_deterministic(tiny_model):
    img = smooth_image(64, 96)
    assert encode(img, tiny_model, 8).data == encode(img, tiny_model, 8).data


def test_thread_count_does_not_change_pixels(tiny_bundle):
    img = smooth_image(96, 128)
    one = load_model(tiny_bundle, device="cpu", threads=1)
    two = load_model(tiny_bundle, device="cpu", threads=2)
    data = encode(img, one, 8).data
    assert encode(img, two, 8).data == data
    np.testing.assert_array_equal(decode(data, one).rgb, decode(data, two).rgb)


def test_worker_parts_cover_the_batch_in_parts_of_equal_work(tiny_bundle):
    two = load_model(tiny_bundle, device="cpu", threads=2)
    assert two.worker_parts(np.ones(7)) == [slice(0, 3), slice(3, 7)]
    parts = two.worker_parts(np.ones(300), max_items=96)  # more parts than workers
    assert [p.stop - p.start for p in parts] == [75, 75, 75, 75]
    assert parts[0].start == 0 and parts[-1].stop == 300
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    skewed = two.worker_parts(np.array([6.0, 1, 1, 1, 1, 1, 1]))  # equal work, not items
    assert [p.stop - p.start for p in skewed] == [1, 6]
    assert load_model(tiny_bundle, device="cpu", threads=1).worker_parts(np.ones(9)) == [
        slice(0, 9)
    ]


def test_progressive_prefixes_decode_like_fewer_stages(tiny_model):
    img = smooth_image(80, 120, seed=3)
    full = encode(img, tiny_model, 8).data
    code_ends = [c.offset + c.length + 12 for c in chunk_layout(full) if c.type == "CODE"]
    assert len(code_ends) == 7  # first code + stages 3..8
    for stages, end in zip(range(2, 9), code_ends):
        cut = decode(full[:end], tiny_model)
        assert cut.stages == stages
        fewer = encode(img, tiny_model, stages)
        np.testing.assert_array_equal(cut.rgb, fewer.reconstruction)
        assert truncate_stages(full, stages) == fewer.data  # a progressive file's prefix
        np.testing.assert_array_equal(decode(full, tiny_model, max_stages=stages).rgb, cut.rgb)
        if stages < 8:
            assert any("truncated" in w for w in cut.warnings)


def test_band_height_is_read_from_the_file(tiny_model):
    img = smooth_image(200, 90, seed=5)  # 7 block rows
    for band_rows in (1, 3, 16):
        result = encode(img, tiny_model, 3, band_rows=band_rows)
        assert read_container(result.data).header.band_rows == band_rows
        np.testing.assert_array_equal(decode(result.data, tiny_model).rgb, result.reconstruction)


def test_wavefront_and_raster_schedules_agree(tiny_model):
    img = smooth_image(96, 96, seed=7)
    data = encode(img, tiny_model, 3).data
    wave = decode(data, tiny_model).rgb.astype(int)
    seq = decode(data, tiny_model, schedule="raster").rgb.astype(int)
    assert np.abs(wave - seq).max() <= 1  # same computation; only batch sizes differ


def test_alpha_is_kept_losslessly(tiny_model):
    img = smooth_image(40, 50)
    alpha = np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)
    decoded = decode(encode(img, tiny_model, 2, alpha=alpha).data, tiny_model)
    np.testing.assert_array_equal(decoded.alpha, alpha)
    assert decode(encode(img, tiny_model, 2).data, tiny_model).alpha is None


def test_damaged_alpha_is_reported(tiny_model):
    import zlib

    from ir2icodec.container import write_container

    result = encode(smooth_image(40, 50), tiny_model, 2)
    c = read_container(result.data)
    bad = write_container(c.header, c.stage_bits, {b"aLPH": zlib.compress(b"short")})
    with pytest.raises(CorruptDataError):
        decode(bad, tiny_model)


def test_other_model_is_refused(tiny_model, other_bundle):
    data = encode(smooth_image(32, 32), tiny_model, 2).data
    with pytest.raises(ModelMismatchError, match="tiny-ir2i"):
        decode(data, load_model(other_bundle, device="cpu"))


@pytest.mark.parametrize("stages", [0, 1, 9])
def test_stage_counts_out_of_range(tiny_model, stages):
    with pytest.raises(UsageError):
        encode(smooth_image(32, 32), tiny_model, stages)
    data = encode(smooth_image(32, 32), tiny_model, 2).data
    with pytest.raises(UsageError):
        decode(data, tiny_model, max_stages=stages)


def test_truncating_keeps_alpha_and_refuses_missing_stages(tiny_model):
    img = smooth_image(40, 40, seed=7)
    alpha = np.arange(1600, dtype=np.uint8).reshape(40, 40)
    full = encode(img, tiny_model, 5, alpha=alpha).data
    three = truncate_stages(full, 3)
    assert len(three) < len(full) and decode(three, tiny_model).alpha.tobytes() == alpha.tobytes()
    for stages in (1, 6):
        with pytest.raises(UsageError, match="between 2 and 5"):
            truncate_stages(full, stages)


def test_max_stages_reads_no_further_than_its_stages(tiny_model, monkeypatch):
    """decode(max_stages=k) stops after stage k's chunk, as a partial download would: later
    chunks are not entropy-decoded, so damage there does not matter."""
    from ir2icodec import entropy

    img = smooth_image(80, 120, seed=4)
    data = encode(img, tiny_model, 8).data
    last_code = [c for c in chunk_layout(data) if c.type == "CODE"][-1]
    damaged = bytearray(data)
    damaged[last_code.offset + 14] ^= 0xFF  # inside stage 8's chunk: its CRC fails
    with pytest.raises(CorruptDataError):
        decode(bytes(damaged), tiny_model)
    calls = []
    real = entropy.decode_stage_bits
    monkeypatch.setattr(
        entropy,
        "decode_stage_bits",
        lambda payload, count, *a, **k: calls.append(count) or real(payload, count, *a, **k),
    )
    three = decode(bytes(damaged), tiny_model, max_stages=3)
    assert three.stages == 3 and three.warnings == []
    assert sum(calls) <= 3  # stages 1-2 (one chunk) and 3; raw chunks skip the decoder
    np.testing.assert_array_equal(three.rgb, decode(data, tiny_model, max_stages=3).rgb)


@pytest.mark.parametrize("rate", [{"quality": 70}, {"stages": 4}])
def test_encoding_without_keeping_the_reconstruction_writes_the_same_file(tiny_model, rate):
    rgb = smooth_image(70, 45, seed=5)
    kept = encode(rgb, tiny_model, **rate)
    lean = encode(rgb, tiny_model, **rate, keep_reconstruction=False)
    assert lean.data == kept.data and lean.reconstruction is None
    np.testing.assert_array_equal(lean.stage_map, kept.stage_map)


def test_later_stages_in_small_batches_change_nothing(tiny_model, monkeypatch):
    """Stages 3.. run on batches of finished blocks (bounding the state held at once), cut
    into parts for the workers: any batch or part size gives the same file and the same
    pictures, uniform or rate-controlled."""
    rgb = smooth_image(150, 170, seed=5)  # 5 x 6 blocks
    uniform, controlled = encode(rgb, tiny_model, 6), encode(rgb, tiny_model, quality=60)
    expected = [decode(r.data, tiny_model).rgb for r in (uniform, controlled)]
    for name, size in (("LATER_STAGES_BATCH", 4), ("LATER_STAGES_PART", 3)):
        with monkeypatch.context() as patch:  # batches of 4, or parts of 3 blocks per worker
            patch.setattr(codec_module, name, size)
            again = (encode(rgb, tiny_model, 6), encode(rgb, tiny_model, quality=60))
            for before, result, picture in zip((uniform, controlled), again, expected):
                assert result.data == before.data
                np.testing.assert_array_equal(decode(result.data, tiny_model).rgb, picture)
    assert len(set(controlled.stage_map.ravel())) > 1  # the rate-controlled file varies


def test_the_bpp_of_an_n_byte_file_buys_n_bytes():
    """--target-bpp 8 N / pixels (a float) is a budget of N whole bytes, not N - 1 by
    floating-point noise (8 * 102 / 1551 * 1551 / 8 is 101.99999999999999)."""
    from ir2icodec.codec import bpp_budget_bytes

    for pixels in (33 * 47, 768 * 512, 7, 8192 * 6144):
        for n in range(1, 3000, 7):
            assert bpp_budget_bytes(8 * n / pixels, pixels) == n
    assert bpp_budget_bytes(0.5, 33 * 47) == 96  # 96.9375 bytes: the whole ones
