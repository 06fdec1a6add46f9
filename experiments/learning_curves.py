"""Learning curves of training runs: held-out PSNR and block MS-SSIM against training windows.

    python -m experiments.learning_curves runs/residual runs/decoding ... \\
        --out docs/learning-curves.png [--csv results/reproduction/learning_curves.csv]

Each run directory holds the ``log.jsonl`` training writes: every validation entry has the
windows trained on so far and, per stage, the held-out PSNR and block MS-SSIM. The figure
has two panels for the coders (mean over stages of each metric, windows on a log axis) and,
when some runs train an inpainting network (``config.json``: inpainting joint), a third for
its estimates' PSNR; one line per run, so that an ordering that flips as training grows
shows as lines that cross, and where. A run is labelled by its directory name and its
windows; a variant keeps one colour, a seed suffix (``decoding-s1``) one line style, and a
run of less than half the longest run's windows is dotted (two budgets of one variant). The
CSV has every point.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import click

METRICS = (
    ("mean_psnr", "held-out PSNR, mean of stages (dB)"),
    ("mean_msssim", "held-out block MS-SSIM, mean of stages"),
)


# The inpainting networks' own score (third panel): held-out PSNR of their estimates.
INPAINT_METRIC = ("inpaint_psnr", "held-out inpainting PSNR (dB)")
SEED_STYLES = ("-", "--", "-.")


@dataclass(frozen=True)
class Curve:
    name: str
    windows: list[int]
    values: dict[str, list[float]]  # metric -> value at each point
    coder: bool = True  # has stages (inpainting-only runs have none: no coder panels)
    trains_inpainting: bool = False  # its inpainting network learns in this run (joint)

    @property
    def variant(self) -> str:
        """The name without a seed suffix (``ir2i-s1`` -> ``ir2i``): one colour a variant."""
        return re.sub(r"-s\d+$", "", self.name)

    @property
    def seed(self) -> int:
        match = re.search(r"-s(\d+)$", self.name)
        return int(match.group(1)) if match else 0


def read_curve(run: Path) -> Curve:
    """The validation entries of ``run/log.jsonl`` that have a window count and a PSNR,
    in the order written; a resumed run's repeated entries keep the last of each count.
    ``run/config.json``, when there, says whether the run trains an inpainting network."""
    entries: dict[int, dict] = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "windows" in entry and "mean_psnr" in entry:
            entries[int(entry["windows"])] = entry
    if not entries:
        raise click.ClickException(f"{run}: no validation entries with windows in log.jsonl")
    windows = sorted(entries)
    keys = [key for key, _ in METRICS] + [INPAINT_METRIC[0]]
    values = {key: [float(entries[w].get(key, math.nan)) for w in windows] for key in keys}
    model = {}
    if (run / "config.json").exists():
        model = json.loads((run / "config.json").read_text()).get("model", {})
    coder = model.get("stages", 1) > 0 and not all(math.isnan(v) for v in values["mean_msssim"])
    return Curve(run.name, windows, values, coder, model.get("inpainting") == "joint")


def line_style(curve: Curve, longest: int) -> str:
    """Dotted for a run of less than half the ``longest`` run's windows (so that the two
    budgets of one variant, one colour, tell apart); else one style a seed."""
    if curve.windows[-1] < longest / 2:
        return ":"
    return SEED_STYLES[curve.seed % len(SEED_STYLES)]


def _label(curve: Curve) -> str:
    return f"{curve.name} ({curve.windows[-1] / 1000:.0f} k)"


def write_csv(curves: list[Curve], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        # run_windows: the run's budget, which tells apart two runs of one name
        writer.writerow(["run", "run_windows", "windows", *(key for key, _ in METRICS)])
        for curve in curves:
            for i, w in enumerate(curve.windows):
                values = (curve.values[k][i] for k, _ in METRICS)
                writer.writerow([curve.name, curve.windows[-1], w, *values])


def plot(curves: list[Curve], path: Path) -> None:
    """Coders in two panels (PSNR, block MS-SSIM, mean over stages); the runs that train an
    inpainting network in a third (its estimates' PSNR), since an inpainting-only run has no
    stages. One colour a variant, one line style a seed; the legend gives each run's
    windows, so runs of two budgets tell apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, label, [c for c in curves if c.coder]) for key, label in METRICS]
    inpainting = [c for c in curves if c.trains_inpainting]
    if inpainting:
        panels.append((*INPAINT_METRIC, inpainting))
    panels = [p for p in panels if p[2]]
    variants = list(dict.fromkeys(c.variant for c in curves))
    longest = max(c.windows[-1] for c in curves)
    colours = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    for ax, (key, label, members) in zip(axes[0], panels):
        for curve in members:
            points = [
                (w, v)
                for w, v in zip(curve.windows, curve.values[key])
                if w > 0 and not math.isnan(v)
            ]
            if points:
                ax.plot(
                    *zip(*points),
                    marker=".",
                    label=_label(curve),
                    color=colours(variants.index(curve.variant)),
                    linestyle=line_style(curve, longest),
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda w, _: f"{w / 1000:.0f} k")
        )
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training windows (32x32 blocks with context)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
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
