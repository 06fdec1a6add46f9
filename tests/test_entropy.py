"""Entropy coding of stage bits and stage maps (ir2icodec.entropy) and format version 2."""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir2icodec import entropy
from ir2icodec.container import (
    CODE,
    SMAP,
    Header,
    chunk_layout,
    read_container,
    truncate_stages,
    write_container,
)
from ir2icodec.errors import CorruptDataError, Ir2iError

LAYOUT = entropy.CodeLayout.for_block(32, 128)
DIGEST = bytes(range(16))


def _patterns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "zeros": np.zeros((n, 128), np.uint8),
        "ones": np.ones((n, 128), np.uint8),
        "random": rng.integers(0, 2, (n, 128), dtype=np.uint8),
        "alternating": np.tile(np.arange(128) % 2, (n, 1)).astype(np.uint8),
        "skewed": (rng.random((n, 128)) < 0.97).astype(np.uint8),
    }


@pytest.mark.parametrize("n", [0, 1, 2, 37, 400])
def test_stage_bits_round_trip_on_adversarial_patterns(n):
    pats = _patterns(n)
    for first in pats.values():
        for second in pats.values():
            data = entropy.encode_stage_bits([first, second], None, LAYOUT)
            back = entropy.decode_stage_bits(data, 2, n, None, LAYOUT)
            np.testing.assert_array_equal(back[0], first)
            np.testing.assert_array_equal(back[1], second)
            later = entropy.encode_stage_bits([second], first, LAYOUT)
            np.testing.assert_array_equal(
                entropy.decode_stage_bits(later, 1, n, first, LAYOUT)[0], second
            )


def test_predictable_bits_cost_far_less_than_raw():
    pats = _patterns(200)
    for name in ("zeros", "ones", "alternating"):
        assert len(entropy.encode_stage_bits([pats[name]], None, LAYOUT)) < 200 * 16 / 10
    # random bits cannot be compressed; the coder's overhead stays small
    assert len(entropy.encode_stage_bits([pats["random"]], None, LAYOUT)) < 200 * 16 * 1.02


@pytest.mark.parametrize(
    "shape,stages", [((1, 1), 2), ((1, 1), 8), ((3, 5), 4), ((16, 24), 8), ((40, 2), 3)]
)
def test_stage_map_round_trips(shape, stages):
    rng = np.random.default_rng(stages)
    for counts in (rng.integers(2, stages + 1, shape), np.full(shape, stages), np.full(shape, 2)):
        data = entropy.encode_stage_map(counts, stages)
        np.testing.assert_array_equal(entropy.decode_stage_map(data, *shape, stages), counts)


def test_forged_range_data_is_refused():
    data = entropy.encode_stage_bits([_patterns(5)["random"]], None, LAYOUT)
    with pytest.raises(entropy.EntropyError):
        entropy.decode_stage_bits(data[:-1], 1, 5, None, LAYOUT)  # not whole words
    with pytest.raises(entropy.EntropyError):
        entropy.decode_stage_bits(data + b"\xff" * 8, 1, 5, None, LAYOUT)  # words left over


# ----------------------------------------------------------------- format version 2


def _v2_file(width=100, height=70, stages=5, seed=0, ancillary=None):
    header = Header(width=width, height=height, stages=stages, model_name="m", model_digest=DIGEST)
    rng = np.random.default_rng(seed)
    smooth = (rng.random((stages, header.n_blocks, 128)) < 0.9).astype(np.uint8)
    counts = rng.integers(2, stages + 1, header.n_blocks)
    counts[0] = stages
    data = write_container(header, list(smooth), ancillary, stage_counts=counts)
    return header, smooth, counts, data


def test_a_shared_payload_cache_writes_the_same_files():
    header, smooth, counts, _ = _v2_file(stages=6)
    rng = np.random.default_rng(3)
    cache: dict[bytes, bytes] = {}
    allocations = [counts, counts, np.minimum(counts, 4), np.full(header.n_blocks, 2)]
    for _ in range(4):  # one block-stage more at a time, as the size search's fill step
        more = allocations[-1].copy()
        more[rng.integers(header.n_blocks)] += 1
        allocations.append(np.minimum(more, 6))
    for c in allocations:
        top = int(c.max())
        shorter = Header(
            width=header.width,
            height=header.height,
            stages=top,
            model_name="m",
            model_digest=DIGEST,
        )
        plain = write_container(shorter, list(smooth[:top]), stage_counts=c)
        assert (
            write_container(shorter, list(smooth[:top]), stage_counts=c, payload_cache=cache)
            == plain
        )
    # one entry per (stage, set of blocks): the all-blocks first code only once
    assert sum(key[0] == 1 for key in cache) == 1


def _expected(smooth, counts, stage):
    return np.where((counts >= stage)[:, None], smooth[stage - 1], 0)


def test_version_2_round_trip_zeroes_blocks_beyond_their_count():
    header, smooth, counts, data = _v2_file()
    got = read_container(data)
    assert got.version == 2 and got.complete
    np.testing.assert_array_equal(got.stage_counts, counts)
    for s in range(1, header.stages + 1):
        np.testing.assert_array_equal(got.stage_bits[s - 1], _expected(smooth, counts, s))
    # version 1 is still what a writer without stage counts makes, and still reads
    v1 = write_container(header, list(smooth))
    assert v1[16] == 1 and read_container(v1).version == 1


def test_version_2_cut_at_every_chunk_boundary():
    header, smooth, counts, data = _v2_file(ancillary={b"aLPH": b"x" * 10})
    layout = chunk_layout(data)
    codes = [c for c in layout if c.type == "CODE"]
    for k, chunk in enumerate(codes):
        end = chunk.offset + 12 + chunk.length
        got = read_container(data[:end])
        stages = 2 + k
        assert got.stages_found == stages and got.ancillary == {b"aLPH": b"x" * 10}
        np.testing.assert_array_equal(got.block_stages(), np.minimum(counts, stages))
        # and a cut inside the next chunk gives the same stages
        if k + 1 < len(codes):
            assert read_container(data[: end + 9]).stages_found == stages


def test_version_2_truncate_keeps_chunks_byte_identical():
    header, smooth, counts, data = _v2_file()
    short = truncate_stages(data, 3)
    got = read_container(short)
    assert got.header.stages == 3 and got.complete
    np.testing.assert_array_equal(got.stage_counts, np.minimum(counts, 3))
    old = {(c.type, c.length) for c in chunk_layout(data) if c.type == "CODE"}
    assert {(c.type, c.length) for c in chunk_layout(short) if c.type == "CODE"} <= old


def test_every_flipped_byte_of_the_new_chunks_is_caught():
    header, smooth, counts, data = _v2_file(width=64, height=64, stages=3)
    for chunk in chunk_layout(data):
        if chunk.type not in ("SMAP", "CODE"):
            continue
        for pos in range(chunk.offset + 8, chunk.offset + 12 + chunk.length):
            damaged = bytearray(data)
            damaged[pos] ^= 0x10
            with pytest.raises(CorruptDataError):
                read_container(bytes(damaged))


def test_salvage_keeps_stages_before_a_damaged_version_2_chunk():
    header, smooth, counts, data = _v2_file()
    third = [c for c in chunk_layout(data) if c.type == "CODE"][2]  # stage 4
    damaged = bytearray(data)
    damaged[third.offset + 20] ^= 0xFF
    got = read_container(bytes(damaged), salvage=True)
    assert got.stages_found == 3 and not got.complete
    smap = next(c for c in chunk_layout(data) if c.type == "SMAP")
    damaged = bytearray(data)
    damaged[smap.offset + 9] ^= 0xFF
    with pytest.raises(CorruptDataError, match="stage map"):
        read_container(bytes(damaged), salvage=True)


def test_incompressible_chunks_fall_back_to_raw_bits():
    header = Header(width=64, height=64, stages=2, model_name="m", model_digest=DIGEST)
    rng = np.random.default_rng(5)
    bits = [rng.integers(0, 2, (4, 128), dtype=np.uint8) for _ in range(2)]
    data = write_container(header, bits, stage_counts=np.full(4, 2))
    code = next(c for c in chunk_layout(data) if c.type == "CODE")
    assert code.length <= 3 + 4 * 2 * 16  # never more than the raw bits + 3 bytes
    got = read_container(data)
    np.testing.assert_array_equal(got.stage_bits[0], bits[0])


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(ctype))
    return len(payload).to_bytes(4, "big") + ctype + payload + crc.to_bytes(4, "big")


@settings(max_examples=150, deadline=None)
@given(
    smap=st.binary(max_size=40),
    codes=st.lists(st.binary(max_size=120), max_size=4),
    coding=st.sampled_from([0, 1, 7]),
)
def test_fuzzed_version_2_chunks_only_raise_ir2i_errors(smap, codes, coding):
    """SMAP and CODE chunks with valid CRCs but arbitrary contents."""
    header, _, _, data = _v2_file(width=70, height=40, stages=4)
    head_end = chunk_layout(data)[0].offset + 12 + chunk_layout(data)[0].length
    body = _chunk(SMAP, bytes([coding]) + smap)
    for k, payload in enumerate(codes):
        first, count = (1, 2) if k == 0 else (k + 2, 1)
        body += _chunk(CODE, bytes([first, count, coding]) + payload)
    forged = data[:head_end] + body + _chunk(b"IEND", b"")
    for salvage in (False, True):
        with contextlib.suppress(Ir2iError):
            got = read_container(forged, salvage=salvage)
            assert all(b.shape == (header.n_blocks, 128) for b in got.stage_bits)


def _reference_costs(stage: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """The context model of format-spec.md section 5.2 written plainly, one flat array of
    counts per level, every context checked against the limit after every step: each
    block's ideal code length under it."""
    n, bits = stage.shape
    channels, rows, cols = LAYOUT.channels, LAYOUT.rows, LAYOUT.cols
    fine = np.zeros((2, channels * 81), np.int64)  # zeros, ones
    coarse = np.zeros((2, 81), np.int64)
    cost = np.zeros(n)
    for k in range(bits):
        c, rest = divmod(k, rows * cols)
        y, x = divmod(rest, cols)

        def bit(offset: int, exists: bool, k=k) -> np.ndarray:
            return stage[:, k - offset].astype(np.int64) if exists else np.full(n, 2)

        p = previous[:, k].astype(np.int64) if previous is not None else np.full(n, 2)
        ctx = ((bit(1, x > 0) * 3 + bit(cols, y > 0)) * 3 + bit(rows * cols, c > 0)) * 3 + p
        f = c * 81 + ctx
        f1, ft = fine[1, f], fine[0, f] + fine[1, f]
        c1, ct = coarse[1, ctx], coarse[0, ctx] + coarse[1, ctx]
        norm = 2 * ct + 2
        num, den = f1 * norm + 16 * (2 * c1 + 1), (ft + 16) * norm
        p_one = np.clip(num * 2**15 // den, 1, 2**15 - 1) / 2**15
        b = stage[:, k].astype(np.int64)
        cost -= np.log2(np.where(b == 1, p_one, 1 - p_one))
        for counts, index in ((fine, f), (coarse, ctx)):
            np.add.at(counts[1], index, b)
            np.add.at(counts[0], index, 1 - b)
            big = counts.sum(axis=0) > 4096
            counts[:, big] = (counts[:, big] + 1) // 2
    return cost


@pytest.mark.parametrize("n", [3, 400, 9000])  # 9000 blocks: counts pass the limit twice over
def test_the_coder_follows_the_written_context_model(n):
    pats = _patterns(n, seed=n)
    for previous in (None, pats["random"]):
        for name in ("skewed", "random"):
            ours = entropy.stage_bit_costs([pats[name]], previous, LAYOUT)[0]
            np.testing.assert_array_equal(ours, _reference_costs(pats[name], previous))
    data = entropy.encode_stage_bits([pats["skewed"], pats["random"]], None, LAYOUT)
    back = entropy.decode_stage_bits(data, 2, n, None, LAYOUT)
    np.testing.assert_array_equal(back[0], pats["skewed"])
    np.testing.assert_array_equal(back[1], pats["random"])
