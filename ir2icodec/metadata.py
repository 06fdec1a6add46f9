"""A photo's colour profile and metadata, carried through the codec.

An iPhone photo in Display P3 coded as its raw values and decoded without its ICC profile
shifts colour in every colour-managed viewer, and EXIF (camera, date, GPS) and XMP would be
lost without a word. They travel in ancillary chunks (format-spec.md §3.2), which readers that
do not know them skip, so the format version does not change:

- ``iCCP``: the ICC profile, zlib-compressed;
- ``eXIf``: the EXIF block (TIFF structure, as PNG's ``eXIf``), its orientation reset to 1
  because the pixels are stored upright;
- ``xMPt``: the XMP packet (UTF-8), zlib-compressed.

``strip`` drops them on encode: "metadata" drops EXIF and XMP (e.g. GPS, for privacy) and
keeps the profile, which the colours need; "all" drops the profile too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Literal

from PIL import Image, PngImagePlugin

from .errors import CorruptDataError, UsageError

ICC_CHUNK, EXIF_CHUNK, XMP_CHUNK = b"iCCP", b"eXIf", b"xMPt"
MAX_INFLATED = 16 * 2**20  # a profile or XMP packet larger than this is refused (a zip bomb)
EXIF_ORIENTATION = 0x0112
XMP_PNG_KEY = "XML:com.adobe.xmp"  # how PNG carries XMP (an iTXt chunk)

Strip = Literal["none", "metadata", "all"]
STRIPS: tuple[str, ...] = ("none", "metadata", "all")


@dataclass(frozen=True)
class Metadata:
    """What travels beside the pixels; None where the photo has none."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None

    def stripped(self, strip: Strip) -> Metadata:
        if strip not in STRIPS:
            raise UsageError(f"strip must be one of {', '.join(STRIPS)}, got {strip!r}")
        if strip == "none":
            return self
        kept = replace(self, exif=None, xmp=None)
        return kept if strip == "metadata" else replace(kept, icc=None)

    def summary(self) -> dict[str, int]:
        """Bytes of each part present, for ``ir2i info``."""
        return {
            k: len(v) for k, v in (("icc", self.icc), ("exif", self.exif), ("xmp", self.xmp)) if v
        }


def from_pillow(im: Image.Image) -> Metadata:
    """The profile, EXIF (orientation reset to 1) and XMP of an opened picture."""
    icc = im.info.get("icc_profile") or None
    exif = None
    try:
        source = im.getexif()
        if len(source):
            tags = Image.Exif()  # a copy: the image's own tags still drive its rotation
            tags.load(source.tobytes())
            if EXIF_ORIENTATION in tags:
                tags[EXIF_ORIENTATION] = 1  # the pixels are stored upright
            exif = tags.tobytes() or None
    except Exception:  # noqa: BLE001 - damaged EXIF is dropped, never fatal
        exif = None
    xmp = im.info.get("xmp") or im.info.get(XMP_PNG_KEY) or None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return Metadata(icc=bytes(icc) if icc else None, exif=exif, xmp=bytes(xmp) if xmp else None)


def to_chunks(meta: Metadata) -> dict[bytes, bytes]:
    """The ancillary chunks that carry ``meta``."""
    chunks = {}
    if meta.icc:
        chunks[ICC_CHUNK] = zlib.compress(meta.icc, 9)
    if meta.exif:
        chunks[EXIF_CHUNK] = meta.exif
    if meta.xmp:
        chunks[XMP_CHUNK] = zlib.compress(meta.xmp, 9)
    return chunks


def _inflate(data: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED + 1)  # bounded: no zip bomb
    except zlib.error as e:
        raise CorruptDataError(f"the {what} chunk is damaged ({e})") from None
    if len(out) > MAX_INFLATED or not inflater.eof:
        raise CorruptDataError(f"the {what} chunk is damaged or larger than {MAX_INFLATED} bytes")
    return out


def from_chunks(ancillary: dict[bytes, bytes]) -> Metadata:
    """The metadata an .ir2i file carries (none when it carries no such chunk)."""
    icc = ancillary.get(ICC_CHUNK)
    xmp = ancillary.get(XMP_CHUNK)
    return Metadata(
        icc=_inflate(icc, "colour profile") if icc else None,
        exif=ancillary.get(EXIF_CHUNK) or None,
        xmp=_inflate(xmp, "XMP") if xmp else None,
    )


def save_options(meta: Metadata, pil_format: str) -> dict:
    """Pillow ``save`` options that write ``meta`` into a PNG, JPEG, WebP or TIFF file
    (BMP and PPM have no place for it)."""
    if pil_format not in ("PNG", "JPEG", "WEBP", "TIFF"):
        return {}
    options: dict = {}
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.exif:
        options["exif"] = meta.exif
    if meta.xmp:
        if pil_format == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt(XMP_PNG_KEY, meta.xmp.decode("utf-8", "replace"), zip=True)
            options["pnginfo"] = info
        elif pil_format == "TIFF":  # one tag set: Pillow's TIFF writer takes tiffinfo or exif
            tags = Image.Exif()
            if meta.exif:
                tags.load(meta.exif)
            options["tiffinfo"] = {**dict(tags), 700: meta.xmp}  # TIFF tag 700: XMP
            options.pop("exif", None)
        else:
            options["xmp"] = meta.xmp
    return options


def pillow_info(meta: Metadata) -> dict:
    """``im.info`` entries of a decoded picture, as Pillow's own plugins name them."""
    info: dict = {}
    if meta.icc:
        info["icc_profile"] = meta.icc
    if meta.exif:
        info["exif"] = meta.exif
    if meta.xmp:
        info["xmp"] = meta.xmp
    return info
