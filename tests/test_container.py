"""Guarantees of the .ir2i container (format-spec.md), checked on real bytes.

Files are built two ways: with ``write_container`` and, for lying or malformed files,
by hand with ``struct`` straight from the spec, so the tests pin the format itself and
not just agreement between the reader and the writer.
"""

from __future__ import annotations

import contextlib
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir2icodec.container import (
    BITS_PER_STAGE,
    BLOCK_SIZE,
    DEFAULT_MAX_PIXELS,
    FIRST_CODE_STAGES,
    MAX_STAGES,
    ChunkInfo,
    Container,
    Header,
    chunk_layout,
    read_container,
    read_header,
    write_container,
)
from ir2icodec.errors import (
    CorruptDataError,
    FormatError,
    Ir2iError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

SIG = b"\x89IR2\r\n\x1a\n"
DIGEST = bytes(range(100, 116))
IEND_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the same 12 bytes as PNG's IEND


# --------------------------------------------------------------------------- builders


def chunk(ctype: bytes, data: bytes, *, length: int | None = None, crc: int | None = None) -> bytes:
    """A chunk exactly as the spec lays it out; ``length``/``crc`` can lie."""
    if crc is None:
        crc = zlib.crc32(ctype + data)
    return (
        struct.pack(">I", len(data) if length is None else length)
        + ctype
        + data
        + (struct.pack(">I", crc))
    )


def head_data(
    *,
    version: int = 1,
    flags: int = 0,
    width: int = 40,
    height: int = 20,
    block_size: int = 32,
    bits_per_stage: int = 128,
    stages: int = 3,
    first_code_stages: int = 2,
    band_rows: int = 16,
    digest: bytes = DIGEST,
    name: bytes = b"test-model",
    name_len: int | None = None,
) -> bytes:
    return (
        struct.pack(
            ">BHIIHHBBH16sB",
            version,
            flags,
            width,
            height,
            block_size,
            bits_per_stage,
            stages,
            first_code_stages,
            band_rows,
            digest,
            len(name) if name_len is None else name_len,
        )
        + name
    )


def random_bits(header: Header, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (header.n_blocks, header.bits_per_stage)
    return [rng.integers(0, 2, shape, dtype=np.uint8) for _ in range(header.stages)]


def make_file(
    width: int = 40,
    height: int = 20,
    stages: int = 8,
    *,
    seed: int = 1,
    ancillary: dict[bytes, bytes] | None = None,
    **kw: int,
) -> tuple[bytes, Header, list[np.ndarray]]:
    header = Header(
        width=width,
        height=height,
        stages=stages,
        model_name="test-model",
        model_digest=DIGEST,
        **kw,
    )
    bits = random_bits(header, seed)
    return write_container(header, bits, ancillary), header, bits


def code_payload(header: Header, stage: int, bits: list[np.ndarray]) -> bytes:
    """Reference packing from the spec, computed with numpy instead of bitarray."""
    if stage == 1:
        block_major = np.stack(bits[:2], axis=1)  # per block: stage 1 bits, then stage 2
        return bytes([1, 2]) + np.packbits(block_major.reshape(-1)).tobytes()
    return bytes([stage, 1]) + np.packbits(bits[stage - 1].reshape(-1)).tobytes()


def assert_prefix(container: Container, bits: list[np.ndarray], n_stages: int) -> None:
    assert container.stages_found == n_stages
    for got, want in zip(container.stage_bits, bits, strict=False):
        assert got.dtype == np.uint8
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def stages_before(layout: list[ChunkInfo], cut: int) -> int:
    """Number of stages in the CODE chunks that end at or before byte ``cut``."""
    done = [c for c in layout if c.type == "CODE" and c.offset + 12 + c.length <= cut]
    return 0 if not done else FIRST_CODE_STAGES + len(done) - 1


# --------------------------------------------------------------------------- round trip


def test_constants() -> None:
    assert (BLOCK_SIZE, BITS_PER_STAGE, FIRST_CODE_STAGES, MAX_STAGES) == (32, 128, 2, 8)
    assert DEFAULT_MAX_PIXELS == 2**28


@pytest.mark.parametrize("size", [(1, 1), (33, 47), (1000, 3), (32, 32), (64, 65)])
@pytest.mark.parametrize("stages", range(2, MAX_STAGES + 1))
def test_round_trip(size: tuple[int, int], stages: int) -> None:
    width, height = size
    data, header, bits = make_file(
        width, height, stages, seed=stages, ancillary={b"aLPH": b"\x00alpha\xff" * 3}
    )
    got = read_container(data)
    assert got.header == header
    assert got.complete and got.warnings == []
    assert got.ancillary == {b"aLPH": b"\x00alpha\xff" * 3}
    assert_prefix(got, bits, stages)
    assert header.n_blocks == -(-height // 32) * -(-width // 32)
    assert read_header(data) == header
    got.stage_bits[0][0, 0] ^= 1  # arrays handed out are ordinary writable arrays


def test_round_trip_other_parameters() -> None:
    header = Header(
        width=100,
        height=70,
        stages=5,
        model_name="modèle ✓ v2",
        model_digest=DIGEST,
        block_size=16,
        bits_per_stage=64,
        band_rows=3,
    )
    bits = random_bits(header, 2)
    data = write_container(header, bits, {b"aLPH": b"", b"tEXt": b"comment"})
    got = read_container(data)
    assert got.header == header and got.header.n_blocks == 7 * 5
    assert got.ancillary == {b"aLPH": b"", b"tEXt": b"comment"}
    assert_prefix(got, bits, 5)


def test_writer_accepts_bool_and_int_arrays() -> None:
    header = Header(width=64, height=32, stages=2, model_name="m", model_digest=DIGEST)
    bits = random_bits(header, 3)
    as_bool = [b.astype(bool) for b in bits]
    as_int64 = [b.astype(np.int64) for b in bits]
    reference = write_container(header, bits)
    assert write_container(header, as_bool) == reference
    assert write_container(header, as_int64) == reference
    numpy_sized = Header(
        width=np.int32(64),
        height=np.uint16(32),
        stages=np.int64(2),
        model_name="m",
        model_digest=DIGEST,
    )
    assert numpy_sized == header and type(numpy_sized.width) is int
    assert write_container(numpy_sized, bits) == reference


def test_bytes_on_disk_follow_the_spec() -> None:
    """Byte-by-byte layout, rebuilt independently with struct and numpy.packbits."""
    header = Header(
        width=40, height=20, stages=4, model_name="test-model", model_digest=DIGEST, band_rows=5
    )
    bits = random_bits(header, 7)
    data = write_container(header, bits, {b"aLPH": b"xyz"})
    expected = (
        SIG
        + chunk(b"HEAD", head_data(width=40, height=20, stages=4, band_rows=5))
        + chunk(b"aLPH", b"xyz")
        + chunk(b"CODE", code_payload(header, 1, bits))
        + chunk(b"CODE", code_payload(header, 3, bits))
        + chunk(b"CODE", code_payload(header, 4, bits))
        + IEND_CHUNK
    )
    assert data == expected
    assert len(head_data()) == 36 + len(b"test-model")
    types = [c.type for c in chunk_layout(data)]
    assert types == ["HEAD", "aLPH", "CODE", "CODE", "CODE", "IEND"]


def test_known_test_vector() -> None:
    """The worked example of format-spec.md, section 10, byte for byte."""
    vector = bytes.fromhex(
        "894952320d0a1a0a0000002848454144010000000000010000000100200080020200100001020304"
        "05060708090a0b0c0d0e0f0464656d6f08f8903200000022434f44450102ffffffffffffffffffff"
        "ffffffffffffaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2a5f6a590000000049454e44ae426082"
    )
    header = Header(width=1, height=1, stages=2, model_name="demo", model_digest=bytes(range(16)))
    ones = np.ones((1, 128), np.uint8)
    alternating = np.tile(np.array([1, 0], np.uint8), 64)[None]
    assert write_container(header, [ones, alternating]) == vector
    got = read_container(vector)
    assert got.header == header and got.complete
    assert_prefix(got, [ones, alternating], 2)


def test_large_image_round_trip_is_fast_enough() -> None:
    # 4 MP, 8 stages: guards against per-bit Python loops creeping in.
    data, _, bits = make_file(2048, 2048, 8, seed=5)
    assert len(data) == 8 + 12 + 46 + 12 + 2 + 4096 * 32 + 6 * (12 + 2 + 4096 * 16) + 12
    assert_prefix(read_container(data), bits, 8)


# --------------------------------------------------------------------------- truncation


def test_truncation_at_every_offset() -> None:
    data, _, bits = make_file(40, 20, 8, ancillary={b"aLPH": b"alpha plane"})
    layout = chunk_layout(data)
    with pytest.raises(FormatError, match="not an ir2i file") as info:
        read_container(data[:0])
    assert type(info.value) is FormatError
    for cut in range(1, len(data) + 1):
        expected = stages_before(layout, cut)
        for salvage in (False, True):
            if expected == 0:
                with pytest.raises(TruncatedError):
                    read_container(data[:cut], salvage=salvage)
                continue
            got = read_container(data[:cut], salvage=salvage)
            assert_prefix(got, bits, expected)
            assert got.complete == (cut == len(data))
            if cut < len(data):
                assert got.warnings and "truncated" in got.warnings[0]
                assert "\n" not in got.warnings[0]
            else:
                assert got.warnings == []


def test_truncation_messages() -> None:
    data, _, _ = make_file(40, 20, 8)
    with pytest.raises(TruncatedError, match="signature"):
        read_container(SIG[:5])
    with pytest.raises(TruncatedError, match="nothing to decode"):
        read_container(SIG)
    with pytest.raises(TruncatedError, match="first code"):
        read_container(data[:120])
    last_code_end = len(data) - 12
    got = read_container(data[:last_code_end])
    assert got.stages_found == 8 and not got.complete
    assert got.warnings == ["file is truncated: all 8 stages present, but the end chunk is missing"]
    third = chunk_layout(data)[2]
    got = read_container(data[: third.offset + 12 + third.length + 5])
    assert got.warnings == ["file is truncated: 3 of 8 stages present"]


# --------------------------------------------------------------------------- damage


def test_every_single_bit_flip_is_detected_and_salvaged() -> None:
    data, _, bits = make_file(40, 20, 8, ancillary={b"aLPH": b"alpha"})
    layout = chunk_layout(data)
    head, alph, first = layout[0], layout[1], layout[2]
    later = layout[3:-1]
    iend = layout[-1]
    assert [c.type for c in later] == ["CODE"] * 6 and iend.type == "IEND"
    buf = bytearray(data)
    for pos in range(len(data)):
        for bit in range(8):
            buf[pos] ^= 1 << bit
            damaged = bytes(buf)
            buf[pos] ^= 1 << bit
            with pytest.raises(FormatError):
                read_container(damaged)
            if pos < alph.offset:  # signature or HEAD: nothing can be trusted
                assert head.offset == 8
                with pytest.raises(FormatError):
                    read_container(damaged, salvage=True)
            elif pos < first.offset:  # ancillary chunk: dropped, every stage kept
                got = read_container(damaged, salvage=True)
                assert_prefix(got, bits, 8)
                assert b"aLPH" not in got.ancillary and got.warnings
            elif pos < later[0].offset:  # first code: nothing to decode
                with pytest.raises(CorruptDataError):
                    read_container(damaged, salvage=True)
            elif pos < iend.offset:  # stage s: keep stages 1..s-1
                stage = 3 + [c.offset <= pos for c in later].count(True) - 1
                got = read_container(damaged, salvage=True)
                assert_prefix(got, bits, stage - 1)
                assert not got.complete and got.warnings
            else:  # end chunk: all stages intact, file not complete
                got = read_container(damaged, salvage=True)
                assert_prefix(got, bits, 8)
                assert not got.complete and got.warnings


def test_crc_error_message() -> None:
    data, _, _ = make_file(40, 20, 8)
    third = chunk_layout(data)[2]
    damaged = bytearray(data)
    damaged[third.offset + 20] ^= 0x10
    with pytest.raises(CorruptDataError) as info:
        read_container(bytes(damaged))
    assert str(info.value) == (
        f"CRC mismatch in chunk 'CODE' (stage 3) at byte {third.offset}: the file is damaged"
    )
    got = read_container(bytes(damaged), salvage=True)
    assert got.stages_found == 2
    prefix = f"CRC mismatch in chunk 'CODE' (stage 3) at byte {third.offset}"
    assert got.warnings[0].startswith(prefix)


def test_damaged_ancillary_length_is_resynchronised() -> None:
    # The length field is not covered by the CRC: a lie there must not hide the codes.
    data, _, bits = make_file(40, 20, 8, ancillary={b"aLPH": b"a" * 40, b"zZZZ": b"keep"})
    layout = chunk_layout(data)
    alph, first = layout[1], layout[3]
    # 40 + 16 + 12 + first.length lands exactly on the stage 3 chunk: it must not be
    # taken as the next chunk, which would silently skip the first code.
    over_first = 40 + 16 + 12 + first.length
    for lie in (0, 39, 41, 40 + 16, over_first, 1000, 2**31 + 5):
        damaged = data[: alph.offset] + struct.pack(">I", lie) + data[alph.offset + 4 :]
        with pytest.raises(FormatError):
            read_container(damaged)
        got = read_container(damaged, salvage=True)
        assert_prefix(got, bits, 8)
        assert got.complete and b"aLPH" not in got.ancillary
    # With the length intact, a CRC error only costs the damaged chunk itself.
    damaged = bytearray(data)
    damaged[alph.offset + 10] ^= 4
    got = read_container(bytes(damaged), salvage=True)
    assert got.ancillary == {b"zZZZ": b"keep"} and got.complete
    assert got.warnings[0].startswith(f"dropped damaged bytes {alph.offset}-")


def test_chunk_layout_never_raises_on_damage() -> None:
    data, _, _ = make_file(40, 20, 3)
    damaged = bytearray(data)
    damaged[-20] ^= 1
    layout = chunk_layout(bytes(damaged))
    assert [c.crc_ok for c in layout] == [True, True, False, True]
    cut = chunk_layout(data[:-30])
    assert cut[-1].type == "CODE" and not cut[-1].crc_ok
    assert cut[-1].offset + 12 + cut[-1].length > len(data) - 30
    garbage = chunk_layout(SIG + b"\x00\x00\x00\x05\x01\x02\x03\x04" + b"z" * 9)
    assert garbage == [ChunkInfo("\\x01\\x02\\x03\\x04", 8, 5, False)]
    with pytest.raises(FormatError, match="not an ir2i file"):
        chunk_layout(b"hello world")


# --------------------------------------------------------------------------- lying files


def file_with(head: bytes, *rest: bytes) -> bytes:
    return SIG + chunk(b"HEAD", head) + b"".join(rest)


def valid_codes(header: Header, bits: list[np.ndarray]) -> bytes:
    return b"".join(
        chunk(b"CODE", code_payload(header, s, bits)) for s in [1, *range(3, header.stages + 1)]
    )


SMALL = Header(width=40, height=20, stages=3, model_name="test-model", model_digest=DIGEST)
SMALL_BITS = random_bits(SMALL, 11)
SMALL_CODES = valid_codes(SMALL, SMALL_BITS)


def test_hand_built_file_is_accepted() -> None:
    got = read_container(file_with(head_data(), SMALL_CODES, IEND_CHUNK))
    assert got.header == SMALL and got.complete
    assert_prefix(got, SMALL_BITS, 3)


def test_huge_dimensions_hit_the_limit_before_any_allocation() -> None:
    lying = file_with(head_data(width=100_000, height=100_000), b"\x00" * 50)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as info:
            read_container(lying)
        with pytest.raises(LimitError):
            read_header(lying)
        # Raised above the limit: the codes are bounded by the bytes present, not the header.
        cut_code = chunk(b"CODE", b"\x01\x02" + b"\x00" * 64, length=2 + 3125 * 3125 * 32)[:200]
        huge = file_with(head_data(width=100_000, height=100_000), cut_code)
        with pytest.raises(TruncatedError):
            read_container(huge, max_pixels=10**10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    assert str(info.value) == (
        "image is 100000 x 100000 = 10000000000 pixels, above the limit of 268435456; "
        "raise max_pixels (ir2i --max-pixels) to allow it"
    )


def test_max_pixels_parameter() -> None:
    data = file_with(head_data(), SMALL_CODES, IEND_CHUNK)
    assert read_container(data, max_pixels=800).stages_found == 3
    with pytest.raises(LimitError):
        read_container(data, max_pixels=799)
    with pytest.raises(ValueError):
        read_container(data, max_pixels=0)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"width": 0}, FormatError, "width is 0"),
        ({"height": 0}, FormatError, "height is 0"),
        ({"stages": 0}, FormatError, "0 stages"),
        ({"stages": 1}, FormatError, "1 stages"),
        ({"stages": 9}, FormatError, "9 stages"),
        ({"first_code_stages": 3}, FormatError, "first code"),
        ({"block_size": 24}, FormatError, "block size"),
        ({"block_size": 512}, FormatError, "block size"),
        ({"bits_per_stage": 12}, FormatError, "bits per stage"),
        ({"bits_per_stage": 0}, FormatError, "bits per stage"),
        ({"band_rows": 0}, FormatError, "band height"),
        ({"name": b""}, FormatError, "model name"),
        ({"name": b"\xff\xfe"}, FormatError, "UTF-8"),
        ({"name": b"evil\x1b[2J"}, FormatError, "control"),
        ({"name": b"abc", "name_len": 5}, FormatError, "length"),
        ({"version": 0}, FormatError, "version 0"),
        (
            {"version": 4},
            UnsupportedVersionError,
            r"written by a newer ir2i \(format version 4\); upgrade",
        ),
        ({"flags": 4}, UnsupportedVersionError, "0x0004"),
    ],
)
def test_lying_header_is_refused(fields: dict, error: type, message: str) -> None:
    data = file_with(head_data(**fields), SMALL_CODES, IEND_CHUNK)
    with pytest.raises(error, match=message) as info:
        read_container(data)
    with pytest.raises(error):
        read_container(data, salvage=True)
    with pytest.raises(error):
        read_header(data)
    assert "\n" not in str(info.value)


def test_newer_version_refused_even_with_other_head_layout() -> None:
    with pytest.raises(UnsupportedVersionError, match="format version 4"):
        read_container(file_with(b"\x04" + b"\x00" * 80))


def test_malformed_head_chunk() -> None:
    with pytest.raises(FormatError, match="expected 'HEAD'"):
        read_container(SIG + chunk(b"aLPH", b"x") + chunk(b"HEAD", head_data()))
    with pytest.raises(FormatError, match="HEAD chunk length"):
        read_container(SIG + chunk(b"HEAD", head_data(), length=10**9))
    with pytest.raises(FormatError, match="HEAD chunk length"):
        read_container(SIG + chunk(b"HEAD", head_data()[:30]))
    with pytest.raises(CorruptDataError, match="CRC mismatch in chunk 'HEAD'"):
        read_container(SIG + chunk(b"HEAD", head_data(), crc=0))


def test_wrong_code_length_is_refused() -> None:
    first = code_payload(SMALL, 1, SMALL_BITS)
    for payload in (first[:-1], first + b"\x00"):
        data = file_with(head_data(), chunk(b"CODE", payload), IEND_CHUNK)
        with pytest.raises(FormatError, match="header implies 66"):
            read_container(data)
        with pytest.raises(CorruptDataError):
            read_container(data, salvage=True)
    later = file_with(
        head_data(),
        chunk(b"CODE", first),
        chunk(b"CODE", code_payload(SMALL, 3, SMALL_BITS)[:-2]),
        IEND_CHUNK,
    )
    with pytest.raises(FormatError, match=r"'CODE' \(stage 3\).*header implies 34"):
        read_container(later)
    assert read_container(later, salvage=True).stages_found == 2


def test_lengths_past_the_end() -> None:
    first = chunk(b"CODE", code_payload(SMALL, 1, SMALL_BITS))
    # A CODE chunk whose length differs from the header's is damage, even past the end.
    lying = file_with(head_data(), first, chunk(b"CODE", b"\x03\x01", length=10**6))
    with pytest.raises(FormatError, match="header implies"):
        read_container(lying)
    # An ancillary chunk running past the end before any code is a plain cut.
    cut = file_with(head_data(), chunk(b"aLPH", b"abc", length=5000))
    with pytest.raises(TruncatedError):
        read_container(cut)
    # The same after the first code: the stages read so far are kept.
    got = read_container(file_with(head_data(), first, chunk(b"aLPH", b"abc", length=5000)))
    assert got.stages_found == 2 and not got.complete
    with pytest.raises(FormatError, match="impossible length"):
        read_container(file_with(head_data(), chunk(b"aLPH", b"abc", length=2**31)))


def test_unknown_critical_chunk_is_refused() -> None:
    data = file_with(head_data(), chunk(b"NEWF", b"feature"), SMALL_CODES, IEND_CHUNK)
    for salvage in (False, True):
        with pytest.raises(UnsupportedVersionError, match="'NEWF'.*upgrade"):
            read_container(data, salvage=salvage)


def test_unknown_ancillary_chunks_are_kept_anywhere() -> None:
    codes = chunk_layout(file_with(head_data(), SMALL_CODES))
    split = codes[1].offset + 12 + codes[1].length - len(SIG) - 12 - len(head_data())
    data = file_with(
        head_data(),
        chunk(b"xNEW", b"\x01\x02"),
        SMALL_CODES[:split],
        chunk(b"zZzZ", b"late"),
        SMALL_CODES[split:],
        chunk(b"aLPH", b"last"),
        IEND_CHUNK,
    )
    got = read_container(data)
    assert got.complete and got.warnings == []
    assert got.ancillary == {b"xNEW": b"\x01\x02", b"zZzZ": b"late", b"aLPH": b"last"}
    assert_prefix(got, SMALL_BITS, 3)


def test_duplicate_ancillary_keeps_the_first() -> None:
    data = file_with(
        head_data(), chunk(b"aLPH", b"one"), chunk(b"aLPH", b"two"), SMALL_CODES, IEND_CHUNK
    )
    got = read_container(data)
    assert got.ancillary == {b"aLPH": b"one"}
    assert got.complete and "duplicate" in got.warnings[0]


def test_code_chunks_out_of_order_or_in_excess() -> None:
    first = chunk(b"CODE", code_payload(SMALL, 1, SMALL_BITS))
    third = chunk(b"CODE", code_payload(SMALL, 3, SMALL_BITS))
    wrong_index = chunk(b"CODE", b"\x04\x01" + code_payload(SMALL, 3, SMALL_BITS)[2:])
    with pytest.raises(FormatError, match="expected stage 3"):
        read_container(file_with(head_data(), first, wrong_index, IEND_CHUNK))
    misnumbered_first = chunk(b"CODE", b"\x02\x02" + code_payload(SMALL, 1, SMALL_BITS)[2:])
    for salvage in (False, True):
        with pytest.raises(FormatError, match="expected stages 1-2"):
            read_container(
                file_with(head_data(), misnumbered_first, third, IEND_CHUNK), salvage=salvage
            )
    with pytest.raises(FormatError, match="follows all 3"):
        read_container(file_with(head_data(), first, third, third, IEND_CHUNK))
    with pytest.raises(FormatError, match="after 2 of 3"):
        read_container(file_with(head_data(), first, IEND_CHUNK))
    early = read_container(file_with(head_data(), first, IEND_CHUNK), salvage=True)
    assert early.stages_found == 2 and not early.complete and early.warnings
    with pytest.raises(FormatError, match="second HEAD"):
        read_container(file_with(head_data(), chunk(b"HEAD", head_data()), SMALL_CODES))
    with pytest.raises(FormatError, match="invalid chunk type"):
        read_container(file_with(head_data(), chunk(b"a1b2", b""), SMALL_CODES))


def test_end_chunk_rules() -> None:
    base = file_with(head_data(), SMALL_CODES)
    with pytest.raises(FormatError, match="must be 0"):
        read_container(base + chunk(b"IEND", b"x"))
    trailing = read_container(base + IEND_CHUNK + b"junk")
    assert trailing.complete and trailing.warnings == ["ignored 4 bytes after the end chunk"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty input"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "PNG image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 30, "JPEG image"),
        (b"hello, this is text\n", "bad signature"),
        (b"\x89IR2\n\x1a\n" + b"\x00" * 30, "text mode"),  # CRLF -> LF
        (b"\x89IR2\r\n\x1a\r\n" + b"\x00" * 30, "text mode"),  # LF -> CRLF
    ],
)
def test_not_an_ir2i_file(data: bytes, message: str) -> None:
    for call in (read_container, read_header, chunk_layout):
        with pytest.raises(FormatError, match=message) as info:
            call(data)
        assert type(info.value) is FormatError
        assert str(info.value).startswith("not an ir2i file (")


def test_read_header_needs_only_the_head() -> None:
    data, header, _ = make_file(40, 20, 8)
    head_end = len(SIG) + 12 + 36 + len(b"test-model")
    assert read_header(data[:head_end]) == header
    with pytest.raises(TruncatedError):
        read_header(data[: head_end - 1])


# --------------------------------------------------------------------------- writer


def test_writer_rejects_programmer_errors() -> None:
    header = Header(width=40, height=20, stages=3, model_name="m", model_digest=DIGEST)
    bits = random_bits(header, 1)
    with pytest.raises(ValueError, match="3 stages"):
        write_container(header, bits[:2])
    with pytest.raises(ValueError, match="shape"):
        write_container(header, [bits[0][:1], *bits[1:]])
    with pytest.raises(ValueError, match="0 or 1"):
        write_container(header, [bits[0] * 2, *bits[1:]])
    with pytest.raises(ValueError, match="0 or 1"):
        write_container(header, [bits[0].astype(np.int8) - 1, *bits[1:]])
    with pytest.raises(ValueError, match="dtype"):
        write_container(header, [bits[0].astype(np.float32), *bits[1:]])
    for bad_type in (b"ALPH", b"aLP", b"a1PH", "aLPH"):
        with pytest.raises(ValueError, match="ancillary"):
            write_container(header, bits, {bad_type: b""})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "fields",
    [
        {"width": 0},
        {"height": -1},
        {"width": 2**32},
        {"stages": 1},
        {"stages": 9},
        {"model_name": ""},
        {"model_name": "x" * 256},
        {"model_name": "bad\nname"},
        {"model_digest": b"short"},
        {"block_size": 48},
        {"bits_per_stage": 100},
        {"first_code_stages": 1},
        {"band_rows": 0},
        {"flags": 1},
        {"width": 2.5},
        {"width": 2**30, "height": 2**30},
    ],
)
def test_invalid_header_construction(fields: dict) -> None:
    args = {"width": 40, "height": 20, "stages": 3, "model_name": "m", "model_digest": DIGEST}
    with pytest.raises(ValueError, match="invalid header"):
        Header(**{**args, **fields})


# --------------------------------------------------------------------------- fuzzing

FUZZ_FILES = [
    make_file(40, 20, 8, ancillary={b"aLPH": b"alpha" * 4})[0],
    make_file(1, 1, 3)[0],
    make_file(65, 33, 4, seed=9, block_size=16, bits_per_stage=32)[0],
]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 200)),
)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    buf = bytearray(data)
    for op, raw_pos, arg in ops:
        pos = raw_pos % (len(buf) + 1)
        if op == "flip" and pos < len(buf):
            buf[pos] ^= 1 << arg  # type: ignore[operator]
        elif op == "set" and pos < len(buf):
            buf[pos] = arg  # type: ignore[assignment]
        elif op == "insert":
            buf[pos:pos] = arg  # type: ignore[assignment]
        elif op == "delete":
            del buf[pos : pos + arg]  # type: ignore[operator]
        elif op == "truncate":
            del buf[pos:]
        elif op == "repeat":
            buf[pos:pos] = buf[pos : pos + arg]  # type: ignore[operator]
    return bytes(buf)


FUZZ = settings(
    max_examples=300, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(st.integers(0, len(FUZZ_FILES) - 1), st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutated_files_only_raise_ir2i_errors(which: int, ops: list) -> None:
    original = FUZZ_FILES[which]
    reference = read_container(original).stage_bits
    damaged = mutate(original, ops)
    for salvage in (False, True):
        try:
            got = read_container(damaged, salvage=salvage)
        except Ir2iError as exc:
            assert "\n" not in str(exc) and str(exc)
            continue
        # Whatever is returned is a prefix of the true stages: never wrong bits.
        assert got.stages_found <= len(reference)
        for have, want in zip(got.stage_bits, reference, strict=False):
            np.testing.assert_array_equal(have, want)
        assert all("\n" not in w for w in got.warnings)
    for probe in (read_header, chunk_layout):
        with contextlib.suppress(Ir2iError):
            probe(damaged)


chunk_types = st.sampled_from([b"CODE", b"IEND", b"HEAD", b"aLPH", b"NEWF", b"xyzw", b"\x00AB!"])


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Valid about 9 times in 10, so that fuzzing also gets past the header checks."""
    return st.integers(0, 9).flatmap(lambda k: invalid if k == 0 else valid)


head_fields = st.fixed_dictionaries(
    {
        "version": mostly(st.just(1), st.sampled_from([0, 3, 255])),
        "flags": mostly(st.just(0), st.sampled_from([1, 0x8000])),
        "width": mostly(st.integers(1, 80), st.sampled_from([0, 2**32 - 1])),
        "height": mostly(st.integers(1, 80), st.just(0)),
        "block_size": mostly(st.sampled_from([8, 16, 32]), st.sampled_from([0, 33, 512])),
        "bits_per_stage": mostly(st.sampled_from([8, 16, 128]), st.sampled_from([0, 9, 4104])),
        "stages": mostly(st.integers(2, 8), st.sampled_from([0, 1, 9, 255])),
        "first_code_stages": mostly(st.just(2), st.sampled_from([0, 1, 3])),
        "band_rows": mostly(st.integers(1, 65535), st.just(0)),
        "name": mostly(st.just(b"m"), st.binary(max_size=20)),
    }
)


def code_of_right_length(fields: dict, stage: int, index: bytes, filler: int) -> bytes:
    """A CODE payload with the length the header implies (so the length check passes)."""
    block = max(fields["block_size"], 1)
    n_blocks = -(-fields["width"] // block) * -(-fields["height"] // block)
    n_bytes = n_blocks * fields["bits_per_stage"] * (2 if stage == 1 else 1) // 8
    return index + bytes([filler]) * min(n_bytes, 100_000)


# (stage, index bytes or None for the right ones, filler byte)
right_length_code = st.tuples(
    st.integers(1, 9), st.one_of(st.none(), st.binary(min_size=2, max_size=2)), st.integers(0, 255)
)
fuzz_chunk = st.one_of(
    st.tuples(chunk_types, st.binary(max_size=80)),
    st.tuples(st.just(b"CODE"), right_length_code),
    st.tuples(st.just(b"CODE"), right_length_code),
)


@FUZZ
@given(
    head_fields, st.integers(0, 8), st.lists(fuzz_chunk, max_size=6), st.booleans(), st.booleans()
)
def test_fuzz_well_checksummed_nonsense_only_raises_ir2i_errors(
    fields: dict, n_ordered: int, chunks: list[tuple[bytes, object]], end: bool, salvage: bool
) -> None:
    # Valid CRCs everywhere, so the semantic checks (not the CRC) must catch the lies.
    # A run of well-ordered codes comes first so that the later, random chunks are met.
    stages = [] if n_ordered == 0 else [1, *range(3, n_ordered + 1)]
    ordered = [(b"CODE", (stage, None, 0x5A)) for stage in stages]
    tail = [(b"IEND", b"")] if end else []
    parts = []
    for ctype, spec in ordered + chunks + tail:
        if isinstance(spec, tuple):  # right-length CODE, stage/count bytes right or random
            stage, index, filler = spec
            if index is None:
                index = bytes([1, 2]) if stage == 1 else bytes([stage, 1])
            spec = code_of_right_length(fields, stage, index, filler)
        parts.append(chunk(ctype, spec))
    data = file_with(head_data(**fields), *parts)
    try:
        got = read_container(data, salvage=salvage, max_pixels=2**40)
    except Ir2iError as exc:
        assert "\n" not in str(exc)
        return
    assert got.stages_found >= FIRST_CODE_STAGES
    for bits in got.stage_bits:
        assert bits.shape == (got.header.n_blocks, got.header.bits_per_stage)
        assert bits.dtype == np.uint8 and bits.max(initial=0) <= 1
