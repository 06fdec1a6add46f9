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

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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
    read_header_and_version,
)
from .errors import Ir2iWarning, LimitError, UsageError
from .imageio import AlphaPolicy, LoadedImage, convert_image, read_image_file, read_input, to_pil
from .metadata import Metadata, Strip, from_chunks, pillow_info, to_chunks
from .tuning import Tune, model_for

if TYPE_CHECKING:
    from .runtime import OnnxModel

    ModelLike = OnnxModel | str | os.PathLike | None  # a loaded model, a bundle or a name

__all__ = [
    "encode",
    "decode",
    "info",
    "load_model",
    "progressive_prefixes",
    "truncate",
    "encode_with_warnings",
    "decode_with_warnings",
    "decode_stage_counts",
    "summary",
    "Encoded",
    "Picture",
    "Summary",
    "load_image",
    "pillow_info",
]

Device = Literal["auto", "cpu", "cuda"]
# What encode() takes (a LoadedImage: what load_image() read, as the CLI passes it).
ImageLike = np.ndarray | Image.Image | str | os.PathLike | LoadedImage
DataLike = bytes | bytearray | memoryview | str | os.PathLike  # .ir2i bytes or a file's path
Progress = Callable[[int], None]


def max_file_bytes(max_pixels: int) -> int:
    """The largest .ir2i file read for an image of ``max_pixels`` (a guard, like the CLI's)."""
    # 8 stages x 128 bits per 32x32 block is 1 bpp; allow headers and chunks on top.
    return max_pixels // 8 + 2**20


def load_model(
    name_or_dir: str | os.PathLike | None = None, device: Device = "cpu", threads: int | None = None
) -> OnnxModel:
    """Load a model bundle: a directory, a shipped model's name, or None for the default.

    ``device`` is ``"cpu"``, ``"cuda"`` (needs ``pip install 'ir2i[gpu]'``) or ``"auto"``;
    ``threads`` caps onnxruntime's threads (default: all cores). The onnxruntime sessions
    are created on first use and kept, so reuse the returned model for many images.
    """
    from .runtime import load_model as _load

    return _load(None if name_or_dir is None else os.fspath(name_or_dir), device, threads)


@functools.lru_cache(maxsize=8)
def _cached_model(name_or_dir: str | None, device: str, threads: int | None) -> OnnxModel:
    return load_model(name_or_dir, device, threads)  # type: ignore[arg-type]


def _model(model: ModelLike, device: Device, threads: int | None = None) -> OnnxModel:
    """An ``OnnxModel`` as is; a name, a path or None loaded once per process."""
    from .runtime import OnnxModel

    if isinstance(model, OnnxModel):
        return model
    return _cached_model(None if model is None else os.fspath(model), device, threads)


def _model_for_file(
    model: ModelLike, header_name: str, device: Device, threads: int | None
) -> OnnxModel:
    """The model to decode a file with: the one given, else the shipped model the file
    names, else the default (which the decoder then checks against the file)."""
    from .runtime import OnnxModel, model_for_file

    if isinstance(model, OnnxModel):
        return model
    chosen = model_for_file(None if model is None else os.fspath(model), header_name)
    return _model(chosen, device, threads)


@contextlib.contextmanager
def _enough_memory(what: str) -> Iterator[None]:
    """A picture the limits allow can still need more memory than the machine has: say so
    in one line (a ``LimitError``) instead of letting numpy's ``MemoryError`` through."""
    try:
        yield
    except MemoryError:
        raise LimitError(
            f"not enough memory to {what}; lower max_pixels (ir2i --max-pixels) to refuse "
            "pictures this large"
        ) from None


def _warn(notes: Iterable[str]) -> None:
    for note in notes:
        warnings.warn(note, Ir2iWarning, stacklevel=3)


def _as_image(image: ImageLike, alpha: AlphaPolicy, max_pixels: int) -> LoadedImage:
    if isinstance(image, str | os.PathLike):
        return read_image_file(os.fspath(image), max_pixels=max_pixels, alpha=alpha)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
        ):
            raise UsageError(
                f"the image must be a uint8 array of shape (H, W), (H, W, 3) or "
                f"(H, W, 4), got {image.shape} {image.dtype}"
            )
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if not isinstance(image, Image.Image):
        raise UsageError(
            f"cannot encode a {type(image).__name__}: pass a numpy array, a PIL image or a path"
        )
    if image.width * image.height > max_pixels:
        raise UsageError(
            f"{image.width} x {image.height} = {image.width * image.height} "
            f"pixels is above the limit of {max_pixels}; pass max_pixels"
        )
    return convert_image(image, alpha=alpha)


def load_image(
    image: ImageLike,
    *,
    alpha: AlphaPolicy = "keep",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    model: ModelLike = None,
    device: Device = "cpu",
) -> LoadedImage:
    """The picture ``encode`` codes, as 8-bit RGB (+ alpha) with the notes of reading it.
    An ``.ir2i`` file gives its whole picture (every stage present), decoded with ``model``
    when that model made it, else with the shipped one the file names."""
    alpha = options.alpha(alpha)  # type: ignore[assignment]
    max_pixels = options.max_pixels(max_pixels)
    if isinstance(image, str | os.PathLike) and _is_ir2i_file(image):
        header, version = read_header_and_version(
            _read_data(image, max_pixels), max_pixels=max_pixels
        )
        coder = _model(model, device) if model is not None else None
        image = decode(
            image,
            model=coder if coder is not None and coder.made(header, version) else None,
            device=device,
            max_pixels=max_pixels,
        )
    return _as_image(image, alpha, max_pixels)


@dataclass(frozen=True)
class Encoded:
    """An encode's file and the notes a front end shows (the CLI as warnings)."""

    data: bytes
    warnings: list[str]


def encode_with_warnings(
    image: ImageLike,
    *,
    stages: int | None = None,
    quality: float | None = None,
    target_bpp: float | None = None,
    target_bytes: int | None = None,
    model: ModelLike = None,
    device: Device = "cpu",
    threads: int | None = None,
    alpha: AlphaPolicy = "keep",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    strip: Strip = "none",
    tune: Tune | None = None,
) -> Encoded:
    """``encode``, with its notes returned instead of issued (every front end's way in)."""
    model = model_for(model, options.tune(tune))  # type: ignore[arg-type]
    stages, quality = options.stage_count(stages), options.quality(quality)
    target_bpp, max_pixels = options.target_bpp(target_bpp), options.max_pixels(max_pixels)
    target_bytes = options.target_bytes(target_bytes)
    device, alpha = options.device(device), options.alpha(alpha)  # type: ignore[assignment]
    threads, strip = options.threads(threads), options.strip(strip)  # type: ignore[assignment]
    coder = _model(model, device, threads)
    loaded = (
        image
        if isinstance(image, LoadedImage)
        else load_image(
            image,
            alpha=alpha,
            max_pixels=max_pixels,
            model=coder if model is not None else None,
            device=device,
        )
    )
    from .codec import bpp_budget_bytes
    from .codec import encode as encode_image

    with _enough_memory("encode this picture"):
        result = encode_image(
            loaded.rgb,
            coder,
            stages,
            quality=quality,
            target_bpp=target_bpp,
            target_bytes=target_bytes,
            alpha=loaded.alpha,
            progress=progress,
            keep_reconstruction=False,
            extra_chunks=to_chunks(loaded.metadata.stripped(strip)),
        )
    notes = list(loaded.warnings)
    if target_bytes is not None or target_bpp is not None:
        h, w = loaded.rgb.shape[:2]
        budget = target_bytes if target_bytes is not None else bpp_budget_bytes(target_bpp, h * w)
        if len(result.data) > budget:
            notes.append(
                f"even the first code alone takes {len(result.data)} bytes, above "
                f"the target of {int(budget)}"
            )
        elif result.target_above_top:
            # The target buys more than this model codes: say so rather than let a user
            # read the small file as the quality that budget buys.
            within = f" in at most {stages} stages" if stages is not None else ""
            notes.append(
                f"the best picture this model codes{within} takes {len(result.data)} bytes, "
                f"below the target of {int(budget)}"
            )
    return Encoded(result.data, notes)


def encode(
    image: ImageLike,
    *,
    stages: int | None = None,
    quality: float | None = None,
    target_bpp: float | None = None,
    target_bytes: int | None = None,
    model: ModelLike = None,
    device: Device = "cpu",
    threads: int | None = None,
    alpha: AlphaPolicy = "keep",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    strip: Strip = "none",
    tune: Tune | None = None,
) -> bytes:
    """Encode a picture into the bytes of an ``.ir2i`` file.

    ``image``: a uint8 numpy array (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; a PIL
    image of any mode (converted like the CLI converts files: palette, 16-bit, CMYK, ...);
    the path of an image file (EXIF orientation applied; an ``.ir2i`` file gives its whole
    picture), or "-" for standard input. An alpha channel is stored losslessly
    (``alpha="drop"`` or ``"refuse"`` to change that).

    Rate: ``quality`` (0..100, default 50: each block gets the stages that buy the most
    quality), ``target_bpp`` or ``target_bytes`` (the best quality that fits), with
    ``stages`` as the cap; or ``stages`` alone (2..8) for every block the same count.
    ``model``: a loaded model, a bundle directory or a shipped model's name (default: the
    shipped default, ``ir2icodec.runtime.DEFAULT_MODEL``), loaded once per process on ``device``
    with ``threads`` onnxruntime threads (default: all cores). ``tune="psnr"`` instead picks
    the shipped model trained for squared error (rate control then weighs squared error);
    ``"msssim"`` is the default model. Notes (e.g. an animated input,
    a size target below the first code) are issued as ``Ir2iWarning``. The input's colour
    profile, EXIF and XMP are kept (``strip="metadata"`` drops EXIF and XMP, ``"all"`` the
    profile too).
    """
    result = encode_with_warnings(
        image,
        stages=stages,
        quality=quality,
        target_bpp=target_bpp,
        target_bytes=target_bytes,
        model=model,
        device=device,
        threads=threads,
        alpha=alpha,
        max_pixels=max_pixels,
        progress=progress,
        strip=strip,
        tune=tune,
    )
    _warn(result.warnings)
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
        raise LimitError(
            f"the data is {len(got)} bytes, more than an .ir2i file of "
            f"{max_pixels} pixels can be ({limit})"
        )
    return got


@dataclass(frozen=True)
class Picture:
    """A decoded picture: ``rgb`` (H, W, 3) uint8, ``alpha`` (H, W) when the file carries
    one, the stage count it shows, and the decoder's notes (e.g. a truncated file)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    stages: int
    warnings: list[str]
    metadata: Metadata = Metadata()  # the colour profile, EXIF and XMP the file carries

    def array(self) -> np.ndarray:
        """(H, W, 3), or (H, W, 4) with the alpha plane."""
        return self.rgb if self.alpha is None else np.dstack([self.rgb, self.alpha])

    def pil(self) -> Image.Image:
        """A PIL image; the profile, EXIF and XMP in ``im.info`` (``getexif()`` reads them)."""
        im = to_pil(self.rgb, self.alpha)
        im.info.update(pillow_info(self.metadata))
        return im


def _decode_options(
    max_stages: Any, salvage: Any, postfilter: Any, max_pixels: Any, device: Any, threads: Any
) -> tuple:
    return (
        options.stage_count(max_stages, "max_stages"),
        options.flag(salvage, "salvage"),
        options.flag(postfilter, "postfilter"),
        options.max_pixels(max_pixels),
        options.device(device),
        options.threads(threads),
    )


def _decoded(
    run: Callable[..., Any],
    data: DataLike,
    max_stages: Any,
    model: ModelLike,
    device: Any,
    threads: Any,
    salvage: Any,
    max_pixels: Any,
    progress: Progress | None,
    postfilter: Any,
) -> Any:
    """``run`` (``codec.decode`` or ``codec.decode_stage_counts``) on checked options, the
    file's bytes and the model that made it."""
    max_stages, salvage, postfilter, max_pixels, device, threads = _decode_options(
        max_stages, salvage, postfilter, max_pixels, device, threads
    )
    raw = _read_data(data, max_pixels)
    coder = _model_for_file(
        model, read_header(raw, max_pixels=max_pixels).model_name, device, threads
    )
    with _enough_memory("decode this file"):
        return run(
            raw,
            coder,
            max_stages=max_stages,
            salvage=salvage,
            max_pixels=max_pixels,
            progress=progress,
            postfilter=postfilter,
        )


def _picture(d: Any) -> Picture:
    return Picture(d.rgb, d.alpha, d.stages, d.warnings, d.metadata)


def decode_with_warnings(
    data: DataLike,
    *,
    max_stages: int | None = None,
    model: ModelLike = None,
    device: Device = "cpu",
    threads: int | None = None,
    salvage: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    postfilter: bool = True,
) -> Picture:
    """``decode``, with the notes returned in the ``Picture`` instead of issued."""
    from .codec import decode as decode_data

    return _picture(
        _decoded(
            decode_data,
            data,
            max_stages,
            model,
            device,
            threads,
            salvage,
            max_pixels,
            progress,
            postfilter,
        )
    )


def decode_stage_counts(
    data: DataLike,
    *,
    max_stages: int | None = None,
    model: ModelLike = None,
    device: Device = "cpu",
    threads: int | None = None,
    salvage: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    postfilter: bool = True,
) -> list[Picture]:
    """The picture of every stage count from the first code (2) up to ``max_stages``
    (default: all present), decoded in one pass over the stages: each is what
    ``decode(data, max_stages=k)`` gives. The decoder's notes ride on the last picture."""
    from .codec import decode_stage_counts as decode_all

    decoded = _decoded(
        decode_all,
        data,
        max_stages,
        model,
        device,
        threads,
        salvage,
        max_pixels,
        progress,
        postfilter,
    )
    return [_picture(d) for d in decoded]


@overload
def decode(
    data: DataLike,
    *,
    max_stages: int | None = ...,
    model: ModelLike = ...,
    device: Device = ...,
    threads: int | None = ...,
    salvage: bool = ...,
    max_pixels: int = ...,
    output: Literal["pil"] = ...,
    progress: Progress | None = None,
    postfilter: bool = ...,
) -> Image.Image: ...


@overload
def decode(
    data: DataLike,
    *,
    max_stages: int | None = ...,
    model: ModelLike = ...,
    device: Device = ...,
    threads: int | None = ...,
    salvage: bool = ...,
    max_pixels: int = ...,
    output: Literal["numpy"],
    progress: Progress | None = None,
    postfilter: bool = ...,
) -> np.ndarray: ...


def decode(
    data: DataLike,
    *,
    max_stages: int | None = None,
    model: ModelLike = None,
    device: Device = "cpu",
    threads: int | None = None,
    salvage: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    output: Literal["pil", "numpy"] = "pil",
    progress: Progress | None = None,
    postfilter: bool = True,
) -> Image.Image | np.ndarray:
    """Decode ``.ir2i`` bytes (or a file's path, "-" for standard input) to a picture.

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
    picture = decode_with_warnings(
        data,
        max_stages=max_stages,
        model=model,
        device=device,
        threads=threads,
        salvage=salvage,
        max_pixels=max_pixels,
        progress=progress,
        postfilter=postfilter,
    )
    _warn(picture.warnings)
    return picture.array() if output == "numpy" else picture.pil()


def truncate(
    data: DataLike, stages: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, model: ModelLike = None
) -> bytes:
    """A complete file of the first ``stages`` stages of ``data``: byte for byte what the
    encoder writes when asked for that many, without running any network. A file of format
    version 3 is re-coded with its model's bit tables (``model``: as for ``decode``; the
    tables are read, no network is loaded)."""
    stages = options.stage_count(stages, optional=False)  # type: ignore[assignment]
    max_pixels = options.max_pixels(max_pixels)
    from .codec import check_model
    from .container import truncate_stages

    raw = _read_data(data, max_pixels)
    header, version = read_header_and_version(raw, max_pixels=max_pixels)
    tables = None
    if version >= 3:
        coder = _model_for_file(model, header.model_name, "cpu", None)
        check_model(header, coder, version)
        tables = coder.bit_tables
    return truncate_stages(raw, stages, max_pixels=max_pixels, tables=tables)


def declared_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone, before any limit (for a viewer's own
    decompression-bomb check, e.g. Pillow's)."""
    header = read_header(data, max_pixels=UNLIMITED_PIXELS)
    return header.width, header.height


UNLIMITED_PIXELS = 2**64  # larger than any header can declare (two 32-bit sides)


@dataclass(frozen=True)
class Summary:
    """What a look at a file's header and chunks finds (no code decoded): for viewers."""

    width: int
    height: int
    first_code_stages: int
    stages_present: int
    has_alpha: bool
    model: str
    n_blocks: int
    metadata: Metadata = Metadata()


def summary(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, salvage: bool = False) -> Summary:
    """The header and chunk structure of ``data`` (``info``'s cost: the CRCs, never the
    codes); raises the codec's errors for what does not parse (``salvage``: as
    ``decode(salvage=True)`` reads it)."""
    max_pixels = options.max_pixels(max_pixels)
    from .codec import ALPHA_CHUNK

    container = read_container(
        _read_data(data, max_pixels),
        max_pixels=max_pixels,
        codes=False,
        salvage=options.flag(salvage, "salvage"),
    )
    h = container.header
    return Summary(
        h.width,
        h.height,
        h.first_code_stages,
        container.stages_found,
        ALPHA_CHUNK in container.ancillary,
        h.model_name,
        h.n_blocks,
        from_chunks(container.ancillary),
    )


def progressive_prefixes(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, layout: list[ChunkInfo] | None = None
) -> list[dict[str, Any]]:
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
        "file_bytes": len(raw),
        "width": header.width,
        "height": header.height,
        "block_size": header.block_size,
        "blocks": [header.blocks_y, header.blocks_x],
        "stages": header.stages,
        "stages_present": container.stages_found,
        "complete": container.complete,
        "first_code_stages": header.first_code_stages,
        "bits_per_stage": header.bits_per_stage,
        "band_rows": header.band_rows,
        "flags": header.flags,
        "model": header.model_name,
        "model_digest": header.model_digest.hex(),
        "bpp": round(8 * len(raw) / pixels, 4),
        "progressive": progressive_prefixes(raw, max_pixels=max_pixels, layout=layout),
        "format_version": container.version,
        "stage_histogram": stage_histogram(container),
        "chunks": [c._asdict() for c in layout],
        "warnings": container.warnings,
        # Only when the file carries any: the report of earlier files stays as it was.
        **({"metadata": meta} if (meta := from_chunks(container.ancillary).summary()) else {}),
    }
