"""Rate-distortion benchmark: ir2i against JPEG, WebP, JPEG 2000, AVIF and JPEG XL.

Installed with the package as ``ir2i bench --data DIR --out DIR`` (needs the ``[bench]``
extra); ``python -m ir2icodec.bench.rd`` in a checkout runs the same command. See
``benchmarks/README.md``.

Every image is encoded by every codec at every setting of its sweep, decoded back to RGB
and scored (PSNR, SSIM, MS-SSIM from :mod:`ir2icodec.metrics`). The rate is the size of
the whole file a codec writes (headers included): ``bpp = 8 * bytes / (W * H)``.
Outputs: ``rd_points.csv``, ``bdrate.md`` (BD-rate against an anchor, JPEG by default)
and ``rd.png`` (average RD curves).

The codecs and their sweeps are in :mod:`ir2icodec.bench.codecs`, the BD-rate table and
the plot in :mod:`ir2icodec.bench.report`; this module measures the points, reads and
writes ``rd_points.csv``, and is the command.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import astuple, dataclass, field, fields, replace
from pathlib import Path

import click
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..bdrate import DEFAULT_BPP_WINDOW
from ..errors import Ir2iError, UsageError
from ..imageio import load_rgb
from ..metrics import MS_SSIM_MIN_SIDE, WIN_SIZE, psnr, ssim, ssim_and_ms_ssim
from .codecs import (
    ALL_CODECS,
    BENCH_EXTRA,
    EXTRA_CODECS,
    CodecUnavailable,
    Sessions,
    codec_registry,
)
from .report import bdrate_markdown, plot_rd

CSV_NAME, TABLE_NAME, PLOT_NAME = "rd_points.csv", "bdrate.md", "rd.png"


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


def window_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[float, float] | None:
    """Click callback of a ``--window`` option (also experiments.rd_variants'): not given
    (None) means whole curves."""
    if value is None:
        return None
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
    callback=window_option,
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
