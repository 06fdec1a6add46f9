"""The training budget of every run, read back from its run directory (for the docs).

    python -m experiments.budgets runs/residual runs/prediction ... [--out budgets.md]

Per run: steps done, batch x processes, wall time, samples/s, and the held-out checkpoint
(best.pt) it selected: step and score, the last stage's PSNR and the inpainting PSNR there.
Everything comes from ``config.json`` and ``log.jsonl``, which training writes.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from ir2icodec.training.train import selection_metric

from .common import CONTEXT_SETTINGS, fmt


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int
    batch: int
    processes: int
    seconds: float
    selected_step: int
    selected_by: str
    selected_score: float
    last_stage_psnr: float
    inpaint_psnr: float

    @property
    def samples_per_second(self) -> float:
        return self.steps * self.batch * self.processes / self.seconds if self.seconds else math.nan


def read_budget(run: Path) -> Budget:
    """A run directory's budget; raises FileNotFoundError/ValueError for a run without logs."""
    config = json.loads((run / "config.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    if not log:
        raise ValueError(f"{run}: log.jsonl has no validation yet")
    key = selection_metric(config["options"]["loss"], config["model"]["stages"])
    best = max(log, key=lambda row: row[key])
    inpaints = config["model"]["inpainting"] != "none"
    return Budget(
        run.name,
        log[-1]["step"],
        config["options"]["batch"],
        config.get("world_size", 1),
        log[-1]["elapsed"],
        best["step"],
        key,
        best[key],
        best["psnr"][-1] if best["psnr"] else math.nan,
        best["inpaint_psnr"] if inpaints else math.nan,
    )


def markdown(budgets: Sequence[Budget]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {platform.system()}; wall time as logged by "
        "training (other jobs may have shared the cores).",
        "",
        "| run | steps | batch x procs | wall time | samples/s | selected step "
        "(held-out metric) | score | last-stage PSNR | inpainting PSNR |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for b in budgets:
        lines.append(
            f"| {b.name} | {b.steps} | {b.batch} x {b.processes} | "
            f"{b.seconds / 60:.1f} min | {fmt(b.samples_per_second, 0)} | "
            f"{b.selected_step} ({b.selected_by}) | {fmt(b.selected_score, 4)} | "
            f"{fmt(b.last_stage_psnr, 2)} | {fmt(b.inpaint_psnr, 2)} |"
        )
    return "\n".join(lines) + "\n"


# Click arguments carry no help text, so the command's help names RUNS.
@click.command(
    context_settings=CONTEXT_SETTINGS,
    help=f"{__doc__.splitlines()[0]}\n\nRUNS: training run directories.",
)
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="also write the table here"
)
def main(runs: tuple[Path, ...], out: Path | None) -> None:
    try:
        text = markdown([read_budget(run) for run in runs])
    except (OSError, ValueError, KeyError) as exc:
        raise click.UsageError(f"not a training run directory with logs: {exc}") from None
    click.echo(text, nl=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


if __name__ == "__main__":
    main()
