"""Every model of the paper's experiments in one time-boxed call, for a lent GPU machine.

The same models as ``experiments/train_variants.sh`` (equal budgets, only the architecture
flags differ), plus the wide-inpainting pair (the paper's 24 filters per dilation) and a
second seed of the disputed comparisons (residual vs R2I-decoding, Sep-Inp vs Joint-Inp),
each trained for ``--minutes`` from the packed photos (``python -m
ir2icodec.training.pack``). Each model leaves in OUT/NAME a weights-only bf16 checkpoint
(about 2 MiB for ``compact``: 17 models fit the 64 MiB a GPU call may bring back), its
held-out log and its settings; the full checkpoints stay in a scratch folder on the machine.
Back on the CPU, ``bash experiments/train_variants.sh export``-style export and the tables
run from those checkpoints (``--runs OUT`` layout: OUT/NAME/checkpoint.pt).

    python -m experiments.gpu_variants --pack .gpu/train85.npz --out $OUT/variants \\
        --minutes 0.75 --batch 1024 --lr 1e-3
    python -m experiments.gpu_variants --plan     # what would run, nothing trained

Sep-Inp's coder starts from the inpainting network trained alone (inpaint-only), so that one
runs first; every other model is independent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Variant:
    name: str
    flags: tuple[str, ...]
    needs: str | None = None  # a variant whose checkpoint this one starts from
    seed: int = 0


def plan(seeds: tuple[int, ...] = (0, 1)) -> list[Variant]:
    """The models, in an order where every model comes after what it needs."""
    base = [
        Variant("residual", ("--connections", "residual", "--inpainting", "none")),
        Variant("prediction", ("--connections", "prediction", "--inpainting", "none")),
        Variant("full", ("--connections", "full", "--inpainting", "none")),
        Variant("decoding", ("--connections", "decoding", "--inpainting", "none")),
        Variant("inpaint-only", ("--stages", "0")),
        Variant("inpaint-vanilla", ("--stages", "0", "--inpaint-kind", "vanilla")),
        Variant(
            "sep-inp",
            ("--connections", "decoding", "--inpainting", "separate"),
            needs="inpaint-only",
        ),
        Variant("ir2i", ("--connections", "decoding", "--inpainting", "joint")),
        # The inpainting network's size is the largest difference from the paper.
        Variant("inpaint-only-wide", ("--stages", "0", "--filters-per-dilation", "24")),
        Variant(
            "ir2i-wide",
            ("--connections", "decoding", "--inpainting", "joint", "--filters-per-dilation", "24"),
        ),
    ]
    disputed = ("residual", "decoding", "inpaint-only", "sep-inp", "ir2i")
    extra = []
    for seed in seeds[1:]:
        for v in base:
            if v.name in disputed:
                needs = f"{v.needs}-seed{seed}" if v.needs else None
                extra.append(Variant(f"{v.name}-seed{seed}", v.flags, needs, seed))
    return base + extra


def _run(cmd: list[str], log: Path) -> int:
    with log.open("w") as out:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode


def train_variant(
    v: Variant, pack: str, out: Path, scratch: Path, minutes: float, common: tuple[str, ...]
) -> dict:
    """Train one model; leave its bf16 weights-only checkpoint, log and config in OUT/NAME."""
    run = scratch / v.name
    dest = out / v.name
    dest.mkdir(parents=True, exist_ok=True)
    init = ("--init-inpaint", str(scratch / v.needs / "last.pt")) if v.needs else ()
    cmd = [
        sys.executable,
        "-m",
        "ir2icodec.training.train",
        "--pack",
        pack,
        "--out",
        str(run),
        "--steps",
        "0",
        "--max-minutes",
        str(minutes),
        "--checkpoint-minutes",
        "1",
        "--seed",
        str(v.seed),
        *common,
        *v.flags,
        *init,
    ]
    start = time.time()
    status = _run(cmd, dest / "train.out")
    for name in ("log.jsonl", "config.json"):
        if (run / name).exists():
            shutil.copy(run / name, dest / name)
    # The inpainting-only models are used at their last step (as train_variants.sh does);
    # coders at their best held-out one.
    source = run / ("last.pt" if "--stages" in v.flags else "best.pt")
    if status == 0 and source.exists():
        status = _run(
            [
                sys.executable,
                "-m",
                "ir2icodec.training.checkpoints",
                str(source),
                str(dest / "checkpoint.pt"),
                "--bf16",
            ],
            dest / "export.out",
        )
    return {
        "name": v.name,
        "status": status,
        "seconds": round(time.time() - start, 1),
        "checkpoint": (dest / "checkpoint.pt").exists(),
    }


@click.command()
@click.option("--pack", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default=None)
@click.option(
    "--minutes", type=float, default=1.0, show_default=True, help="Training time of each model."
)
@click.option(
    "--seeds",
    default="0,1",
    show_default=True,
    help="Seeds; every seed after the first trains the disputed models again.",
)
@click.option("--only", default=None, help="Comma-separated names (and what they need).")
@click.option("--plan", "show_plan", is_flag=True, help="Print the models and stop.")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def main(
    pack: str | None,
    out: str | None,
    minutes: float,
    seeds: str,
    only: str | None,
    show_plan: bool,
    train_args: tuple[str, ...],
) -> None:
    """Train every variant for MINUTES each; TRAIN_ARGS go to every run (e.g. --batch
    1024 --lr 1e-3 --inpaint-layers 8; give them after --)."""
    variants = plan(tuple(int(s) for s in seeds.split(",")))
    if only:
        wanted = set(only.split(","))
        needed = {v.needs for v in variants if v.name in wanted and v.needs}
        variants = [v for v in variants if v.name in wanted | needed]
    if show_plan:
        for v in variants:
            click.echo(
                f"{v.name}: seed {v.seed} {' '.join(v.flags)}"
                + (f" (starts from {v.needs})" if v.needs else "")
            )
        return
    if not pack or not out:
        raise click.UsageError("give --pack and --out (or --plan)")
    common = ("--preset", "compact", "--inpaint-layers", "8", "--lr-drops", "0.6,0.85", *train_args)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="variants-") as scratch:
        for v in variants:
            results.append(train_variant(v, pack, out_dir, Path(scratch), minutes, common))
            click.echo(json.dumps(results[-1]))
    (out_dir / "summary.json").write_text(
        json.dumps({"minutes": minutes, "train_args": list(common), "runs": results}, indent=2)
    )
    if any(r["status"] or not r["checkpoint"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
