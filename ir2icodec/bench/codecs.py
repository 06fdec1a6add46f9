"""Codecs of the rate-distortion benchmark (:mod:`ir2icodec.bench.rd`): their sweeps and the
adapters that run them.

Each codec has a ``settings`` sweep (its quality ladder) and an ``open`` that returns a
session encoding an RGB image at one setting to the bytes of a whole file and decoding them
back; :func:`codec_registry` names them all. A codec that cannot run here (plugin or model
missing) raises :class:`CodecUnavailable`, and the benchmark skips it. ir2i and the codec
plugins are imported only when a codec is opened.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image, features

Setting = int | float
Sessions = dict[str, "Session"]

# Sweeps chosen on Kodak so that the average curve spans about 0.1-1.2 bpp and most single
# images cross both edges of the 0.125-1 bpp BD-rate window (hard images such as kodim13
# need about twice the bits of easy ones such as kodim23, so the sweeps are wide).
JPEG_QUALITIES = (1, 3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
# JPEG 2000 is rate-controlled, so its "setting" is the target bpp itself.
JPEG2000_BPPS = (0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5)
AVIF_QUALITIES = (0, 10, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 80)
# libjxl cannot go much below ~0.1-0.17 bpp on Kodak even at quality 0.
JPEGXL_QUALITIES = (0, 2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 85, 90)
IR2I_STAGES = tuple(range(2, 9))  # stages 1+2 form the first code, so 2 is the minimum
IR2I_QUALITIES = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)  # ir2i encode --quality

ALL_CODECS = ("ir2i", "ir2i-uniform", "jpeg", "webp", "jpeg2000", "avif", "jpegxl")
# Also measurable by name: rate control with the other candidate block distortions (compared
# in docs/rate-control.md; "ir2i" uses the default, "msssim"), both ir2i curves decoded
# without the model's post-filter (the bit-exact reconstruction; docs/postfilter.md), and
# rate control that weighs each block's stages by their entropy-coded cost ("ir2i-coded"),
# and the shipped model tuned for PSNR (``--tune psnr``; "ir2i-psnr", and uniform).
EXTRA_CODECS = (
    "ir2i-mse",
    "ir2i-masked",
    "ir2i-lowpass",
    "ir2i-ssim",
    "ir2i-nofilter",
    "ir2i-uniform-nofilter",
    "ir2i-coded",
    "ir2i-psnr",
    "ir2i-psnr-uniform",
)
BENCH_EXTRA = "pip install 'ir2i[bench]'"  # scipy, matplotlib, pillow-jxl-plugin


class CodecUnavailable(Exception):
    """A codec cannot run here (plugin or model missing); the benchmark skips it."""


class Session(Protocol):
    """An opened codec: encode one RGB image at one setting, decode the bytes back."""

    def encode(self, rgb: np.ndarray, setting: Setting) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


@dataclass(frozen=True)
class PillowCodec:
    """A codec Pillow can write and read, possibly through a plugin module."""

    name: str
    pil_format: str
    settings: tuple[Setting, ...]
    options: Callable[[Setting], dict[str, Any]]
    plugin: str | None = None  # module whose import registers the format with Pillow
    builtin_feature: str | None = None  # Pillow feature that makes the plugin unnecessary

    def open(self, model_path: str | None = None) -> PillowCodec:
        # Importing a plugin registers its format with Pillow (Pillow's own registry).
        builtin = self.builtin_feature is not None and features.check(self.builtin_feature)
        if self.plugin is not None and not builtin:
            try:
                importlib.import_module(self.plugin)
            except ImportError as exc:
                raise CodecUnavailable(
                    f"plugin {self.plugin!r} not installed ({exc}); {BENCH_EXTRA}"
                ) from exc
        if self.pil_format not in Image.SAVE:
            Image.init()  # lazy-registered built-in formats
        if self.pil_format not in Image.SAVE:
            raise CodecUnavailable(f"Pillow cannot write {self.pil_format}")
        return self

    def encode(self, rgb: np.ndarray, setting: Setting) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format=self.pil_format, **self.options(setting))
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))


@dataclass
class Ir2iSession:
    """Runs every stage of each image once (``codec.analyse``); each setting is then an
    allocation of those stages (``--quality q``, or ``--stages k`` for every block), written
    without running the networks again: byte for byte what ``ir2i encode`` writes."""

    model: Any
    analyse: Callable[..., Any]
    decode_file: Callable[..., Any]  # codec.decode
    rate: str  # "quality" or "stages"
    distortion: str | None = None
    postfilter: bool = True
    costs: str | None = None  # what rate control takes a stage to cost; None = the default
    _analysis: tuple[bytes, Any] | None = None  # (digest of the image, its analysis)

    def encode(self, rgb: np.ndarray, setting: Setting) -> bytes:
        key = hashlib.sha1(np.ascontiguousarray(rgb)).digest()
        if self._analysis is None or self._analysis[0] != key:
            extra = {"distortion": self.distortion} if self.distortion else {}
            if self.costs:
                extra["costs"] = self.costs
            self._analysis = (key, self.analyse(rgb, self.model, **extra))
        analysis = self._analysis[1]
        return analysis.write(analysis.counts_for(**{self.rate: setting}))

    def decode(self, data: bytes) -> np.ndarray:
        return np.asarray(self.decode_file(data, self.model, postfilter=self.postfilter).rgb)


@dataclass(frozen=True)
class Ir2iCodec:
    """ir2i itself, imported lazily so the other codecs run without it (or its model).
    ``rate`` is the swept setting: per-block rate control by ``quality`` (the default
    encoder), or the same ``stages`` for every block (the uniform curve). ``postfilter``
    False decodes without the model's post-filter (``ir2i decode --no-filter``)."""

    name: str = "ir2i"
    settings: tuple[Setting, ...] = IR2I_QUALITIES
    rate: str = "quality"
    distortion: str | None = None  # rate control's block distortion; None = the default
    postfilter: bool = True
    costs: str | None = None  # "flat" or "coded" stage costs in rate control; None = default
    tune: str | None = None  # the shipped model of this tune instead of --model

    def open(self, model_path: str | None = None) -> Ir2iSession:
        try:
            from ir2icodec.codec import analyse, decode
            from ir2icodec.runtime import load_model
            from ir2icodec.tuning import SHIPPED_MODELS
        except ImportError as exc:
            raise CodecUnavailable(f"ir2icodec.codec is not importable ({exc})") from exc
        if self.tune is not None:
            model_path = SHIPPED_MODELS[self.tune]
        try:
            model = load_model(model_path)
        except Exception as exc:  # any failure to find/read a model means "skip ir2i"
            raise CodecUnavailable(f"no usable model ({type(exc).__name__}: {exc})") from exc
        return Ir2iSession(
            model, analyse, decode, self.rate, self.distortion, self.postfilter, self.costs
        )


Codec = PillowCodec | Ir2iCodec


def jpeg_at_most(rgb: np.ndarray, max_bytes: int, jpeg: Session) -> tuple[int, bytes]:
    """Highest JPEG quality (1..100) whose file fits in max_bytes; quality 1 if none does."""
    lo, hi, best = 1, 100, (1, jpeg.encode(rgb, 1))
    while lo <= hi:  # file size grows with quality, so bisect
        q = (lo + hi) // 2
        data = jpeg.encode(rgb, q)
        if len(data) <= max_bytes:
            best, lo = (q, data), q + 1
        else:
            hi = q - 1
    return best


def codec_registry() -> dict[str, Codec]:
    """All known codecs by name, in report order (built fresh: no shared mutable state)."""
    codecs: list[Codec] = [
        Ir2iCodec(),
        Ir2iCodec("ir2i-uniform", IR2I_STAGES, "stages"),
        Ir2iCodec("ir2i-mse", IR2I_QUALITIES, "quality", "mse"),
        Ir2iCodec("ir2i-masked", IR2I_QUALITIES, "quality", "masked"),
        Ir2iCodec("ir2i-lowpass", IR2I_QUALITIES, "quality", "lowpass"),
        Ir2iCodec("ir2i-ssim", IR2I_QUALITIES, "quality", "ssim"),
        Ir2iCodec("ir2i-nofilter", IR2I_QUALITIES, "quality", postfilter=False),
        Ir2iCodec("ir2i-uniform-nofilter", IR2I_STAGES, "stages", postfilter=False),
        Ir2iCodec("ir2i-coded", IR2I_QUALITIES, "quality", costs="coded"),
        Ir2iCodec("ir2i-psnr", IR2I_QUALITIES, "quality", tune="psnr"),
        Ir2iCodec("ir2i-psnr-uniform", IR2I_STAGES, "stages", tune="psnr"),
        PillowCodec(
            "jpeg",
            "JPEG",
            JPEG_QUALITIES,
            lambda q: {"quality": q, "subsampling": 2, "optimize": True},  # 4:2:0
        ),
        PillowCodec("webp", "WEBP", WEBP_QUALITIES, lambda q: {"quality": q, "method": 6}),
        PillowCodec(
            "jpeg2000",
            "JPEG2000",
            JPEG2000_BPPS,
            # OpenJPEG "rates" are compression ratios against the raw 24 bpp image;
            # irreversible = 9/7 wavelet, mct=1 = RGB->YCbCr; raw codestream (no JP2 boxes).
            lambda bpp: {
                "quality_mode": "rates",
                "quality_layers": [24.0 / bpp],
                "irreversible": True,
                "mct": 1,
                "no_jp2": True,
            },
        ),
        PillowCodec(
            "avif",
            "AVIF",
            AVIF_QUALITIES,
            # One thread per encode: --jobs is the only source of parallelism.
            lambda q: {"quality": q, "speed": 6, "subsampling": "4:2:0", "max_threads": 1},
            plugin="pillow_avif",
            builtin_feature="avif",
        ),
        PillowCodec(
            "jpegxl",
            "JXL",
            JPEGXL_QUALITIES,
            lambda q: {"quality": q, "effort": 7, "num_threads": 1},
            plugin="pillow_jxl",
        ),
    ]
    return {c.name: c for c in codecs}
