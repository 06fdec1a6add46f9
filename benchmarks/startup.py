"""Where a whole ``ir2i decode`` process spends its time, phase by phase.

    python -m benchmarks.startup [--image examples/kodim23.png] [--model DIR] [--rounds 7]

Encodes the image once to a uniform 8-stage file, then, in every round, three fresh
processes: the bare interpreter (``python -c pass``), the whole ``python -m ir2icodec decode
FILE -o OUT.png`` (what ``ir2i decode`` runs), and a process that does the same steps one by
one with a clock between them: import of the CLI module, reading and checking the file
(``api.summary``), loading the model, the first decode (onnxruntime sessions created, first
runs), a second decode of the same file in the same process (the steady state that
``benchmarks.speed`` times) and the PNG write. Medians over the rounds; the processes take
turns within each round, so a drift of the machine's speed hits all of them alike.

"First decode - second decode" is what a process pays once (session creation, first-run
allocations); the whole process minus the steady-state decode is what the issue "viewer
speed" calls the time outside the networks.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

DEFAULT_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "kodim23.png"

# The phases, timed inside one fresh process in the order `ir2i decode` runs them.
_PHASES_CHILD = r"""
import sys, time, json
t = [time.perf_counter()]
import ir2icodec.cli  # what the `ir2i` entry point imports
from ir2icodec import api
from ir2icodec.imageio import encode_image
t.append(time.perf_counter())
path, model_path, out = sys.argv[1], sys.argv[2] or None, sys.argv[3]
data = open(path, "rb").read()
api.summary(data)
t.append(time.perf_counter())
model = api.load_model(model_path)
t.append(time.perf_counter())
api.decode_with_warnings(data, model=model)
t.append(time.perf_counter())
picture = api.decode_with_warnings(data, model=model)
t.append(time.perf_counter())
with open(out, "wb") as f:
    f.write(encode_image(picture.rgb, picture.alpha, "png", picture.metadata))
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
PHASES = (
    "import of the CLI (numpy, onnxruntime, Pillow, ir2icodec)",
    "read and check the file (api.summary)",
    "load the model (manifest only: sessions are made on first use)",
    "first decode in the process",
    "second decode (steady state)",
    "PNG write",
)


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def _phases(file: Path, model: str | None, out: Path) -> list[float]:
    cmd = [sys.executable, "-c", _PHASES_CHILD, str(file), model or "", str(out)]
    run = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(image: Path, model: str | None, rounds: int, workdir: Path) -> dict[str, float]:
    """Median seconds of every row of the table (see the module docstring)."""
    from ir2icodec import api

    file = workdir / "startup.ir2i"
    file.write_bytes(api.encode(str(image), stages=8, model=model))
    decode_cmd = [sys.executable, "-m", "ir2icodec", "decode", str(file), "-o"]
    decode_cmd += [str(workdir / "whole.png"), "--force", "--quiet"]
    if model:
        decode_cmd += ["--model", model]
    bare, whole, phases = [], [], []
    for _ in range(rounds):
        bare.append(_wall([sys.executable, "-c", "pass"]))
        whole.append(_wall(decode_cmd))
        phases.append(_phases(file, model, workdir / "phases.png"))
    rows = {"bare interpreter (python -c pass)": statistics.median(bare)}
    for i, name in enumerate(PHASES):
        rows[name] = statistics.median(p[i] for p in phases)
    rows["whole `ir2i decode` process"] = statistics.median(whole)
    rows["whole process - steady-state decode (outside the networks)"] = (
        rows["whole `ir2i decode` process"] - rows["second decode (steady state)"]
    )
    rows["first - second decode (once per process)"] = (
        rows["first decode in the process"] - rows["second decode (steady state)"]
    )
    return rows


@click.command()
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_IMAGE,
    show_default=True,
)
@click.option("--model", default=None, help="Bundle or shipped name (default: the default).")
@click.option("--rounds", type=click.IntRange(1), default=7, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the table here.")
def main(image: Path, model: str | None, rounds: int, out: str | None) -> None:
    """Time the phases of a whole `ir2i decode` process (fresh processes, medians)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(image, model, rounds, Path(tmp))
    lines = [
        f"`{image.name}`, uniform 8 stages, model {model or 'default'}, median of {rounds} "
        "rounds of fresh processes.",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *(f"| {name} | {seconds:.4f} |" for name, seconds in rows.items()),
    ]
    text = "\n".join(lines) + "\n"
    click.echo(text, nl=False)
    if out:
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
