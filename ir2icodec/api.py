"""The public Python API: ``encode``, ``decode``, ``info`` and ``load_model``.

Re-exported at the package top level::

    import ir2icodec
    data = ir2icodec.encode(image, stages=4)             # numpy array, PIL image or a path
    picture = ir2icodec.decode(data, max_stages=3)        # a PIL image (or numpy: output=)
    ir2icodec.info(data)["progressive"]                   # bytes and bpp per stage count

Errors are the CLI's: subclasses of :class:`ir2icodec.errors.Ir2iError` whose message is
the line ``ir2i`` prints after ``ir2i: error:``; the CLI's warnings are issued as
:class:`ir2icodec.errors.Ir2iWarning`. The heavy modules (onnxruntime) are imported on the
first call, so ``import ir2icodec`` stays cheap.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from PIL import Image

from . import options
from .container import (
    DEFAULT_MAX_PIXELS,
    SIGNATURE,
    ChunkInfo,
    Container,
    chunk_layout,
    read_container,
    read_header,
)
from .errors import Ir2iWarning, LimitError, UsageError
from .imageio import AlphaPolicy, LoadedImage, convert_image, read_image_file, read_input, to_pil

if TYPE_CHECKING:
    from .runtime import OnnxModel

    ModelLike = OnnxModel | str | os.PathLike | None  # a loaded model, a bundle or a name

__all__ = ["encode", "decode", "info", "load_model", "progressive_prefixes"]

Device = Literal["auto", "cpu", "cuda"]
ImageLike = np.ndarray | Image.Image | str | os.PathLike  # what encode() takes
DataLike = bytes | bytearray | memoryview | str | os.PathLike  # .ir2i bytes or a file's path
Progress = Callable[[int], None]


def max_file_bytes(max_pixels: int) -> int:
    """The largest .ir2i file read for an image of ``max_pixels`` (a guard, like the CLI's)."""
    # 8 stages x 128 bits per 32x32 block is 1 bpp; allow headers and chunks on top.
    return max_pixels // 8 + 2**20


def load_model(name_or_dir: str | os.PathLike | None = None, device: Device = "cpu",
               threads: int | None = None) -> OnnxModel:
    """Load a model bundle: a directory, a shipped model's name, or None for the default.

    ``device`` is ``"cpu"``, ``"cuda"`` (needs ``pip install 'ir2i[gpu]'``) or ``"auto"``;
    ``threads`` caps onnxruntime's threads (default: all cores). The onnxruntime sessions
    are created on first use and kept, so reuse the returned model for many images.
    """
    from .runtime import load_model as _load

    return _load(None if name_or_dir is None else os.fspath(name_or_dir), device, threads)


@functools.lru_cache(maxsize=8)
def _cached_model(name_or_dir: str | None, device: str) -> OnnxModel:
    return load_model(name_or_dir, device)  # type: ignore[arg-type]


def _model(model: ModelLike, device: Device) -> OnnxModel:
    """An ``OnnxModel`` as is; a name, a path or None loaded once per process."""
    from .runtime import OnnxModel

    if isinstance(model, OnnxModel):
        return model
    return _cached_model(None if model is None else os.fspath(model), device)


def _warn(notes: Iterable[str]) -> None:
    for note in notes:
        warnings.warn(note, Ir2iWarning, stacklevel=3)


def _as_image(image: ImageLike, alpha: AlphaPolicy, max_pixels: int) -> LoadedImage:
    if isinstance(image, str | os.PathLike):
        return read_image_file(os.fspath(image), max_pixels=max_pixels, alpha=alpha)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or not (
                image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
            raise UsageError(f"the image must be a uint8 array of shape (H, W), (H, W, 3) or "
                             f"(H, W, 4), got {image.shape} {image.dtype}")
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1
                                else image)
    if not isinstance(image, Image.Image):
        raise UsageError(f"cannot encode a {type(image).__name__}: pass a numpy array, "
                         "a PIL image or a path")
    if image.width * image.height > max_pixels:
        raise UsageError(f"{image.width} x {image.height} = {image.width * image.height} "
                         f"pixels is above the limit of {max_pixels}; pass max_pixels")
    return convert_image(image, alpha=alpha)


def encode(image: ImageLike, *, stages: int | None = None, quality: float | None = None,
           target_bpp: float | None = None, model: ModelLike = None,
           device: Device = "cpu", alpha: AlphaPolicy = "keep",
           max_pixels: int = DEFAULT_MAX_PIXELS, progress: Progress | None = None) -> bytes:
    """Encode a picture into the bytes of an ``.ir2i`` file.

    ``image``: a uint8 numpy array (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; a PIL
    image of any mode (converted like the CLI converts files: palette, 16-bit, CMYK, ...);
    or the path of an image file (EXIF orientation applied). An alpha channel is stored
    losslessly (``alpha="drop"`` or ``"refuse"`` to change that).

    Rate: ``quality`` (0..100, default 50: each block gets the stages that buy the most
    quality) or ``target_bpp`` (the best quality that fits), with ``stages`` as the cap; or
    ``stages`` alone (2..8) for every block the same count.
    ``model``: a loaded model, a bundle directory or a shipped model's name (default: the
    shipped default, ``ir2icodec.runtime.DEFAULT_MODEL``), loaded once per process on ``device``.
    """
    stages, quality = options.stage_count(stages), options.quality(quality)
    target_bpp, max_pixels = options.target_bpp(target_bpp), options.max_pixels(max_pixels)
    device, alpha = options.device(device), options.alpha(alpha)  # type: ignore[assignment]
    if isinstance(image, str | os.PathLike) and _is_ir2i_file(image):
        # Re-encoding an .ir2i file: its whole picture (every stage present), decoded with
        # the given model when it made the file, else with the shipped one the file names.
        made_it = _model(model, device) if model is not None else None
        digest = read_header(_read_data(image, max_pixels), max_pixels=max_pixels).model_digest
        image = decode(image, model=made_it if made_it and made_it.digest == digest else None,
                       device=device, max_pixels=max_pixels)
    loaded = _as_image(image, alpha, max_pixels)
    _warn(loaded.warnings)
    from .codec import encode as encode_image

    result = encode_image(loaded.rgb, _model(model, device), stages, quality=quality,
                          target_bpp=target_bpp, alpha=loaded.alpha, progress=progress,
                          keep_reconstruction=False)
    return result.data


def _is_ir2i_file(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SIGNATURE)) == SIGNATURE
    except OSError:
        return False  # reading it as an image reports the problem


def _read_data(data: DataLike, max_pixels: int) -> bytes:
    """The file's bytes, at most what an image of ``max_pixels`` can take (a path is read
    up to that cap; bytes over it are refused before any parsing)."""
    got = options.file_data(data)
    limit = max_file_bytes(max_pixels)
    if isinstance(got, str):
        return read_input(got, limit=limit, kind="an .ir2i file")
    if len(got) > limit:
        raise LimitError(f"the data is {len(got)} bytes, more than an .ir2i file of "
                         f"{max_pixels} pixels can be ({limit})")
    return got


@overload
def decode(data: DataLike, *, max_stages: int | None = ..., model: ModelLike = ...,
           device: Device = ..., salvage: bool = ..., max_pixels: int = ...,
           output: Literal["pil"] = ..., progress: Progress | None = ...,
           postfilter: bool = ...) -> Image.Image: ...


@overload
def decode(data: DataLike, *, max_stages: int | None = ..., model: ModelLike = ...,
           device: Device = ..., salvage: bool = ..., max_pixels: int = ...,
           output: Literal["numpy"], progress: Progress | None = ...,
           postfilter: bool = ...) -> np.ndarray: ...


def decode(data: DataLike, *, max_stages: int | None = None, model: ModelLike = None,
           device: Device = "cpu", salvage: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
           output: Literal["pil", "numpy"] = "pil", progress: Progress | None = None,
           postfilter: bool = True) -> Image.Image | np.ndarray:
    """Decode ``.ir2i`` bytes (or a file's path) to a picture.

    ``max_stages`` decodes at most that many stages (2..8), as a partial download would;
    a truncated file decodes to the complete stages it holds (with an ``Ir2iWarning``),
    ``salvage=True`` keeps the stages before a damaged chunk. Returns a PIL image, RGB or
    RGBA when the file carries alpha; ``output="numpy"`` gives the (H, W, 3) / (H, W, 4)
    uint8 array instead. ``model`` must be the model that made the file (default: the
    shipped model the file names, else the default one). ``postfilter=False`` skips the
    model's post-filter (``ir2i decode --no-filter``): the bit-exact reconstruction.
    """
    if output not in ("pil", "numpy"):
        raise UsageError(f"output must be 'pil' or 'numpy', not {output!r}")
    max_stages = options.stage_count(max_stages, "max_stages")
    salvage, postfilter = options.flag(salvage, "salvage"), options.flag(postfilter, "postfilter")
    max_pixels, device = options.max_pixels(max_pixels), options.device(device)  # type: ignore
    raw = _read_data(data, max_pixels)
    from .codec import decode as decode_data

    if model is None:  # the shipped model that made the file, when there is one
        from .runtime import model_for_file

        model = model_for_file(None, read_header(raw, max_pixels=max_pixels).model_name)
    decoded = decode_data(raw, _model(model, device), max_stages=max_stages, salvage=salvage,
                          max_pixels=max_pixels, progress=progress, postfilter=postfilter)
    _warn(decoded.warnings)
    if output == "numpy":
        if decoded.alpha is None:
            return decoded.rgb
        return np.dstack([decoded.rgb, decoded.alpha])
    return to_pil(decoded.rgb, decoded.alpha)


def progressive_prefixes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                         layout: list[ChunkInfo] | None = None) -> list[dict[str, Any]]:
    """For each complete stage count: the size of the file cut after it (what a progressive
    download needs to show that many stages), ``{"stages", "bytes", "bpp"}``. ``layout``:
    ``chunk_layout(data)``, if the caller has it already."""
    header = read_header(data, max_pixels=max_pixels)
    pixels = header.width * header.height
    prefixes = []
    stage = 0
    for chunk in layout if layout is not None else chunk_layout(data):
        if chunk.type == "CODE" and chunk.crc_ok:
            stage = header.first_code_stages if stage == 0 else stage + 1
            end = chunk.offset + chunk.length + 12
            prefixes.append({"stages": stage, "bytes": end, "bpp": round(8 * end / pixels, 4)})
    return prefixes


def stage_histogram(container: Container) -> list[dict[str, int]] | None:
    """How many blocks have each stage count (capped by the stages present):
    ``[{"stages": n, "blocks": k}, ...]`` for the counts that occur; None when the read left
    a version-2 stage map coded (``read_container(codes=False)`` on a map too large to
    decode cheaply)."""
    if container.version >= 2 and container.stage_counts is None:
        return None
    counts = np.bincount(container.block_stages(), minlength=container.header.stages + 1)
    return [{"stages": n, "blocks": int(c)} for n, c in enumerate(counts) if c]


def info(data: DataLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """What ``ir2i info --json`` reports, without decoding any pixels or codes: size, stages
    (declared and present), model, bpp, the progressive prefixes, the chunks and any
    warnings. It reads the header and the chunk table (and a small stage map), so it costs
    about as much as checking the file's CRCs, whatever the file declares."""
    raw = _read_data(data, options.max_pixels(max_pixels))
    header = read_header(raw, max_pixels=max_pixels)
    container = read_container(raw, max_pixels=max_pixels, salvage=True, codes=False)
    layout = chunk_layout(raw)
    pixels = header.width * header.height
    return {
        "file_bytes": len(raw), "width": header.width, "height": header.height,
        "block_size": header.block_size, "blocks": [header.blocks_y, header.blocks_x],
        "stages": header.stages, "stages_present": container.stages_found,
        "complete": container.complete, "first_code_stages": header.first_code_stages,
        "bits_per_stage": header.bits_per_stage, "band_rows": header.band_rows,
        "flags": header.flags, "model": header.model_name,
        "model_digest": header.model_digest.hex(),
        "bpp": round(8 * len(raw) / pixels, 4),
        "progressive": progressive_prefixes(raw, max_pixels=max_pixels, layout=layout),
        "format_version": container.version, "stage_histogram": stage_histogram(container),
        "chunks": [c._asdict() for c in layout], "warnings": container.warnings,
    }
