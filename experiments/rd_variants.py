"""Paper Figures 3(a) and 5(a): BD-rate savings of coder variants against the residual encoder.

Run ``python -m experiments.rd_variants --data DIR --out DIR --anchor residual
--bundle residual=DIR --bundle decoding=DIR ... [--paper-table fig3a|fig5a]``.

Every image is encoded with every bundle at 2..8 stages (``ir2icodec.codec.encode``; 2 is the
smallest file, the first code holds stages 1-2) and decoded back with
``ir2icodec.codec.decode``; the rate is, by default, the stage codes' raw bits, as the paper
counts it (no entropy coding: 128 bits per 32x32 block and stage), or with ``--rate file`` the
whole file, ``bpp = 8 * bytes / pixels`` (``rd_points.csv`` keeps the file's); and the
quality SSIM and MS-SSIM of ``ir2icodec.metrics`` (pytorch-msssim convention). Savings are
``-BD-rate`` (``ir2icodec.bdrate``, PCHIP on log-rate against raw SSIM / MS-SSIM) of each
bundle against ``--anchor``, in percent, reported two ways, as ``ir2icodec.bench.rd`` does: the
mean of per-image BD-rates, and the BD-rate between curves averaged over images at each stage
count. By default the whole curves are used (the paper averages "across all quality
settings"); ``--window 0.125,1`` clips to a bpp window like Table 2.

Outputs in ``--out``: ``rd_points.csv`` (same columns as ``ir2icodec.bench.rd``; ``codec`` is the
bundle name, ``setting`` the stage count), ``bdrate_per_image.csv``, ``rd_variants.csv``
(the savings table), ``rd_variants_<paper-table>.md`` and ``rd_variants.png`` (average curves,
as the paper's Figs. 3(b) and 5(b)). ``--report-only`` rebuilds the tables from
``rd_points.csv`` (e.g. for the other ``--paper-table`` without re-encoding).
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np

from ir2icodec.bdrate import bd_rate_in_window
from ir2icodec.bench.rd import CSV_NAME, RDPoint, read_csv, window_option, write_csv
from ir2icodec.bench.report import average_curve_over, curves, image_curve, plot_rd
from ir2icodec.codec import decode, encode
from ir2icodec.container import MIN_STAGES, truncate_stages
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import MS_SSIM_MIN_SIDE, WIN_SIZE, psnr, ssim, ssim_and_ms_ssim
from ir2icodec.runtime import OnnxModel, load_model

from .common import CONTEXT_SETTINGS, NAMED_PATH, fmt, images_in, map_images, unique_names

METRICS = {"SSIM": "ssim", "MS-SSIM": "ms_ssim"}  # table name -> RDPoint attribute
# The paper's rate: raw code bits, no entropy coding ("The results shown here do not make use
# of entropy coding", Sec. 4). Every variant codes 32x32 blocks with 128 bits per stage.
BLOCK, BITS_PER_STAGE = 32, 128


def raw_bpp(stages: int, height: int, width: int) -> float:
    """Bits per pixel of ``stages`` raw stage codes of every block of the padded grid."""
    blocks = math.ceil(height / BLOCK) * math.ceil(width / BLOCK)
    return stages * BITS_PER_STAGE * blocks / (height * width)


def at_raw_rates(points: Sequence[RDPoint], data: Path) -> list[RDPoint]:
    """The points with their bpp replaced by the raw code bits (the paper's rate); the
    image sizes are read from the headers of ``data``'s images."""
    from PIL import Image

    sizes = {}
    for name in {p.image for p in points}:
        with Image.open(data / name) as im:
            sizes[name] = (im.height, im.width)
    return [replace(p, bpp=raw_bpp(int(p.setting), *sizes[p.image])) for p in points]


PER_IMAGE_NAME, SUMMARY_NAME, PLOT_NAME = (
    "bdrate_per_image.csv",
    "rd_variants.csv",
    "rd_variants.png",
)


@dataclass(frozen=True)
class PaperRow:
    label: str
    aliases: tuple[str, ...]  # bundle names (lower case) that stand for this row
    ssim: float  # rate savings (%) against the residual encoder
    ms_ssim: float


_DECODING = PaperRow("R2I Decoding", ("decoding", "r2i-decoding"), 20.002, 17.951)
PAPER_TABLES: dict[str, tuple[PaperRow, ...]] = {
    "fig3a": (
        PaperRow("R2I Prediction", ("prediction", "r2i-prediction"), 4.483, 5.177),
        PaperRow("R2I Full", ("full", "r2i-full"), 10.015, 7.652),
        _DECODING,
    ),
    "fig5a": (
        _DECODING,
        PaperRow("R2I Decoding Sep-Inp", ("sep-inp", "sepinp", "separate"), 27.379, 27.794),
        PaperRow(
            "R2I Decoding Joint-Inp", ("joint-inp", "jointinp", "joint", "ir2i"), 63.353, 60.446
        ),
    ),
}


def paper_row(table: str, bundle: str) -> PaperRow | None:
    return next((r for r in PAPER_TABLES[table] if bundle.lower() in r.aliases), None)


# ---------------------------------------------------------------- measuring


def _structural(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(SSIM, MS-SSIM), NaN where the image is too small for the metric."""
    side = min(a.shape[:2])
    if side >= MS_SSIM_MIN_SIDE:
        return ssim_and_ms_ssim(a, b)  # one pass: shares the full-resolution scale
    return (ssim(a, b) if side >= WIN_SIZE else math.nan), math.nan


def measure_image(path: Path, models: dict[str, OnnxModel]) -> list[RDPoint]:
    """Encode/decode/score one image with every bundle at every stage count."""
    rgb = load_rgb(path)
    h, w = rgb.shape[:2]
    points = []
    for name, model in models.items():
        # every block every stage; fewer stages = this file truncated (progressive)
        full = encode(rgb, model, model.stages).data
        for stages in range(MIN_STAGES, model.stages + 1):
            data = truncate_stages(full, stages)
            decoded = decode(data, model).rgb
            s, ms = _structural(rgb, decoded)
            points.append(
                RDPoint(
                    image=path.name,
                    codec=name,
                    setting=str(stages),
                    bytes=len(data),
                    bpp=8 * len(data) / (w * h),
                    psnr=psnr(rgb, decoded),
                    ssim=s,
                    ms_ssim=ms,
                )
            )
    return points


def load_models(bundles: dict[str, str], threads: int | None) -> dict[str, OnnxModel]:
    return {name: load_model(path, threads=threads) for name, path in bundles.items()}


def _measure_in_worker(path: Path, bundles: dict[str, str], threads: int | None) -> list[RDPoint]:
    # Workers load their own sessions (onnxruntime sessions are not shared across processes).
    return measure_image(path, load_models(bundles, threads))


def run(
    images: Sequence[Path],
    bundles: dict[str, str],
    jobs: int = 1,
    threads: int | None = 1,
    progress: bool | None = None,
) -> list[RDPoint]:
    """Measure every image, in ``jobs`` processes of ``threads`` onnxruntime threads each."""
    models = load_models(bundles, threads) if jobs == 1 else {}
    per_image = map_images(
        images,
        lambda p: measure_image(p, models),
        _measure_in_worker,
        (bundles, threads),
        jobs,
        "rd_variants",
        progress,
    )
    return [point for points in per_image for point in points]


# ---------------------------------------------------------------- BD-rates


@dataclass(frozen=True)
class Savings:
    bundle: str
    metric: str
    per_image: dict[str, float]  # image -> savings (%), nan where undefined
    per_image_mean: float  # mean over images where defined
    n_images: int
    on_average_curve: float


def savings(
    points: Sequence[RDPoint], anchor: str, window: tuple[float, float] | None
) -> list[Savings]:
    """Savings (= -BD-rate, %) of every bundle against ``anchor``, per metric."""
    bundles = list(dict.fromkeys(p.codec for p in points))
    if anchor not in bundles:
        raise ValueError(f"anchor {anchor!r} has no points (bundles: {', '.join(bundles)})")
    out = []
    for metric, attr in METRICS.items():
        anchor_curves = curves(points, anchor, attr)
        for bundle in bundles:
            test_curves = curves(points, bundle, attr)
            common = [i for i in anchor_curves if i in test_curves]
            # "+ 0.0" turns -0.0 (a bundle against itself) into 0.0 for the tables.
            per_image = {
                i: -bd_rate_in_window(
                    image_curve(anchor_curves[i], np.asarray),
                    image_curve(test_curves[i], np.asarray),
                    window,
                )
                + 0.0
                for i in common
            }
            defined = [v for v in per_image.values() if not math.isnan(v)]
            avg = (
                -bd_rate_in_window(
                    average_curve_over(anchor_curves, common, np.asarray),
                    average_curve_over(test_curves, common, np.asarray),
                    window,
                )
                + 0.0
            )
            out.append(
                Savings(
                    bundle,
                    metric,
                    per_image,
                    float(np.mean(defined)) if defined else math.nan,
                    len(defined),
                    avg,
                )
            )
    return out


def write_per_image_csv(rows: Sequence[Savings], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "bundle", "metric", "savings_percent"])
        for r in rows:
            for image, value in r.per_image.items():
                writer.writerow([image, r.bundle, r.metric, f"{value:.4f}"])


def write_summary_csv(rows: Sequence[Savings], path: Path, paper_table: str) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "bundle",
                "metric",
                "savings_per_image_mean",
                "n_images",
                "savings_average_curve",
                f"paper_{paper_table}",
            ]
        )
        for r in rows:
            paper = paper_row(paper_table, r.bundle)
            value = None if paper is None else (paper.ssim if r.metric == "SSIM" else paper.ms_ssim)
            writer.writerow(
                [
                    r.bundle,
                    r.metric,
                    f"{r.per_image_mean:.4f}",
                    r.n_images,
                    f"{r.on_average_curve:.4f}",
                    "" if value is None else value,
                ]
            )


def _pct(value: float | None) -> str:
    return fmt(value, 2)


def average_curves_markdown(points: Sequence[RDPoint]) -> list[str]:
    """Mean bpp / SSIM / MS-SSIM at each stage count (the paper's Figs. 3(b), 5(b))."""
    lines = ["| bundle | stages | bpp | SSIM | MS-SSIM | PSNR |", "|---|---:|---:|---:|---:|---:|"]
    for bundle in dict.fromkeys(p.codec for p in points):
        mine = [p for p in points if p.codec == bundle]
        for setting in dict.fromkeys(p.setting for p in mine):
            at = [p for p in mine if p.setting == setting]
            mean = {
                a: float(np.mean([getattr(p, a) for p in at]))
                for a in ("bpp", "ssim", "ms_ssim", "psnr")
            }
            lines.append(
                f"| {bundle} | {setting} | {mean['bpp']:.4f} | {fmt(mean['ssim'], 4)} "
                f"| {fmt(mean['ms_ssim'], 4)} | {mean['psnr']:.2f} |"
            )
    return lines


def table_markdown(
    points: Sequence[RDPoint],
    rows: Sequence[Savings],
    anchor: str,
    paper_table: str,
    window: tuple[float, float] | None,
    rate: str = "file",
) -> str:
    images = sorted({p.image for p in points})
    by_key = {(r.bundle, r.metric): r for r in rows}
    window_text = "whole curves" if window is None else f"{window[0]:g}-{window[1]:g} bpp"
    rate_text = (
        "raw code bits, no entropy coding (as the paper counts it)"
        if rate == "raw"
        else "whole .ir2i file (entropy-coded)"
    )
    figure = {"fig3a": "Figure 3(a)", "fig5a": "Figure 5(a)"}[paper_table]
    lines = [
        f"# Rate savings against `{anchor}` (paper {figure})",
        "",
        f"{len(images)} images; every bundle at 2..8 stages; rate = {rate_text}; "
        f"BD-rate window: {window_text}; savings = -BD-rate (%), positive = fewer bits than "
        "the anchor at the same quality. SSIM and MS-SSIM are integrated raw (not in dB). "
        '"per image" = mean of per-image savings (n = images where defined, SSIM / MS-SSIM); '
        '"avg curve" = '
        "savings between the curves averaged over images at each stage count. Paper columns: "
        f"{figure} (Kodak, against the residual encoder of Toderici et al.).",
        "",
        "| variant | SSIM, per image | SSIM, avg curve | MS-SSIM, per image "
        "| MS-SSIM, avg curve | n | paper SSIM | paper MS-SSIM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for bundle in dict.fromkeys(p.codec for p in points):
        s, ms = by_key[(bundle, "SSIM")], by_key[(bundle, "MS-SSIM")]
        paper = paper_row(paper_table, bundle)
        name = (
            bundle
            + (" (anchor)" if bundle == anchor else "")
            + (f" = {paper.label}" if paper else "")
        )
        lines.append(
            f"| {name} | {_pct(s.per_image_mean)} | {_pct(s.on_average_curve)} "
            f"| {_pct(ms.per_image_mean)} | {_pct(ms.on_average_curve)} "
            f"| {s.n_images}/{ms.n_images} "
            f"| {_pct(paper.ssim if paper else None)} "
            f"| {_pct(paper.ms_ssim if paper else None)} |"
        )
    lines += ["", "## Average curves", "", *average_curves_markdown(points)]
    return "\n".join(lines) + "\n"


def write_reports(
    points: Sequence[RDPoint],
    out: Path,
    anchor: str,
    paper_table: str,
    window: tuple[float, float] | None,
    plot: bool = True,
    rate: str = "file",
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows = savings(points, anchor, window)
    write_per_image_csv(rows, out / PER_IMAGE_NAME)
    write_summary_csv(rows, out / SUMMARY_NAME, paper_table)
    table = out / f"rd_variants_{paper_table}.md"
    table.write_text(table_markdown(points, rows, anchor, paper_table, window, rate))
    if plot:
        with warnings.catch_warnings():
            # matplotlib warns about an empty legend when no curve has MS-SSIM (tiny images).
            warnings.simplefilter("ignore", UserWarning)
            plot_rd(points, out / PLOT_NAME, window)
    return table


# ---------------------------------------------------------------- command line


@click.command(
    context_settings=CONTEXT_SETTINGS,
    help="Paper Figs. 3(a)/5(a): BD-rate savings of model bundles against an anchor.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="folder of images (not with --report-only)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output folder")
@click.option(
    "--bundle",
    type=NAMED_PATH,
    multiple=True,
    metavar="NAME=DIR",
    help="an exported model bundle (repeatable)",
)
@click.option(
    "--anchor", required=True, help="bundle name to compare against (the residual encoder)"
)
@click.option(
    "--paper-table",
    type=click.Choice(sorted(PAPER_TABLES)),
    default="fig3a",
    help="which paper table to print beside ours (default fig3a)",
)
@click.option(
    "--window",
    default=None,
    callback=window_option,
    help="BD-rate bpp window LO,HI or 'none' (default: whole curves)",
)
@click.option("--limit", type=int, default=None, help="use only the first N images")
@click.option("--jobs", type=int, default=1, help="images encoded in parallel")
@click.option(
    "--threads",
    type=int,
    default=1,
    help="onnxruntime threads per process (default 1: the machine is "
    "shared; 0 = onnxruntime's default)",
)
@click.option(
    "--report-only",
    is_flag=True,
    help=f"no encoding: rebuild the tables from --out/{CSV_NAME}",
)
@click.option(
    "--rate",
    type=click.Choice(("raw", "file")),
    default="raw",
    help="raw: the stage codes' bits, as the paper counts them (no entropy coding; "
    "needs --data for the image sizes, also with --report-only); file: the .ir2i "
    "file's bytes (default raw)",
)
@click.option(
    "--points-at-rate",
    type=click.Path(path_type=Path),
    default=None,
    metavar="CSV",
    help="also write the points at --rate's bpp as a benchmarks CSV, for "
    "`ir2icodec.bench.rd --keep` (Table 2: the variants against JPEG at the paper's rate)",
)
def main(
    data: Path | None,
    out: Path,
    bundle: tuple[tuple[str, str], ...],
    anchor: str,
    paper_table: str,
    window: tuple[float, float] | None,
    limit: int | None,
    jobs: int,
    threads: int,
    report_only: bool,
    rate: str,
    points_at_rate: Path | None,
) -> None:
    if report_only:
        csv_path = out / CSV_NAME
        if not csv_path.is_file():
            raise click.UsageError(f"--report-only needs {csv_path}")
        points = read_csv(csv_path)
    else:
        # Checked here, not in a callback: --report-only ignores --bundle, as before.
        bundles = unique_names(bundle, "--bundle")
        if anchor not in bundles:
            raise click.UsageError(f"--anchor {anchor!r} is not one of the --bundle names")
        if data is None or not data.is_dir():
            raise click.UsageError(f"--data {data} is not a folder")
        if limit is not None and limit < 1:
            raise click.UsageError("--limit must be >= 1")
        if jobs < 1:
            raise click.UsageError("--jobs must be >= 1")
        if threads < 0:
            raise click.UsageError("--threads must be >= 0")
        try:  # fail early on a bad bundle, not after the first image
            load_models(bundles, threads=1)
        except Exception as exc:  # ModelError and onnxruntime's own exception types
            raise click.UsageError(str(exc)) from None
        images, notes = images_in(data, limit)
        for message in notes:
            click.echo(f"warning: {message}", err=True)
        if not images:
            raise click.UsageError(f"no readable images in {data}")
        points = run(images, bundles, jobs, threads or None)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(points, out / CSV_NAME)
    if rate == "raw":
        if data is None or not data.is_dir():
            raise click.UsageError("--rate raw needs --data (the images' sizes)")
        points = at_raw_rates(points, data)
    if points_at_rate is not None:
        points_at_rate.parent.mkdir(parents=True, exist_ok=True)
        write_csv(points, points_at_rate)
    try:
        table = write_reports(points, out, anchor, paper_table, window, rate=rate)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"wrote {table.name}, {SUMMARY_NAME}, {PER_IMAGE_NAME}, {PLOT_NAME} to {out}")


if __name__ == "__main__":
    main()
