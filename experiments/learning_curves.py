"""Learning curves of training runs: held-out PSNR and block MS-SSIM against training windows.

    python -m experiments.learning_curves runs/residual runs/decoding ... \\
        --out docs/learning-curves.png [--csv results/reproduction/learning_curves.csv]

Each run directory holds the ``log.jsonl`` training writes: every validation entry has the
windows trained on so far and, per stage, the held-out PSNR and block MS-SSIM. The figure
has two panels (mean over stages of each metric, windows on a log axis), one line per run,
so that an ordering that flips as training grows shows as lines that cross, and where. A run
is labelled by its directory name; runs of the same variant at two budgets or seeds are
told apart by that name (e.g. ``decoding-s1``). The CSV has every point.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import click

METRICS = (
    ("mean_psnr", "held-out PSNR, mean of stages (dB)"),
    ("mean_msssim", "held-out block MS-SSIM, mean of stages"),
)


@dataclass(frozen=True)
class Curve:
    name: str
    windows: list[int]
    values: dict[str, list[float]]  # metric -> value at each point


def read_curve(run: Path) -> Curve:
    """The validation entries of ``run/log.jsonl`` that have a window count and a PSNR,
    in the order written; a resumed run's repeated entries keep the last of each count."""
    entries: dict[int, dict] = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "windows" in entry and "mean_psnr" in entry:
            entries[int(entry["windows"])] = entry
    if not entries:
        raise click.ClickException(f"{run}: no validation entries with windows in log.jsonl")
    windows = sorted(entries)
    values = {key: [float(entries[w].get(key, math.nan)) for w in windows] for key, _ in METRICS}
    return Curve(run.name, windows, values)


def write_csv(curves: list[Curve], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "windows", *(key for key, _ in METRICS)])
        for curve in curves:
            for i, w in enumerate(curve.windows):
                writer.writerow([curve.name, w, *(curve.values[k][i] for k, _ in METRICS)])


def plot(curves: list[Curve], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(6 * len(METRICS), 4.2))
    for ax, (key, label) in zip(axes, METRICS):
        for curve in curves:
            points = [
                (w, v)
                for w, v in zip(curve.windows, curve.values[key])
                if w > 0 and not math.isnan(v)
            ]
            if points:
                ax.plot(*zip(*points), marker=".", label=curve.name)
        ax.set_xscale("log")
        ax.set_xlabel("training windows (32x32 blocks with context)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.command()
@click.argument(
    "runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The figure (PNG).",
)
@click.option(
    "--csv",
    "csv_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Every point, as CSV.",
)
def main(runs: tuple[Path, ...], out: Path, csv_path: Path | None) -> None:
    """Plot held-out PSNR and block MS-SSIM against training windows for RUNS."""
    curves = [read_curve(run) for run in runs]
    plot(curves, out)
    if csv_path is not None:
        write_csv(curves, csv_path)
    for curve in curves:
        last = {k: curve.values[k][-1] for k, _ in METRICS}
        click.echo(
            f"{curve.name}: {curve.windows[-1]} windows, PSNR {last['mean_psnr']:.2f} dB, "
            f"block MS-SSIM {last['mean_msssim']:.4f}"
        )


if __name__ == "__main__":
    main()
