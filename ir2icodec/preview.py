"""Progressive previews: an .ir2i file's picture at every stage count, side by side or as an
animation, each labelled with its stage count and the bits per pixel a download of that many
stages costs (``ir2i decode IN --progressive [animation|strip] -o steps.png``)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import api
from .errors import UsageError
from .imageio import encode_image, format_supports_alpha

Layout = Literal["animation", "strip"]
LAYOUTS: tuple[str, ...] = ("animation", "strip")
ANIMATED_FORMATS = {"png": "PNG", "webp": "WEBP"}
FRAME_MS, LAST_FRAME_MS = 700, 2000
STRIP_COLUMNS = 4  # a strip wraps into rows of this many pictures
_GAP = 4
_BACKGROUND = (255, 255, 255, 255)
_INK = (0, 0, 0, 255)


@dataclass(frozen=True)
class Frame:
    """The picture of the first ``stages`` stages and the size of that file prefix."""

    stages: int
    bpp: float
    image: Image.Image  # RGB, or RGBA when the file carries alpha


def work(n_blocks: int, stages: int, first: int = 2) -> int:
    """Block-stages decoded to make every frame up to ``stages`` (for a progress bar): one
    pass over the stages, each block-stage once."""
    return n_blocks * stages


def decode_frames(
    data: bytes, *, progress: Callable[[int], None] | None = None, **settings: Any
) -> tuple[list[Frame], list[str]]:
    """Every stage count from the first code up to ``max_stages`` (default: all present),
    decoded in one pass over the stages (``api.decode_stage_counts``, which takes
    ``settings``); returns the frames and the decoder's warnings."""
    pictures = api.decode_stage_counts(data, progress=progress, **settings)
    bpp = {
        p["stages"]: p["bpp"]
        for p in api.progressive_prefixes(
            data, max_pixels=settings.get("max_pixels", api.DEFAULT_MAX_PIXELS)
        )
    }
    frames = [Frame(p.stages, bpp.get(p.stages, float("nan")), p.pil()) for p in pictures]
    return frames, pictures[-1].warnings


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font, scalable
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def label(frame: Frame) -> str:
    return f"{frame.stages} stages  {frame.bpp:.3f} bpp"


def labelled(frame: Frame, text: str | None = None) -> Image.Image:
    """The frame with its label (or ``text``) on a white band below it."""
    w, h = frame.image.size
    font = _font(max(10, min(24, w // 16)))
    text = label(frame) if text is None else text
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    band = box[3] - box[1] + 2 * _GAP
    out = Image.new("RGBA", (w, h + band), _BACKGROUND)
    out.paste(frame.image.convert("RGBA"), (0, 0))
    ImageDraw.Draw(out).text((_GAP, h + _GAP - box[1]), text, fill=_INK, font=font)
    return out if frame.image.mode == "RGBA" else out.convert("RGB")


def strip(frames: Sequence[Frame], columns: int = STRIP_COLUMNS) -> Image.Image:
    """The labelled frames side by side, in rows of ``columns``."""
    tiles = [labelled(f) for f in frames]
    w, h = tiles[0].size
    cols = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // cols)
    mode = tiles[0].mode
    out = Image.new(
        mode, (cols * w + (cols - 1) * _GAP, rows * h + (rows - 1) * _GAP), _BACKGROUND[: len(mode)]
    )
    for i, tile in enumerate(tiles):
        out.paste(tile, ((i % cols) * (w + _GAP), (i // cols) * (h + _GAP)))
    return out


def check_layout(layout: str, fmt: str) -> None:
    """UsageError unless ``layout`` can be written in the output format ``fmt``."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown --progressive layout {layout!r}; use animation or strip")
    if layout == "animation" and fmt not in ANIMATED_FORMATS:
        raise UsageError(
            f"--progressive animation writes PNG or WebP, not {fmt.upper()}; "
            "use .png, .webp or --progressive strip"
        )


def animation(frames: Sequence[Frame], fmt: str = "png") -> bytes:
    """The labelled frames as an animated PNG (APNG) or WebP, looping, the last one held."""
    check_layout("animation", fmt)
    tiles = [labelled(f) for f in frames]
    durations = [FRAME_MS] * (len(tiles) - 1) + [LAST_FRAME_MS]
    options: dict[str, object] = {"lossless": True} if fmt == "webp" else {}
    buf = io.BytesIO()
    tiles[0].save(
        buf,
        ANIMATED_FORMATS[fmt],
        save_all=True,
        append_images=tiles[1:],
        duration=durations,
        loop=0,
        **options,
    )
    return buf.getvalue()


def render(frames: Sequence[Frame], layout: Layout, fmt: str) -> bytes:
    """The bytes of the preview file: ``layout`` in the output format ``fmt``."""
    check_layout(layout, fmt)
    if layout == "animation":
        return animation(frames, fmt)
    picture = np.asarray(strip(frames))
    alpha = picture[..., 3] if picture.shape[2] == 4 else None
    return encode_image(picture[..., :3], alpha, fmt)


def progressive_file(
    data: bytes,
    layout: Layout,
    fmt: str,
    *,
    progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> tuple[bytes, list[str]]:
    """Decode every stage count and render the preview file; returns its bytes and the
    warnings to print (the decoder's, and an alpha plane the format cannot keep).
    ``settings``: ``api.decode_stage_counts``'s (max_stages, model, salvage, ...)."""
    check_layout(layout, fmt)
    frames, notes = decode_frames(data, progress=progress, **settings)
    if frames[0].image.mode == "RGBA" and layout == "strip" and not format_supports_alpha(fmt):
        notes = [*notes, f"{fmt.upper()} has no alpha channel: the file's alpha is not written"]
    return render(frames, layout, fmt), notes
