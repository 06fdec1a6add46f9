"""Pillow plugin: ``Image.open("x.ir2i")`` and ``im.save("x.ir2i", quality=70)``.

Registered by ``import ir2icodec`` (or ``import ir2icodec.pillow``), following Pillow's own
plugins (``WebPImagePlugin``): an ``ImageFile.ImageFile`` subclass, ``_accept`` on the
8-byte signature, ``register_open/save/extension/mime``.

- Lazy: ``Image.open`` reads the file and checks its chunks (size, mode, stages, model
  in ``im.info``) but decodes nothing; ``load()`` (or anything that needs pixels) decodes.
- Stages are frames: ``im.n_frames`` is the number of stage counts the file can show
  (2..stages present) and ``im.seek(k)`` selects ``k + 2`` stages. An opened image starts at
  its last frame (every stage present), so ``Image.open(f).convert("RGB")`` is the best
  picture, and ``im.save("steps.png", save_all=True)`` writes the progressive refinement
  as an animated PNG (frame durations in ``im.info["duration"]``).
- Saving takes the API's options: ``stages``, ``quality``, ``target_bpp``, ``alpha``,
  ``model`` or ``tune`` (``"psnr"``: the model trained for squared error), ``device``.
  RGBA (and other transparency) is kept losslessly.
- Errors are Pillow-style exceptions that are also the CLI's errors: a bad option raises
  a ``ValueError``, a bad file an ``OSError``; both are instances of the
  :class:`ir2icodec.errors.Ir2iError` subclass the CLI reports, with its message.
- The model and device used when none is passed: :func:`configure`.
"""

from __future__ import annotations

import io
import warnings
from typing import IO, Any

from PIL import Image, ImageFile

from . import api
from .errors import Ir2iError, Ir2iWarning, LimitError, UsageError
from .preview import FRAME_MS, LAST_FRAME_MS  # animation timing of the stage frames

FORMAT = "IR2I"
EXTENSION = ".ir2i"
MIME = "image/x-ir2i"
_SAVE_OPTIONS = ("stages", "quality", "target_bpp", "target_bytes", "alpha", "max_pixels", "strip")

_defaults: dict[str, Any] = {"model": None, "device": "cpu", "postfilter": True}


def configure(
    *, model: api.ModelLike = None, device: api.Device = "cpu", postfilter: bool = True
) -> None:
    """Model (a loaded one, a bundle directory or a shipped name; None = the shipped default)
    and device that the plugin decodes and encodes with when ``save`` is given none, and
    whether decoded frames go through the model's post-filter (``ir2i decode --no-filter``
    is ``postfilter=False``)."""
    _defaults.update(model=model, device=device, postfilter=postfilter)


_PILLOW_ERRORS: dict[type[Ir2iError], type[Exception]] = {}


def pillow_error(error: Ir2iError) -> Exception:
    """``error`` as a Pillow-style exception with the same message: an instance of both its
    own class and ``ValueError`` (usage) or ``OSError`` (files, models, limits)."""
    kind = type(error)
    cls = _PILLOW_ERRORS.get(kind)
    if cls is None:
        base = ValueError if isinstance(error, UsageError) else OSError
        cls = type(kind.__name__, (kind, base), {"__module__": __name__})
        _PILLOW_ERRORS[kind] = cls
    return cls(str(error))


MAX_HEAD_BYTES = 8 + 12 + 4096  # the signature, and a HEAD chunk of any version
UNLIMITED_PIXELS = 2**48  # MAX_IMAGE_PIXELS = None: no Pillow limit; the codec caps at 2^48


def pillow_max_pixels() -> int:
    """The codec's pixel limit under Pillow's convention: ``Image.MAX_IMAGE_PIXELS`` warns,
    twice it refuses (``DecompressionBombError``), None lifts the limit."""
    limit = Image.MAX_IMAGE_PIXELS
    return UNLIMITED_PIXELS if limit is None else 2 * int(limit)


def _check_bomb(width: int, height: int) -> None:
    """Pillow's DecompressionBombError, before any work (Pillow itself checks only after
    ``_open``, and warns then between the limit and twice it)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > 2 * limit:
        raise Image.DecompressionBombError(
            f"Image size ({width * height} pixels) exceeds limit of {2 * limit} pixels, "
            "could be decompression bomb DOS attack."
        )


def _accept(prefix: bytes) -> bool:
    return prefix[: len(api.SIGNATURE)] == api.SIGNATURE


class Ir2iImageFile(ImageFile.ImageFile):
    """An opened ``.ir2i`` file; frame ``k`` is the picture of its first ``k + 2`` stages."""

    format = FORMAT
    format_description = "ir2i progressive learned image"
    _close_exclusive_fp_after_loading = False  # every frame decodes from the bytes read

    def _open(self) -> None:
        assert self.fp is not None
        data = self.fp.read(len(api.SIGNATURE))
        if not _accept(data):
            raise SyntaxError("not an ir2i file")
        max_pixels = pillow_max_pixels()
        try:
            # The size first, from the header alone, with Pillow's own limit: nothing else
            # is read or checked for a picture Pillow would refuse.
            data += self.fp.read(MAX_HEAD_BYTES)
            width, height = api.declared_size(data)
            _check_bomb(width, height)
            cap = api.max_file_bytes(max_pixels)
            data += self.fp.read(cap + 1 - len(data))
            if len(data) > cap:
                raise LimitError(
                    f"the file is over {cap} bytes, more than an .ir2i file of "
                    f"{max_pixels} pixels can be"
                )
            # Chunks, lengths and CRCs; no code is entropy-decoded, no pixel decoded.
            look = api.summary(data, max_pixels=max_pixels)
        except Ir2iError as e:
            raise pillow_error(e) from None
        self._data = data
        self._max_pixels = max_pixels
        self._first = look.first_code_stages
        self._size = (look.width, look.height)
        self._mode = "RGBA" if look.has_alpha else "RGB"
        self.n_frames = look.stages_present - self._first + 1
        self.is_animated = self.n_frames > 1
        self.info.update(
            stages=look.stages_present, model=look.model, loop=0, **api.pillow_info(look.metadata)
        )
        self._frames: list[api.Picture] | None = None  # every frame, decoded on first load
        self._loaded = -1
        self.tile = []
        self._frame = 0
        self._set_frame(self.n_frames - 1)  # all the stages present

    def _set_frame(self, frame: int) -> None:
        self._frame = frame
        self.info["duration"] = LAST_FRAME_MS if frame == self.n_frames - 1 else FRAME_MS

    def seek(self, frame: int) -> None:
        if self._seek_check(frame):
            self._set_frame(frame)

    def tell(self) -> int:
        return self._frame

    def _decoded_frames(self) -> list[api.Picture]:
        """Every frame, in one pass over the stages (each block-stage decoded once), the
        first time any frame's pixels are needed; the decoder's notes become warnings."""
        if self._frames is None:
            try:
                frames = api.decode_stage_counts(
                    self._data,
                    model=_defaults["model"],
                    device=_defaults["device"],
                    postfilter=_defaults["postfilter"],
                    max_pixels=self._max_pixels,
                )
            except Ir2iError as e:
                raise pillow_error(e) from None
            for note in frames[-1].warnings:
                warnings.warn(note, Ir2iWarning, stacklevel=4)
            self._frames = frames
        return self._frames

    def load(self) -> Any:
        if self._loaded != self._frame:
            pixels = self._decoded_frames()[self._frame].array()
            if self.fp is not None and self._exclusive_fp:
                self.fp.close()
            self.fp = io.BytesIO(pixels.tobytes())
            self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]
            self._loaded = self._frame
        return super().load()

    def load_seek(self, pos: int) -> None:
        pass  # the pixels are a fresh buffer per frame (and this keeps Pillow from mmap)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = im.encoderinfo
    options = {k: info[k] for k in _SAVE_OPTIONS if info.get(k) is not None}
    try:
        tune = info.get("tune")
        data = api.encode(
            im,
            model=info.get("model", None if tune is not None else _defaults["model"]),
            tune=tune,
            device=info.get("device", _defaults["device"]),
            **options,
        )
    except Ir2iError as e:
        raise pillow_error(e) from None
    fp.write(data)


def register() -> None:
    """Register the format with Pillow (done on import; harmless to repeat)."""
    Image.register_open(FORMAT, Ir2iImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register()
