"""Tests for ir2icodec.imageio: every test picture is built here with Pillow / by hand."""

from __future__ import annotations

import io
import struct
import sys
import types
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from ir2icodec import imageio
from ir2icodec.errors import ImageInputError, LimitError, OutputError, UsageError
from ir2icodec.imageio import (
    DEFAULT_MAX_PIXELS,
    encode_image,
    format_for_path,
    format_supports_alpha,
    read_image,
    read_image_file,
)

# --- helpers


def _save(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w, c) if c > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _raw_png(width: int, height: int, depth: int, color_type: int, pixels: bytes | None) -> bytes:
    """A PNG built by hand, so 16-bit files and lying headers can be made."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    if pixels is None:  # header only, with a tiny (wrong) IDAT
        idat = zlib.compress(b"\x00" * 16)
    else:
        row = len(pixels) // height
        idat = zlib.compress(
            b"".join(b"\x00" + pixels[y * row : (y + 1) * row] for y in range(height))
        )
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


# --- RGB / sizes


@pytest.mark.parametrize("h,w", [(1, 1), (1, 17), (17, 1), (7, 5), (33, 64)])
def test_rgb_png_is_exact_for_any_size(h: int, w: int) -> None:
    arr = _noise(h, w)
    got = read_image(_save(Image.fromarray(arr)), name="x.png")
    assert got.rgb.shape == (h, w, 3)
    assert got.rgb.dtype == np.uint8
    np.testing.assert_array_equal(got.rgb, arr)
    assert got.alpha is None
    assert got.source_format == "PNG"
    assert got.source_mode == "RGB"
    assert got.warnings == []


def test_returned_arrays_are_writable_and_contiguous() -> None:
    got = read_image(_save(Image.fromarray(_noise(4, 6, 4))))
    for a in (got.rgb, got.alpha):
        assert a is not None
        assert a.flags.c_contiguous and a.flags.writeable
    assert (got.width, got.height) == (6, 4)


# --- gray / palette / alpha


def test_grayscale_l_becomes_equal_channels() -> None:
    g = _noise(5, 9, 1)
    got = read_image(_save(Image.fromarray(g)))
    assert got.source_mode == "L"
    for c in range(3):
        np.testing.assert_array_equal(got.rgb[..., c], g)
    assert got.alpha is None


def test_grayscale_la_keeps_alpha() -> None:
    g, a = _noise(5, 9, 1, 1), _noise(5, 9, 1, 2)
    la = Image.merge("LA", [Image.fromarray(g), Image.fromarray(a)])
    got = read_image(_save(la))
    assert got.source_mode == "LA"
    np.testing.assert_array_equal(got.rgb[..., 1], g)
    np.testing.assert_array_equal(got.alpha, a)


def test_one_bit_image() -> None:
    bits = _noise(6, 10, 1) > 127
    got = read_image(_save(Image.fromarray(bits)))
    assert got.source_mode == "1"
    np.testing.assert_array_equal(got.rgb[..., 0], np.where(bits, 255, 0))


def test_palette_without_transparency() -> None:
    rgb = _noise(8, 8)
    p = Image.fromarray(rgb).quantize(16)
    got = read_image(_save(p))
    assert got.source_mode == "P"
    assert got.alpha is None
    np.testing.assert_array_equal(got.rgb, np.array(p.convert("RGB")))


def test_palette_with_transparent_index_becomes_alpha() -> None:
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    p = Image.fromarray(idx, "L").convert("P")
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    got = read_image(_save(p, transparency=1))
    assert got.alpha is not None
    np.testing.assert_array_equal(got.alpha, np.where(idx == 1, 0, 255))
    np.testing.assert_array_equal(got.rgb[0, 0], [255, 0, 0])


def test_palette_with_partial_alpha_table() -> None:
    idx = np.array([[0, 1, 2, 3]], np.uint8)
    p = Image.fromarray(idx, "L").convert("P")
    p.putpalette(list(range(12)) + [0] * 756)
    got = read_image(_save(p, transparency=bytes([0, 85, 170, 255])))
    np.testing.assert_array_equal(got.alpha, [[0, 85, 170, 255]])


def test_gray_png_with_trns_colour_becomes_alpha() -> None:
    g = np.array([[0, 50, 100]], np.uint8)
    got = read_image(_save(Image.fromarray(g), transparency=50))
    np.testing.assert_array_equal(got.alpha, [[255, 0, 255]])


def test_rgba_alpha_policies() -> None:
    arr = _noise(4, 5, 4)
    data = _save(Image.fromarray(arr))
    kept = read_image(data, name="a.png")
    np.testing.assert_array_equal(kept.rgb, arr[..., :3])
    np.testing.assert_array_equal(kept.alpha, arr[..., 3])
    assert kept.warnings == []

    dropped = read_image(data, name="a.png", alpha="drop")
    assert dropped.alpha is None
    np.testing.assert_array_equal(dropped.rgb, arr[..., :3])
    assert dropped.warnings == ["alpha channel dropped"]

    with pytest.raises(ImageInputError) as e:
        read_image(data, name="a.png", alpha="refuse")
    assert str(e.value) == "a.png has an alpha channel; pass --alpha drop to encode without it"


def test_fully_opaque_alpha_is_still_returned() -> None:
    arr = _noise(3, 3, 4)
    arr[..., 3] = 255
    got = read_image(_save(Image.fromarray(arr)))
    assert got.alpha is not None and (got.alpha == 255).all()


def test_refuse_and_drop_do_not_affect_images_without_alpha() -> None:
    data = _save(Image.fromarray(_noise(3, 3)))
    assert read_image(data, alpha="refuse").warnings == []
    assert read_image(data, alpha="drop").warnings == []


def test_unknown_alpha_policy_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        read_image(b"x", alpha="maybe")  # type: ignore[arg-type]


# --- deep / odd modes


def test_16bit_grayscale_png_is_scaled_with_rounding() -> None:
    values = np.array([[0, 257, 257 * 100, 65535, 128, 129]], dtype=">u2")
    got = read_image(_raw_png(6, 1, 16, 0, values.tobytes()))
    assert got.source_mode.startswith("I")
    np.testing.assert_array_equal(got.rgb[0, :, 0], [0, 1, 100, 255, 0, 1])
    assert "16-bit image reduced to 8 bits" in got.warnings


def test_16bit_grayscale_from_pillow_array() -> None:
    values = np.array([[0, 65535], [32896, 1000]], dtype=np.uint16)
    got = read_image(_save(Image.fromarray(values)))
    np.testing.assert_array_equal(got.rgb[..., 2], [[0, 255], [128, 4]])


def test_16bit_rgb_png_keeps_high_byte_and_warns() -> None:
    rgb16 = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 3001).astype(">u2")
    got = read_image(_raw_png(3, 2, 16, 2, rgb16.tobytes()))
    assert got.source_mode == "RGB"  # Pillow reduces 48-bit PNGs on open
    np.testing.assert_array_equal(got.rgb, (rgb16.astype(np.int64) >> 8).astype(np.uint8))
    assert "16-bit image reduced to 8 bits" in got.warnings


def test_16bit_rgba_png_keeps_alpha() -> None:
    rgba16 = (np.arange(2 * 2 * 4).reshape(2, 2, 4) * 4000).astype(">u2")
    got = read_image(_raw_png(2, 2, 16, 6, rgba16.tobytes()))
    assert got.alpha is not None
    np.testing.assert_array_equal(got.alpha, (rgba16[..., 3].astype(np.int64) >> 8))
    assert "16-bit image reduced to 8 bits" in got.warnings


def test_16bit_ppm_warns() -> None:
    ppm = b"P6 2 1 65535\n" + np.array([[[0, 256, 65535], [1000, 40000, 512]]], ">u2").tobytes()
    got = read_image(ppm)
    assert got.rgb[0, 0, 2] == 255
    assert "16-bit image reduced to 8 bits" in got.warnings


def test_8bit_png_does_not_warn_about_depth() -> None:
    assert read_image(_save(Image.fromarray(_noise(2, 2)), "BMP")).warnings == []


def test_int32_tiff_small_values_kept() -> None:
    data = _save(Image.fromarray(np.array([[0, 7, 255]], np.int32)), "TIFF")
    got = read_image(data)
    assert got.source_mode == "I"
    np.testing.assert_array_equal(got.rgb[0, :, 0], [0, 7, 255])


def test_int32_tiff_wide_range_rescaled() -> None:
    data = _save(Image.fromarray(np.array([[-100, 0, 1_000_000]], np.int32)), "TIFF")
    got = read_image(data)
    assert got.rgb[0, 0, 0] == 0 and got.rgb[0, 2, 0] == 255
    assert any("rescaled" in w for w in got.warnings)


@pytest.mark.parametrize(
    "values,expected",
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),
        ([0.0, 100.0, 255.0], [0, 100, 255]),
        ([-1.0, 0.0, 1000.0], [0, 0, 255]),
        ([float("nan"), 0.25, float("inf")], [0, 64, 0]),
    ],
)
def test_float_tiff(values: list[float], expected: list[int]) -> None:
    data = _save(Image.fromarray(np.array([values], np.float32)), "TIFF")
    got = read_image(data)
    assert got.source_mode == "F"
    np.testing.assert_array_equal(got.rgb[0, :, 1], expected)
    assert any("floating-point" in w for w in got.warnings)


def test_cmyk_jpeg_becomes_rgb() -> None:
    arr = np.zeros((16, 16, 3), np.uint8)
    arr[:8] = (200, 30, 30)
    arr[8:] = (20, 160, 220)
    data = _save(Image.fromarray(arr).convert("CMYK"), "JPEG", quality=95)
    got = read_image(data)
    assert got.source_mode == "CMYK"
    assert got.rgb.shape == (16, 16, 3)
    assert np.abs(got.rgb.astype(int) - arr).mean() < 4
    assert any("CMYK" in w for w in got.warnings)


# --- orientation


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


@pytest.mark.parametrize("orientation,k", [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_png_exact(orientation: int, k: int) -> None:
    arr = _noise(3, 5)
    got = read_image(_save(Image.fromarray(arr), exif=_exif(orientation)))
    np.testing.assert_array_equal(got.rgb, np.rot90(arr, k))


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_jpeg_transposes_dimensions(orientation: int) -> None:
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16] = 255  # left half white
    got = read_image(_save(Image.fromarray(arr), "JPEG", exif=_exif(orientation)))
    assert got.rgb.shape == (32, 16, 3)
    # 6 = rotate 90 CW to display: the white left half ends up on top; 8: at the bottom.
    top, bottom = got.rgb[:16].mean(), got.rgb[16:].mean()
    assert (top > bottom) == (orientation == 6)


def test_exif_orientation_with_palette_transparency() -> None:
    p = Image.fromarray(np.array([[0, 1, 1]], np.uint8), "L").convert("P")
    got = read_image(_save(p, transparency=0, exif=_exif(6)))
    assert got.rgb.shape == (3, 1, 3)
    np.testing.assert_array_equal(got.alpha[:, 0], [0, 255, 255])


# --- animation


def _frames() -> list[Image.Image]:
    return [Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 100, 200)]


def test_animated_gif_first_frame_and_warning() -> None:
    f = _frames()
    got = read_image(_save(f[0], "GIF", save_all=True, append_images=f[1:]))
    assert got.source_format == "GIF"
    assert (got.rgb == 10).all()
    assert got.warnings == ["animated GIF: encoding the first of 3 frames"]


def test_animated_png_first_frame_and_warning() -> None:
    f = _frames()
    got = read_image(_save(f[0], "PNG", save_all=True, append_images=f[1:]))
    assert (got.rgb == 10).all()
    assert got.warnings == ["animated PNG: encoding the first of 3 frames"]


def test_still_gif_has_no_warning() -> None:
    got = read_image(_save(_frames()[1], "GIF"))
    assert (got.rgb == 100).all()
    assert got.warnings == []


# --- broken inputs


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_png(fraction: float) -> None:
    data = _save(Image.fromarray(_noise(64, 64)))
    with pytest.raises(ImageInputError) as e:
        read_image(data[: int(len(data) * fraction)], name="photo.png")
    assert str(e.value) == "photo.png: truncated PNG data"


def test_png_cut_after_header() -> None:
    data = _save(Image.fromarray(_noise(8, 8)))
    with pytest.raises(ImageInputError) as e:
        read_image(data[:33], name="photo.png")
    assert "photo.png: truncated or corrupt PNG" in str(e.value)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, -2])
@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg(cut: float, progressive: bool) -> None:
    data = _save(Image.fromarray(_noise(64, 64)), "JPEG", progressive=progressive)
    end = int(len(data) * cut) if cut > 0 else len(data) + int(cut)
    with pytest.raises(ImageInputError) as e:
        read_image(data[:end], name="photo.jpg")
    assert str(e.value).startswith("photo.jpg: truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_png_crc() -> None:
    data = bytearray(_save(Image.fromarray(_noise(16, 16))))
    data[60] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(ImageInputError) as e:
        read_image(bytes(data), name="photo.png")
    assert str(e.value).startswith("photo.png: ")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "data",
    [b"hello, this is text\n", bytes(100), b"\x01\x02", b"P3\n", bytes(range(256)) * 4],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageInputError) as e:
        read_image(data, name="photo.png")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("photo.png: ")


def test_text_file_message() -> None:
    with pytest.raises(ImageInputError) as e:
        read_image(b"just some text, not a picture", name="notes.txt")
    assert str(e.value) == "notes.txt: not an image file"


def test_empty_input() -> None:
    with pytest.raises(ImageInputError) as e:
        read_image(b"", name="photo.png")
    assert str(e.value) == "photo.png is empty"


def test_decompression_bomb_checked_before_decoding() -> None:
    bomb = _raw_png(100_000, 100_000, 8, 2, None)  # 10 gigapixels claimed, ~60 bytes
    with pytest.raises(LimitError) as e:
        read_image(bomb, name="input.png")
    assert str(e.value) == (
        "input.png: 100000 x 100000 = 10000000000 pixels is above the limit of "
        f"{DEFAULT_MAX_PIXELS}; pass --max-pixels to allow it"
    )


def test_max_pixels_boundary() -> None:
    data = _save(Image.fromarray(_noise(4, 4)))
    assert read_image(data, max_pixels=16).rgb.shape == (4, 4, 3)
    with pytest.raises(LimitError):
        read_image(data, max_pixels=15)
    with pytest.raises(UsageError):
        read_image(data, max_pixels=0)


def test_our_limit_replaces_pillows_bomb_check() -> None:
    # 200 MP is above Pillow's hard limit (~179 MP) but below ours: identification must
    # not fail, and with a smaller max_pixels our own message must be the one raised.
    header = _raw_png(20_000, 10_000, 8, 2, None)
    assert 2 * Image.MAX_IMAGE_PIXELS < 200_000_000 < DEFAULT_MAX_PIXELS
    assert imageio._open(header, "big.png").size == (20_000, 10_000)
    with pytest.raises(LimitError, match="limit of 1000000; pass --max-pixels"):
        read_image(header, name="big.png", max_pixels=1_000_000)


def test_pillow_bomb_error_becomes_limit_error() -> None:
    err = imageio._decode_error(Image.DecompressionBombError("x"), "a.gif", "GIF")
    assert isinstance(err, LimitError)


def test_no_python_warnings_escape() -> None:
    p = Image.fromarray(np.array([[0, 1]], np.uint8), "L").convert("P")
    f = _frames()
    inputs = [
        _save(p, "GIF", transparency=0),
        _save(f[0], "GIF", save_all=True, append_images=f[1:]),
        _raw_png(4, 4, 16, 2, bytes(4 * 4 * 6)),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for data in inputs:
            read_image(data)


# --- files / stdin


def test_read_image_file(tmp_path) -> None:
    path = tmp_path / "a.png"
    arr = _noise(3, 4)
    path.write_bytes(_save(Image.fromarray(arr)))
    got = read_image_file(str(path))
    np.testing.assert_array_equal(got.rgb, arr)


def test_read_image_file_errors(tmp_path) -> None:
    with pytest.raises(ImageInputError, match="no such file"):
        read_image_file(str(tmp_path / "missing.png"))
    with pytest.raises(ImageInputError, match="is a directory"):
        read_image_file(str(tmp_path))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageInputError) as e:
        read_image_file(str(empty))
    assert str(e.value) == f"{empty} is empty"


def _fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


def test_read_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    arr = _noise(2, 3)
    _fake_stdin(monkeypatch, _save(Image.fromarray(arr)))
    got = read_image_file("-")
    np.testing.assert_array_equal(got.rgb, arr)


def test_empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_stdin(monkeypatch, b"")
    with pytest.raises(ImageInputError) as e:
        read_image_file("-")
    assert str(e.value) == "stdin is empty"


def test_stdin_bad_data_is_named_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_stdin(monkeypatch, b"not an image")
    with pytest.raises(ImageInputError) as e:
        read_image_file("-")
    assert str(e.value) == "stdin: not an image file"


def test_endless_stream_is_capped() -> None:
    with pytest.raises(LimitError, match="larger than 1000 bytes"):
        imageio._read_capped(io.BytesIO(bytes(5000)), 1000, "stdin")
    assert imageio._read_capped(io.BytesIO(bytes(1000)), 1000, "stdin") == bytes(1000)


# --- writing


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff", "bmp", "ppm"])
def test_encode_lossless_formats_round_trip(fmt: str) -> None:
    arr = _noise(7, 5)
    got = read_image(encode_image(arr, None, fmt))
    np.testing.assert_array_equal(got.rgb, arr)
    assert got.alpha is None


def test_encode_jpeg_is_high_quality() -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    arr = np.stack([yy * 8, xx * 8, (yy + xx) * 4], axis=-1).astype(np.uint8)
    got = read_image(encode_image(arr, None, "jpg"))
    assert got.source_format == "JPEG"
    assert np.abs(got.rgb.astype(int) - arr).mean() < 2


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
def test_encode_keeps_alpha(fmt: str) -> None:
    arr, a = _noise(4, 6), _noise(4, 6, 1, 9)
    a[0, 0] = 0  # fully transparent pixel: its RGB must survive too
    got = read_image(encode_image(arr, a, fmt))
    np.testing.assert_array_equal(got.rgb, arr)
    np.testing.assert_array_equal(got.alpha, a)
    assert format_supports_alpha(fmt)


@pytest.mark.parametrize("fmt", ["jpeg", "ppm", "bmp"])
def test_encode_drops_alpha_where_unsupported(fmt: str) -> None:
    got = read_image(encode_image(_noise(4, 6), _noise(4, 6, 1), fmt))
    assert got.alpha is None
    assert not format_supports_alpha(fmt)


def test_encode_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError):
        encode_image(np.zeros((4, 4), np.uint8), None, "png")
    with pytest.raises(ValueError):
        encode_image(np.zeros((4, 4, 3), np.float32), None, "png")
    with pytest.raises(ValueError):
        encode_image(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), "png")
    with pytest.raises(UsageError):
        encode_image(np.zeros((4, 4, 3), np.uint8), None, "gif")


def test_encode_webp_size_limit() -> None:
    with pytest.raises(OutputError, match="16383"):
        encode_image(np.zeros((1, 16384, 3), np.uint8), None, "webp")


@pytest.mark.parametrize(
    "path,fmt",
    [
        ("-", "png"),
        ("out.png", "png"),
        ("OUT.PNG", "png"),
        ("a/b.c/out", "png"),
        ("out.ir2i", "png"),
        ("out.unknownext", "png"),
        ("x.jpg", "jpeg"),
        ("x.JPEG", "jpeg"),
        ("x.webp", "webp"),
        ("x.bmp", "bmp"),
        ("x.tif", "tiff"),
        ("x.tiff", "tiff"),
        ("x.ppm", "ppm"),
    ],
)
def test_format_for_path(path: str, fmt: str) -> None:
    assert format_for_path(path) == fmt


@pytest.mark.parametrize("path", ["x.psd", "x.gif", "x.pgm"])
def test_format_for_path_refuses_unwritable(path: str) -> None:
    with pytest.raises(UsageError, match=path):
        format_for_path(path)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    with_alpha=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_png_round_trip_property(h: int, w: int, with_alpha: bool, seed: int) -> None:
    arr = _noise(h, w, 3, seed)
    a = _noise(h, w, 1, seed + 1) if with_alpha else None
    got = read_image(encode_image(arr, a, "png"))
    np.testing.assert_array_equal(got.rgb, arr)
    if a is None:
        assert got.alpha is None
    else:
        np.testing.assert_array_equal(got.alpha, a)
