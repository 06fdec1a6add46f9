"""Colour profile, EXIF and XMP through ir2i encode/decode, the API and Pillow (metadata.py)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image, ImageCms

import ir2icodec
from ir2icodec import pillow
from ir2icodec.errors import CorruptDataError
from ir2icodec.metadata import EXIF_CHUNK, ICC_CHUNK, XMP_CHUNK, Metadata, from_chunks

REPO = Path(__file__).resolve().parent.parent
# A real, non-sRGB profile (CIE Lab), made by littleCMS through Pillow.
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'dc:creator="ir2i test"/></rdf:RDF></x:xmpmeta>'
)
MAKE, DATE, ORIENTATION = 0x010F, 0x0132, 0x0112


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A JPEG as a phone writes it: a profile, EXIF (camera, date, a rotation) and XMP."""
    exif = Image.Exif()
    exif[MAKE], exif[DATE], exif[ORIENTATION] = "ir2i camera", "2026:12:06 10:00:00", 6
    path = tmp_path_factory.mktemp("meta") / "phone.jpg"
    Image.fromarray(smooth_image(40, 56)).save(
        path, "JPEG", quality=95, icc_profile=ICC, exif=exif.tobytes(), xmp=XMP
    )
    return path


def _meta_of(path_or_image) -> tuple[bytes | None, dict, bytes | None]:
    im = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    with im:
        exif = im.getexif()
        return (
            im.info.get("icc_profile"),
            {MAKE: exif.get(MAKE), DATE: exif.get(DATE), ORIENTATION: exif.get(ORIENTATION)},
            im.info.get("xmp"),
        )


def _ir2i(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("out_name", ["back.png", "back.jpg", "back.webp", "back.tiff"])
def test_the_cli_keeps_profile_exif_and_xmp(photo, tmp_path, tiny_bundle, out_name):
    coded, out = tmp_path / "x.ir2i", tmp_path / out_name
    _ir2i("encode", str(photo), "-o", str(coded), "--model", tiny_bundle, "-s", "3")
    _ir2i("decode", str(coded), "-o", str(out), "--model", tiny_bundle)
    icc, exif, xmp = _meta_of(out)
    assert icc == ICC
    # The pixels were rotated upright on encode: the orientation tag now says so.
    assert exif == {MAKE: "ir2i camera", DATE: "2026:12:06 10:00:00", ORIENTATION: 1}
    assert xmp is not None and b"ir2i test" in xmp
    with Image.open(out) as im:
        assert im.size == (40, 56)  # 56 x 40 turned by the EXIF rotation
    r = _ir2i("info", str(coded))
    assert f"colour profile {len(ICC)} bytes" in r.stdout and "EXIF" in r.stdout


@pytest.mark.parametrize("strip,kept", [("metadata", {"icc"}), ("all", set())])
def test_strip(photo, tiny_model, strip, kept):
    data = ir2icodec.encode(photo, stages=2, model=tiny_model, strip=strip)
    report = ir2icodec.info(data)
    assert set(report.get("metadata", {})) == kept
    picture = ir2icodec.decode(data, model=tiny_model)
    assert ("icc_profile" in picture.info) == ("icc" in kept)
    assert "exif" not in picture.info and "xmp" not in picture.info


def test_pillow_keeps_them_both_ways(photo, tiny_model):
    pillow.configure(model=tiny_model)
    try:
        buf = io.BytesIO()
        with Image.open(photo) as im:
            im.save(buf, "IR2I", stages=2)
        opened = Image.open(io.BytesIO(buf.getvalue()))
        icc, exif, xmp = _meta_of(opened)  # before any decoding: from the chunks
        assert icc == ICC and exif[MAKE] == "ir2i camera" and b"ir2i test" in xmp
        back = io.BytesIO()
        with Image.open(io.BytesIO(buf.getvalue())) as again:
            again.convert("RGB").save(back, "PNG", icc_profile=again.info["icc_profile"])
        assert Image.open(back).info["icc_profile"] == ICC
    finally:
        pillow.configure()


def test_files_without_metadata_are_as_before(tiny_model):
    """No chunk, no report key: the earlier files' info stays as it was."""
    data = ir2icodec.encode(smooth_image(32, 32), stages=2, model=tiny_model)
    assert "metadata" not in ir2icodec.info(data)
    assert ir2icodec.decode(data, model=tiny_model).info.get("icc_profile") is None


def test_a_bomb_in_a_profile_chunk_is_refused():
    import zlib

    bomb = zlib.compress(bytes(64 * 2**20), 9)  # 64 MiB of zeros in ~65 kB
    with pytest.raises(CorruptDataError, match="larger than"):
        from_chunks({ICC_CHUNK: bomb})
    assert from_chunks({EXIF_CHUNK: b"x"}) == Metadata(exif=b"x")
    assert XMP_CHUNK == b"xMPt" and np.uint8(ICC_CHUNK[0]) & 0x20  # ancillary: lowercase first
