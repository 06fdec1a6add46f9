"""Rate-distortion benchmark: ir2i against JPEG, WebP, JPEG 2000, AVIF and JPEG XL.

Installed with the package as ``ir2i bench --data DIR --out DIR`` (needs the ``[bench]``
extra); ``python -m ir2icodec.bench.rd`` in a checkout runs the same command. See
``benchmarks/README.md``.

Every image is encoded by every codec at every setting of its sweep, decoded back to RGB
and scored (PSNR, SSIM, MS-SSIM from :mod:`ir2icodec.metrics`). The rate is the size of
the whole file a codec writes (headers included): ``bpp = 8 * bytes / (W * H)``.
Outputs: ``rd_points.csv``, ``bdrate.md`` (BD-rate against an anchor, JPEG by default)
and ``rd.png`` (average RD curves).
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import io
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import astuple, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

import click
import numpy as np
from PIL import Image, UnidentifiedImageError, features
from tqdm import tqdm

from ..bdrate import DEFAULT_BPP_WINDOW, bd_rate_in_window, mean_bd_rate
from ..errors import Ir2iError, UsageError
from ..imageio import load_rgb
from ..metrics import MS_SSIM_MIN_SIDE, WIN_SIZE, psnr, ssim, ssim_and_ms_ssim

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
CSV_NAME, TABLE_NAME, PLOT_NAME = "rd_points.csv", "bdrate.md", "rd.png"
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


def jpeg_at_most(rgb: np.ndarray, max_bytes: int, jpeg) -> tuple[int, bytes]:
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


@dataclass(frozen=True)
class RDPoint:
    """One row of ``rd_points.csv``."""

    image: str
    codec: str
    setting: str
    bytes: int
    bpp: float
    psnr: float
    ssim: float
    ms_ssim: float


# ---------------------------------------------------------------- measuring


def find_images(data_dir: Path, limit: int | None = None) -> tuple[list[Path], list[str]]:
    """Files in ``data_dir`` that Pillow can open, sorted by name; plus warnings."""
    images, warnings = [], []
    for path in sorted(p for p in data_dir.iterdir() if p.is_file()):
        if limit is not None and len(images) >= limit:
            break
        try:
            with Image.open(path) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            warnings.append(f"skipping {path.name}: not a readable image ({exc})")
            continue
        images.append(path)
    return images, warnings


@dataclass
class ImageResult:
    """What measuring one image produced: points, notes, and codecs that failed on it."""

    points: list[RDPoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def measure_image(path: Path, codecs: Sequence[str], sessions: Sessions) -> ImageResult:
    """Encode/decode/score one image with every codec and setting.

    A codec that fails on this image is recorded in ``failures`` and skipped for it, so
    one bad image does not throw away hours of measurements.
    """
    rgb = load_rgb(path)
    h, w = rgb.shape[:2]
    registry = codec_registry()
    result = ImageResult()
    if min(h, w) < MS_SSIM_MIN_SIDE:
        result.warnings.append(
            f"{path.name} is {w}x{h}: MS-SSIM needs sides >= {MS_SSIM_MIN_SIDE}, left empty"
        )
    for name in codecs:
        session = sessions[name]
        try:
            for setting in registry[name].settings:
                data = session.encode(rgb, setting)
                decoded = session.decode(data)
                if decoded.shape != rgb.shape:
                    raise ValueError(f"decoded shape {decoded.shape} != input {rgb.shape}")
                ssim_value, ms_ssim_value = _structural(rgb, decoded)
                result.points.append(
                    RDPoint(
                        image=path.name,
                        codec=name,
                        setting=str(setting),
                        bytes=len(data),
                        bpp=8 * len(data) / (w * h),
                        psnr=psnr(rgb, decoded),
                        ssim=ssim_value,
                        ms_ssim=ms_ssim_value,
                    )
                )
        except Exception as exc:  # keep going with the other codecs/images
            result.failures.append(f"{name} failed on {path.name}: {type(exc).__name__}: {exc}")
    return result


def _structural(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(SSIM, MS-SSIM), NaN where the image is too small for the metric."""
    side = min(a.shape[:2])
    if side >= MS_SSIM_MIN_SIDE:
        return ssim_and_ms_ssim(a, b)  # one pass: shares the full-resolution scale
    return (ssim(a, b) if side >= WIN_SIZE else math.nan), math.nan


def open_sessions(codecs: Iterable[str], model_path: str | None) -> tuple[Sessions, list[str]]:
    """Open every available codec; unavailable ones are left out with a warning."""
    registry = codec_registry()
    sessions: Sessions = {}
    warnings = []
    for name in codecs:
        try:
            sessions[name] = registry[name].open(model_path)
        except CodecUnavailable as exc:
            warnings.append(f"skipping codec {name}: {exc}")
    return sessions, warnings


def _measure_in_worker(path: Path, codecs: Sequence[str], model_path: str | None) -> ImageResult:
    # Worker processes open their own sessions (models are not shared across processes);
    # availability was already reported by the parent, so those warnings are dropped.
    sessions, _ = open_sessions(codecs, model_path)
    return measure_image(path, [c for c in codecs if c in sessions], sessions)


def run_benchmark(
    images: Sequence[Path],
    codecs: Sequence[str],
    model_path: str | None = None,
    jobs: int = 1,
    warn: Callable[[str], None] = print,
    progress: bool | None = None,
) -> tuple[list[RDPoint], bool]:
    """Measure all images; returns the points (sorted) and whether every codec succeeded."""
    sessions, warnings = open_sessions(codecs, model_path)
    for message in warnings:
        warn(f"warning: {message}")
    usable = [c for c in codecs if c in sessions]
    if not usable:
        raise CodecUnavailable("none of the requested codecs is available")
    points: list[RDPoint] = []
    failed = False
    # disable=None: a bar on a terminal, silence in logs and tests.
    with tqdm(
        total=len(images), unit="img", desc="rd", disable=None if progress is None else not progress
    ) as bar:
        pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
        if pool is None:
            results: Iterable[ImageResult] = (measure_image(p, usable, sessions) for p in images)
        else:
            futures = [pool.submit(_measure_in_worker, p, usable, model_path) for p in images]
            results = (f.result() for f in as_completed(futures))
        try:
            for result in results:
                points.extend(result.points)
                for message in result.warnings + result.failures:
                    warn(f"warning: {message}")
                failed |= bool(result.failures)
                bar.update(1)
        finally:
            if pool is not None:  # on Ctrl-C or an error, do not wait for queued images
                pool.shutdown(cancel_futures=True)
    order = {c: i for i, c in enumerate(usable)}
    points.sort(key=lambda p: (p.image, order[p.codec]))  # setting order kept (stable sort)
    return points, not failed


# ---------------------------------------------------------------- reporting


def write_csv(points: Sequence[RDPoint], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([fld.name for fld in fields(RDPoint)])
        writer.writerows(astuple(p) for p in points)


def kept_names(pairs: Sequence[str]) -> dict[str, str]:
    """``--keep-as`` OLD=NEW pairs as a mapping (UsageError for a malformed one)."""
    renames = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--keep-as {pair!r}: expected OLD=NEW")
        renames[old.strip()] = new.strip()
    return renames


def read_csv(path: Path) -> list[RDPoint]:
    """Read ``rd_points.csv`` back (e.g. to redo the report without re-encoding)."""
    with path.open(newline="") as f:
        return [
            RDPoint(
                image=row["image"],
                codec=row["codec"],
                setting=row["setting"],
                bytes=int(row["bytes"]),
                bpp=float(row["bpp"]),
                psnr=float(row["psnr"]),
                ssim=float(row["ssim"]),
                ms_ssim=float(row["ms_ssim"]),
            )
            for row in csv.DictReader(f)
        ]


def msssim_db(value: np.ndarray | float) -> np.ndarray:
    """MS-SSIM on a dB scale, ``-10 log10(1 - x)``: spreads out the crowded top end."""
    return -10.0 * np.log10(np.maximum(1.0 - np.asarray(value, dtype=np.float64), 1e-10))


QualityAxes = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]


def quality_axes(msssim_in_db: bool) -> QualityAxes:
    """Quality axes for BD-rate and plots: metric name -> (CSV column, transform).

    BD-rate uses raw MS-SSIM by default, as the paper's Bjontegaard numbers do (and they
    land closer to the reference Kodak values); the dB scale is an option, and the plot
    always uses it because raw MS-SSIM curves crowd against 1.
    """
    return {
        "MS-SSIM": ("ms_ssim", msssim_db if msssim_in_db else np.asarray),
        "PSNR": ("psnr", np.asarray),
    }


def curves(points: Sequence[RDPoint], codec: str, attr: str) -> dict[str, dict[str, tuple]]:
    """``{image: {setting: (bpp, raw quality)}}`` for one codec, settings in sweep order."""
    out: dict[str, dict[str, tuple]] = defaultdict(dict)
    for p in points:
        if p.codec == codec:
            out[p.image][p.setting] = (p.bpp, getattr(p, attr))
    return out


def _finite(bpp: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Lossless points (PSNR inf) and unmeasurable ones (MS-SSIM nan on tiny images) drop out.
    keep = np.isfinite(bpp) & np.isfinite(quality)
    return bpp[keep], quality[keep]


def image_curve(
    per_setting: dict[str, tuple], transform: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    bpp = np.array([v[0] for v in per_setting.values()], dtype=np.float64)
    raw = np.array([v[1] for v in per_setting.values()], dtype=np.float64)
    return _finite(bpp, transform(raw))


def average_curve_over(
    per_image: dict[str, dict[str, tuple]],
    images: Iterable[str],
    transform: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp and mean raw quality at each setting present for all ``images``.

    The raw metric is averaged and transformed afterwards (mean MS-SSIM, then dB), so
    the average curve is the one a reader would compute from the CSV. Images where the
    metric is undefined (MS-SSIM of an image under 161 pixels) are left out of the mean.
    """
    images = [i for i in images if not any(math.isnan(v[1]) for v in per_image[i].values())]
    if not images:
        return np.array([]), np.array([])
    settings = [s for s in per_image[images[0]] if all(s in per_image[i] for i in images)]
    if not settings:
        return np.array([]), np.array([])
    bpp = np.array([[per_image[i][s][0] for i in images] for s in settings], dtype=np.float64)
    raw = np.array([[per_image[i][s][1] for i in images] for s in settings], dtype=np.float64)
    return _finite(bpp.mean(axis=1), transform(raw.mean(axis=1)))


@dataclass(frozen=True)
class BDRow:
    codec: str
    metric: str
    per_image_mean: float
    n_images: int
    on_average_curve: float


def bd_rates(
    points: Sequence[RDPoint],
    anchor: str = "jpeg",
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    msssim_in_db: bool = False,
) -> list[BDRow]:
    """BD-rate of every codec against ``anchor`` for each quality axis."""
    codecs = list(dict.fromkeys(p.codec for p in points))
    rows = []
    for metric, (attr, transform) in quality_axes(msssim_in_db).items():
        anchor_curves = curves(points, anchor, attr)
        for codec in codecs:
            test_curves = curves(points, codec, attr)
            common = [i for i in anchor_curves if i in test_curves]
            pairs = [
                (image_curve(anchor_curves[i], transform), image_curve(test_curves[i], transform))
                for i in common
            ]
            mean, n = mean_bd_rate(pairs, window)
            avg = bd_rate_in_window(
                average_curve_over(anchor_curves, common, transform),
                average_curve_over(test_curves, common, transform),
                window,
            )
            rows.append(BDRow(codec, metric, mean, n, avg))
    return rows


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


def bdrate_markdown(
    points: Sequence[RDPoint],
    anchor: str = "jpeg",
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    msssim_in_db: bool = False,
) -> str:
    rows = bd_rates(points, anchor, window, msssim_in_db)
    images = sorted({p.image for p in points})
    by_key = {(r.codec, r.metric): r for r in rows}
    window_text = "whole curves" if window is None else f"{window[0]:g}-{window[1]:g} bpp"
    lines = [
        f"# BD-rate against {anchor}",
        "",
        f"{len(images)} images from the data folder; rate window {window_text}; "
        "negative = fewer bits than the anchor at the same quality.",
        '"per image" is the mean of per-image BD-rates (n = images where it is defined); '
        '"avg curve" is the BD-rate between the curves averaged over images at each setting.',
        (
            "MS-SSIM is integrated on the dB scale -10·log10(1 - MS-SSIM)"
            if msssim_in_db
            else "MS-SSIM is integrated as is (not in dB)"
        )
        + "; PSNR in dB.",
        "",
        "| codec | MS-SSIM BD-rate, per image | MS-SSIM BD-rate, avg curve "
        "| PSNR BD-rate, per image | PSNR BD-rate, avg curve | n |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for codec in dict.fromkeys(p.codec for p in points):
        ms, ps = by_key[(codec, "MS-SSIM")], by_key[(codec, "PSNR")]
        lines.append(
            f"| {codec} | {_pct(ms.per_image_mean)} | {_pct(ms.on_average_curve)} "
            f"| {_pct(ps.per_image_mean)} | {_pct(ps.on_average_curve)} | {ms.n_images} |"
        )
    return "\n".join(lines) + "\n"


def plot_rd(
    points: Sequence[RDPoint],
    path: Path,
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    max_bpp: float = 1.5,
) -> None:
    """Two panels (MS-SSIM dB and PSNR vs bpp) of the per-codec average curves."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state or GUI backend

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    images = sorted({p.image for p in points})
    axes_spec = quality_axes(msssim_in_db=True).items()
    for ax, (metric, (attr, transform)) in zip(axes, axes_spec, strict=True):
        visible: list[float] = []
        for codec in dict.fromkeys(p.codec for p in points):
            per_image = curves(points, codec, attr)
            bpp, q = average_curve_over(per_image, [i for i in images if i in per_image], transform)
            if bpp.size == 0:
                continue
            ax.plot(bpp, q, marker="o", markersize=3, label=codec)
            visible.extend(q[bpp <= max_bpp])
        if window is not None:
            for edge in window:
                ax.axvline(edge, color="0.7", linestyle=":", linewidth=1)
        ax.set_xlim(0, max_bpp)
        if visible:
            lo, hi = min(visible), max(visible)
            pad = 0.05 * (hi - lo) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("MS-SSIM (dB)" if metric == "MS-SSIM" else "PSNR (dB)")
        ax.set_title(f"{metric}, mean over {len(images)} images")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=120)


def write_reports(
    points: Sequence[RDPoint],
    out: Path,
    anchor: str = "jpeg",
    window: tuple[float, float] | None = DEFAULT_BPP_WINDOW,
    msssim_in_db: bool = False,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(points, out / CSV_NAME)
    (out / TABLE_NAME).write_text(bdrate_markdown(points, anchor, window, msssim_in_db))
    plot_rd(points, out / PLOT_NAME, window)


# ---------------------------------------------------------------- command line

_REQUIRED_MODULES = ("scipy", "matplotlib")  # metrics and BD-rate; the plot


def require_bench_extra() -> None:
    """Fail with one line naming the extra when the benchmark's own dependencies are missing."""
    missing = [m for m in _REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise Ir2iError(
            f"the rate-distortion benchmark needs {' and '.join(missing)}: {BENCH_EXTRA}"
        )


def parse_window(text: str) -> tuple[float, float] | None:
    """``LO,HI`` in bpp, or ``none`` (whole curves); ValueError with a one-line reason."""
    if text.lower() == "none":
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError as exc:
        raise ValueError("expected LO,HI in bpp, e.g. 0.125,1, or 'none'") from exc
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < LO < HI, got {text}")
    return lo, hi


def _window_option(
    ctx: click.Context, param: click.Parameter, value: str
) -> tuple[float, float] | None:
    try:
        return parse_window(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(name="bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of images (required unless --report-only).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--codecs",
    default=",".join(ALL_CODECS),
    show_default=True,
    help="Comma-separated subset of the codecs (the anchor is always added).",
)
@click.option("--limit", type=int, default=None, help="Use only the first N images.")
@click.option("--model", default=None, help="ir2i model (default: the shipped one).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Images encoded in parallel.")
@click.option("--anchor", default="jpeg", show_default=True, help="BD-rate anchor codec.")
@click.option(
    "--window",
    default=",".join(f"{x:g}" for x in DEFAULT_BPP_WINDOW),
    show_default=True,
    callback=_window_option,
    help="BD-rate bpp window LO,HI or 'none'.",
)
@click.option(
    "--msssim-db", is_flag=True, help="BD-rate on -10*log10(1 - MS-SSIM) instead of raw MS-SSIM."
)
@click.option(
    "--keep",
    type=click.Path(path_type=Path),
    default=None,
    help="An earlier rd_points.csv whose other codecs' points join this run's "
    "(e.g. to re-measure only a new ir2i model).",
)
@click.option(
    "--keep-as",
    "keep_as",
    multiple=True,
    metavar="OLD=NEW",
    help="Rename a kept codec's points (repeatable), e.g. ir2i=compact-4, so that an earlier "
    "model's rows stay beside the new model's re-measured ones.",
)
@click.option(
    "--report-only",
    is_flag=True,
    help="Skip encoding: redo bdrate.md and rd.png from --out/rd_points.csv.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    data: Path | None,
    out: Path,
    codecs: str,
    limit: int | None,
    model: str | None,
    jobs: int,
    anchor: str,
    window: tuple[float, float] | None,
    msssim_db: bool,
    keep: Path | None,
    keep_as: tuple[str, ...],
    report_only: bool,
) -> None:
    """Rate-distortion benchmark of ir2i against standard image codecs.

    Writes rd_points.csv, bdrate.md (BD-rates against --anchor) and rd.png to --out.
    """
    require_bench_extra()
    if report_only:
        csv_path = out / CSV_NAME
        if not csv_path.is_file():
            raise UsageError(f"--report-only needs {csv_path}")
        write_reports(read_csv(csv_path), out, anchor, window, msssim_db)
        click.echo(f"wrote {TABLE_NAME}, {PLOT_NAME} to {out}")
        return

    names = [c.strip() for c in codecs.split(",") if c.strip()]
    known = ALL_CODECS + EXTRA_CODECS
    unknown = [c for c in names + [anchor] if c not in known]
    if unknown:
        raise UsageError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if anchor not in names:
        names.insert(0, anchor)  # the BD-rate table needs the anchor's curves
    if data is None or not data.is_dir():
        raise UsageError(f"--data {data} is not a folder")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be >= 1")
    if jobs < 1:
        raise UsageError("--jobs must be >= 1")
    if keep is not None and not keep.is_file():
        raise UsageError(f"--keep {keep} is not a file")
    renames = kept_names(keep_as)
    if renames and keep is None:
        raise UsageError("--keep-as needs --keep")
    kept = [replace(p, codec=renames.get(p.codec, p.codec)) for p in read_csv(keep)] if keep else []
    kept = [p for p in kept if p.codec not in names]

    def warn(message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    images, warnings = find_images(data, limit)
    for message in warnings:
        warn(f"warning: {message}")
    if not images:
        raise UsageError(f"no readable images in {data}")
    try:
        points, ok = run_benchmark(images, names, model, jobs, warn)
    except CodecUnavailable as exc:
        raise Ir2iError(str(exc)) from None
    write_reports(kept + points, out, anchor, window, msssim_db)
    click.echo(f"wrote {CSV_NAME}, {TABLE_NAME}, {PLOT_NAME} to {out}")
    if not ok:
        ctx.exit(1)


def main(argv: Sequence[str] | None = None, prog_name: str = "python -m ir2icodec.bench.rd") -> int:
    """Run :func:`bench` outside the ``ir2i`` command; returns the exit status.

    Errors are one line on stderr (``error: ...``), as under ``ir2i bench``.
    """
    try:
        bench.main(
            args=list(argv) if argv is not None else None,
            prog_name=prog_name,
            standalone_mode=False,
        )
    except Ir2iError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
