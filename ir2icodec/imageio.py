"""Reading and writing ordinary pictures (PNG, JPEG, ...) with Pillow.

The codec works on 8-bit RGB (plus an optional 8-bit alpha plane), so everything that
Pillow can open is brought to that form here, and everything unusual about the source
(animation, 16-bit depth, dropped alpha) is reported as a one-line warning instead of
being silently lost.

Untrusted input is the main concern: the pixel count is checked against ``max_pixels``
from the header *before* any pixel data is decoded, truncated files are errors (Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default ``False``), and every
exception Pillow raises while decoding becomes an ``ImageInputError``/``LimitError``
with a one-line message.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps, features

from .errors import ImageInputError, Ir2iError, LimitError, OutputError, UsageError
from .metadata import Metadata, from_pillow, save_options

AlphaPolicy = Literal["keep", "drop", "refuse"]
ALPHA_POLICIES: tuple[str, ...] = ("keep", "drop", "refuse")

# 2**28 = 268,435,456 pixels (~268 MP).  That is 3x Pillow's own warning threshold
# (Image.MAX_IMAGE_PIXELS, ~89.5 MP) and 1.5x its hard error threshold (~179 MP), and
# comfortably above 50-100 MP camera photos, while an RGB buffer of that size (~805 MB)
# still fits in memory on an ordinary machine.  Pillow's thresholds are bypassed for
# the common formats (see _open) so that this limit, not Pillow's, is what users meet.
from .container.constants import DEFAULT_MAX_PIXELS  # noqa: E402 - one owner

# Reading an input stops after this many bytes per allowed pixel (plus slack), so
# `ir2i encode /dev/zero` or an endless pipe fails instead of eating all memory.
# 8 bytes/pixel covers uncompressed 16-bit RGBA, the largest common layout.
_MAX_BYTES_PER_PIXEL = 8
_MAX_BYTES_SLACK = 64 * 2**20
_READ_CHUNK = 2**20

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_EXIF_ORIENTATION = 0x0112
# Formats whose signature is specific enough that a match means "this is that format".
_STRONG_MAGIC = frozenset({"PNG", "JPEG", "GIF", "WEBP", "TIFF", "JPEG2000", "AVIF"})

# Rawmodes with 16 bits per sample ("RGB;16B", "I;16", "LA;16B", ...).  "RGB;16" and
# "BGR;16" without a byte-order suffix are 5-6-5 packed pixels, not 16-bit samples.
_WIDE_RAWMODE = re.compile(r"(^I;16$|;16[BLN]$)")

# Output formats: canonical name -> (Pillow format, save options).
_WRITERS: dict[str, tuple[str, dict[str, object]]] = {
    # zlib level 3: a 768x512 picture in 0.036 s instead of 0.119 s at Pillow's 6, for a file
    # 8.6% larger (one-off timing, kodim23 decoded at 8 stages); level 1 saved 0.01 s more
    # for 13%. A decode is often viewed, not archived.
    "png": ("PNG", {"compress_level": 3}),
    # 4:4:4 (subsampling=0): at quality 95 chroma subsampling would be the main loss.
    "jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    # exact=True keeps the RGB of fully transparent pixels instead of zeroing them.
    "webp": ("WEBP", {"lossless": True, "exact": True}),
    "bmp": ("BMP", {}),
    "tiff": ("TIFF", {}),
    "ppm": ("PPM", {}),
}
_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "tif": "tiff", "pnm": "ppm"}
# Pillow writes RGBA BMPs but reads them back as RGB, and few viewers honour BMP alpha.
_NO_ALPHA = frozenset({"jpeg", "ppm", "bmp"})
# Largest width/height each format can store (None: no practical limit).
_MAX_SIDE = {"jpeg": 65535, "webp": 16383}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded input picture in the codec's working form."""

    rgb: np.ndarray  # (H, W, 3) uint8, EXIF orientation applied
    alpha: np.ndarray | None  # (H, W) uint8, only if the source has alpha and policy is keep
    source_format: str  # Pillow's format name, e.g. "PNG"
    source_mode: str  # Pillow mode of the source, e.g. "P", "I;16", "CMYK", "RGBA"
    warnings: list[str]  # one-line notes for stderr
    metadata: Metadata = Metadata()  # colour profile, EXIF (orientation reset), XMP

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


# --------------------------------------------------------------------------- reading


def read_image_file(
    path: str,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    alpha: AlphaPolicy = "keep",
) -> LoadedImage:
    """Read and decode the picture at ``path``; ``"-"`` reads standard input."""
    label = name or ("stdin" if path == "-" else path)
    data = read_input(path, limit=_byte_limit(max_pixels), name=label, kind="an image file")
    return read_image(data, name=label, max_pixels=max_pixels, alpha=alpha)


def read_input(path: str, *, limit: int, name: str | None = None, kind: str = "a file") -> bytes:
    """All bytes of ``path`` ("-" = stdin), at most ``limit``. Failures are one-line
    ImageInputError/LimitError naming the input; ``kind`` says what was expected."""
    label = name or ("stdin" if path == "-" else path)
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise ImageInputError("stdin is not available")
        data = _read_capped(stream, limit, label)
        if not data:
            raise ImageInputError("stdin is empty")
        return data
    try:
        with open(path, "rb") as f:
            return _read_capped(f, limit, label)
    except FileNotFoundError:
        raise ImageInputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageInputError(f"{label}: is a directory, not {kind}") from None
    except PermissionError:
        raise ImageInputError(f"{label}: permission denied") from None
    except OSError as e:
        raise ImageInputError(f"{label}: cannot read ({_reason(e)})") from None


def read_image(
    data: bytes,
    *,
    name: str = "input",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    alpha: AlphaPolicy = "keep",
) -> LoadedImage:
    """Decode an encoded picture to 8-bit RGB (+ alpha) without trusting its header."""
    if alpha not in ALPHA_POLICIES:
        raise UsageError(f"unknown alpha policy {alpha!r}; use keep, drop or refuse")
    if max_pixels < 1:
        raise UsageError(f"--max-pixels must be at least 1, not {max_pixels}")
    if not data:
        raise ImageInputError(f"{name} is empty")

    notes: list[str] = []
    fmt = "image"
    with _pillow_warnings(notes):
        try:
            im = _open(data, name)
            fmt = im.format or "image"
            source_mode = im.mode
            _check_size(im.size, name, max_pixels)
            _note_frames(im, fmt, notes)
            wide = _has_wide_samples(im)
            im.load()  # the only place the pixel data is decoded
            meta = from_pillow(im)
            im = _apply_orientation(im, notes)
        except Ir2iError:
            raise
        except MemoryError:
            raise LimitError(f"{name}: not enough memory to decode this image") from None
        except Exception as e:  # noqa: BLE001 - any failure inside the decoder is bad input
            raise _decode_error(e, name, fmt) from None
        rgb, alpha_plane = _to_rgb_alpha(im, name, wide, notes)
    return _loaded(rgb, alpha_plane, alpha, name, fmt, source_mode, notes, meta)


def convert_image(
    im: Image.Image, *, name: str = "image", alpha: AlphaPolicy = "keep"
) -> LoadedImage:
    """An already opened Pillow image (any mode) in the codec's working form.

    The same conversions as for files (palette, 16-bit, CMYK, transparency -> alpha, ...),
    without the EXIF rotation: the pixels are taken as they are.
    """
    if alpha not in ALPHA_POLICIES:
        raise UsageError(f"unknown alpha policy {alpha!r}; use keep, drop or refuse")
    notes: list[str] = []
    fmt = getattr(im, "format", None) or "image"
    with _pillow_warnings(notes):
        try:
            wide = _has_wide_samples(im)
            im.load()
            meta = from_pillow(im)
        except Ir2iError:
            raise
        except Exception as e:  # noqa: BLE001 - a lazily opened file can fail to decode here
            raise _decode_error(e, name, fmt) from None
        rgb, alpha_plane = _to_rgb_alpha(im, name, wide, notes)
    return _loaded(rgb, alpha_plane, alpha, name, fmt, im.mode, notes, meta)


def _loaded(
    rgb: np.ndarray,
    alpha_plane: np.ndarray | None,
    alpha: AlphaPolicy,
    name: str,
    fmt: str,
    source_mode: str,
    notes: list[str],
    meta: Metadata | None = None,
) -> LoadedImage:
    """Apply the alpha policy and bundle the result."""
    if alpha_plane is not None:
        if alpha == "refuse":
            raise ImageInputError(
                f"{name} has an alpha channel; pass --alpha drop to encode without it"
            )
        if alpha == "drop":
            alpha_plane = None
            notes.append("alpha channel dropped")
    return LoadedImage(
        rgb=rgb,
        alpha=alpha_plane,
        source_format=fmt,
        source_mode=source_mode,
        warnings=_dedupe(notes),
        metadata=meta or Metadata(),
    )


def _byte_limit(max_pixels: int) -> int:
    return max(1, max_pixels) * _MAX_BYTES_PER_PIXEL + _MAX_BYTES_SLACK


def _read_capped(stream: BinaryIO, limit: int, name: str) -> bytes:
    """Read all of ``stream`` but fail once more than ``limit`` bytes arrive."""
    too_big = LimitError(
        f"{name}: input is larger than {limit} bytes; pass --max-pixels to allow it"
    )
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        if st.st_size > limit:
            raise too_big
        return stream.read()
    # Pipes and devices: read in chunks, since read(limit) would allocate `limit` bytes.
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise too_big
        chunks.append(chunk)


@contextmanager
def _pillow_warnings(notes: list[str]) -> Iterator[None]:
    """Turn Python warnings raised by Pillow into our one-line notes (no stderr noise)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                # Our own max_pixels check replaces Pillow's bomb warning.
                if issubclass(w.category, Image.DecompressionBombWarning):
                    continue
                text = str(w.message).strip().splitlines()
                if text:
                    notes.append(f"decoder: {text[0]}")


def _open(data: bytes, name: str) -> ImageFile.ImageFile:
    """Identify the image like ``Image.open`` but without Pillow's decompression-bomb check.

    ``Image.open`` refuses images above 2 * Image.MAX_IMAGE_PIXELS (~179 MP) before we can
    look at the size, which would make --max-pixels useless above that value; changing
    Image.MAX_IMAGE_PIXELS is process-global, so instead the registered plugins are
    tried directly (this is the loop Image.open runs) and read_image checks the size.
    """
    registry_ok = hasattr(Image, "OPEN") and hasattr(Image, "ID")
    if not registry_ok:  # pragma: no cover - a future Pillow without the plugin registry
        return Image.open(io.BytesIO(data))
    fp = io.BytesIO(data)
    prefix = data[:16]
    failures: list[str] = []
    tried: set[str] = set()
    for loader in (Image.preinit, Image.init):
        loader()
        for fmt in list(Image.ID):
            if fmt in tried or fmt not in Image.OPEN:
                continue
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            try:
                verdict = accept(prefix) if accept else True
            except (IndexError, TypeError, ValueError, struct.error):
                continue  # some accept() functions choke on inputs shorter than 16 bytes
            if not verdict or isinstance(verdict, str):
                continue
            fp.seek(0)
            try:
                return factory(fp, "")
            except (SyntaxError, IndexError, TypeError, ValueError, EOFError, struct.error):
                # Image.open swallows these too and tries the next plugin.
                failures.append(fmt)
            except Exception as e:
                # e.g. OSError("Truncated File Read"): a recognised but broken header.
                raise _decode_error(e, name, fmt) from None
    for fmt in failures:
        if fmt in _STRONG_MAGIC:
            # The signature matched but the header is unreadable: say which format.
            raise ImageInputError(f"{name}: truncated or corrupt {fmt} header")
    raise ImageInputError(f"{name}: not an image file")


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageInputError(f"{name}: image has no pixels ({w} x {h})")
    if w * h > max_pixels:
        raise LimitError(
            f"{name}: {w} x {h} = {w * h} pixels is above the limit of {max_pixels}; "
            "pass --max-pixels to allow it"
        )


def _note_frames(im: Image.Image, fmt: str, notes: list[str]) -> None:
    """Warn about animations / multi-page files; only frame 0 is encoded. An .ir2i file's
    frames are its stage counts, and it opens at its last (every stage present): that is
    the picture it holds, so it is kept, without a note."""
    if fmt == "IR2I":
        return
    try:
        if not getattr(im, "is_animated", False):
            return
    except Exception:  # noqa: BLE001 - a broken later frame must not spoil frame 0
        return
    try:
        count: int | None = int(getattr(im, "n_frames", 0)) or None
    except Exception:  # noqa: BLE001 - counting walks every frame header
        count = None
    im.seek(0)  # is_animated/n_frames may have moved the file position
    kind = f"animated {fmt}" if fmt in ("GIF", "PNG", "WEBP", "AVIF") else f"multi-frame {fmt}"
    if count:
        notes.append(f"{kind}: encoding the first of {count} frames")
    else:
        notes.append(f"{kind}: encoding the first frame only")


def _has_wide_samples(im: ImageFile.ImageFile) -> bool:
    """Whether the source stores more than 8 bits per sample (looked up before load())."""
    if im.mode.startswith("I;16"):
        return True
    for tile in getattr(im, "tile", None) or ():
        codec, args = tile[0], tile[3]
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and _WIDE_RAWMODE.search(raw):
            return True
        # PPM/PGM give (rawmode, maxval); maxval > 255 means 16-bit samples.
        maxval = args[1] if codec == "ppm" and isinstance(args, tuple) and len(args) > 1 else 0
        if isinstance(maxval, int) and maxval > 255:
            return True
    return False


def _apply_orientation(im: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip according to EXIF orientation so the pixels are upright."""
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - damaged EXIF must not make a good image unreadable
        notes.append("unreadable EXIF data: orientation ignored")
        return im
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        transposed = ImageOps.exif_transpose(im)
        if transposed is not None:
            return transposed
    return im


def _to_rgb_alpha(
    im: Image.Image, name: str, wide: bool, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    mode = im.mode
    if mode == "I" or mode.startswith("I;16"):
        return _integer_to_rgb(im, wide, notes)
    if mode == "F":
        return _float_to_rgb(im, notes), None
    if wide:
        # Pillow already reduced 16-bit RGB(A) to 8 bits by keeping the high byte.
        notes.append("16-bit image reduced to 8 bits")
    # P/L/RGB/1 can carry a tRNS-style transparency in info: treat it as alpha.
    has_alpha = mode in _ALPHA_MODES or "transparency" in im.info
    try:
        converted = im.convert("RGBA" if has_alpha else "RGB")
    except (ValueError, OSError):
        raise ImageInputError(f"{name}: unsupported pixel format {mode}") from None
    if mode == "CMYK":
        # Pillow's CMYK->RGB ignores any ICC profile, so print colours may shift.
        notes.append("CMYK image converted to RGB without colour management")
    arr = np.array(converted, dtype=np.uint8)
    if has_alpha:
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return arr, None


def _integer_to_rgb(
    im: Image.Image, wide: bool, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Grayscale with 16- or 32-bit integer samples ("I;16*", "I") -> 8-bit RGB."""
    values = np.array(im).astype(np.int64)  # normalises byte order and signedness
    alpha = None
    t = im.info.get("transparency")
    if isinstance(t, int) and not isinstance(t, bool):
        alpha = np.where(values == t, 0, 255).astype(np.uint8)
    lo, hi = int(values.min()), int(values.max())
    if wide or (lo >= 0 and 255 < hi <= 65535):
        gray = (values * 255 + 32767) // 65535  # round(v / 257): 65535 -> 255, 257k -> k
        notes.append("16-bit image reduced to 8 bits")
    elif lo >= 0 and hi <= 255:
        gray = values
        notes.append("32-bit integer image converted to 8 bits")
    else:
        gray = _rescale(values.astype(np.float64), lo, hi)
        notes.append(f"32-bit integer image rescaled from [{lo}, {hi}] to 8 bits")
    g = np.clip(gray, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2), alpha


def _float_to_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    """32-bit float grayscale ("F") -> 8-bit RGB; [0, 1] and [0, 255] data are kept as is."""
    values = np.array(im, dtype=np.float64)
    values = np.where(np.isfinite(values), values, 0.0)  # NaN/inf carry no brightness
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0:
        gray = values * 255.0
        notes.append("floating-point image converted to 8 bits (range 0..1)")
    elif lo >= 0.0 and hi <= 255.0:
        gray = values
        notes.append("floating-point image converted to 8 bits (range 0..255)")
    else:
        gray = _rescale(values, lo, hi)
        notes.append(f"floating-point image rescaled from [{lo:g}, {hi:g}] to 8 bits")
    g = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def _rescale(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros_like(values)
    return np.rint((values - lo) * (255.0 / (hi - lo)))


def _decode_error(e: BaseException, name: str, fmt: str) -> Ir2iError:
    """Map whatever Pillow raised while decoding to a one-line user error."""
    if isinstance(e, Image.DecompressionBombError):
        # Pillow's own check inside some decoders (GIF frames, TIFF tiles, WebP).
        return LimitError(f"{name}: image is above Pillow's decompression-bomb safety limit")
    if isinstance(e, Image.UnidentifiedImageError):
        return ImageInputError(f"{name}: not an image file")
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, EOFError) or "truncated" in text.lower():
        return ImageInputError(f"{name}: truncated {fmt} data")
    return ImageInputError(f"{name}: corrupt {fmt} data ({text})")


def _dedupe(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


# --------------------------------------------------------------------------- writing


def format_for_path(path: str) -> str:
    """Output format for ``path`` from its extension.

    "-", no extension or an extension no image format uses -> "png".  An image
    extension we cannot write faithfully (GIF, PSD, ...) -> UsageError.
    """
    if path == "-":
        return "png"
    ext = os.path.splitext(path)[1].lower()
    if not ext:
        return "png"
    key = ext[1:]
    fmt = _ALIASES.get(key, key)
    if fmt in _WRITERS:
        if fmt == "webp" and not features.check("webp"):
            raise UsageError(f"{path}: this Pillow build cannot write WebP; use .png")
        return fmt
    known = Image.registered_extensions()  # every extension Pillow can read or write
    if ext in known and known[ext] != "IR2I":  # an .ir2i name gets PNG, as before the plugin
        raise UsageError(
            f"{path}: cannot write {known[ext]} images; use .png, .jpg, .webp, .bmp, .tiff or .ppm"
        )
    return "png"


def format_supports_alpha(fmt: str) -> bool:
    """Whether ``encode_image`` keeps an alpha plane in this format (JPEG/PPM/BMP drop it)."""
    return _canonical_format(fmt) not in _NO_ALPHA


def encode_image(
    rgb: np.ndarray, alpha: np.ndarray | None, fmt: str, metadata: Metadata | None = None
) -> bytes:
    """Encode 8-bit RGB (+ optional alpha) as ``fmt``, with the colour profile, EXIF and XMP
    of ``metadata`` where the format has a place for them (PNG, JPEG, WebP, TIFF).

    PNG/WebP/TIFF are lossless, JPEG is quality 95 4:4:4, BMP/PPM are uncompressed.
    JPEG, PPM and BMP do not keep alpha, so it is dropped there; check
    ``format_supports_alpha`` first to warn the user.
    """
    key = _canonical_format(fmt)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("cannot encode an image with no pixels")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (h, w) or alpha.dtype != np.uint8:
            raise ValueError(f"alpha must be ({h}, {w}) uint8, got {alpha.shape} {alpha.dtype}")
    pil_format, options = _WRITERS[key]
    side = _MAX_SIDE.get(key)
    if side is not None and max(w, h) > side:
        raise OutputError(
            f"{pil_format} cannot store a {w} x {h} image (limit {side} per side); use .png"
        )
    im = to_pil(rgb, alpha if key not in _NO_ALPHA else None)
    opts = {**options, **save_options(metadata or Metadata(), pil_format)}
    if key == "tiff" and features.check("libtiff"):
        opts["compression"] = "tiff_deflate"  # lossless and much smaller than raw
    buf = io.BytesIO()
    try:
        im.save(buf, pil_format, **opts)
    except (OSError, ValueError, KeyError) as e:
        raise OutputError(f"cannot encode {pil_format}: {e}") from None
    return buf.getvalue()


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """A Pillow image of 8-bit RGB (H, W, 3), RGBA when an (H, W) alpha plane is given."""
    if alpha is not None:
        return Image.fromarray(np.dstack([rgb, alpha]))  # (H, W, 4) uint8 -> RGBA
    return Image.fromarray(np.ascontiguousarray(rgb))  # (H, W, 3) uint8 -> RGB


def _canonical_format(fmt: str) -> str:
    key = fmt.lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in _WRITERS:
        raise UsageError(f"cannot write {fmt!r} images; use png, jpg, webp, bmp, tiff or ppm")
    return key


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """A picture file as stored, 8-bit RGB (no EXIF orientation, alpha dropped): what the
    benchmarks and the training sampler read. Users' inputs go through ``read_image_file``."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
