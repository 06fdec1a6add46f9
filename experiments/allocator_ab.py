"""A/B of glibc's allocator settings for decoding (issue "viewer speed"; measured, not shipped).

    python -m experiments.allocator_ab FILE.ir2i [--rounds 9]

Fresh processes, alternating: the default allocator against mallopt(M_MMAP_THRESHOLD = 512 MiB,
M_TRIM_THRESHOLD = 1 GiB), which keeps onnxruntime's large per-run buffers (the sessions run
without their arena) on the heap for reuse, instead of a fresh mmap and its page faults in
every run. Prints the medians of: import and model load, the first decode, a second decode.
Linux with glibc only.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import click

_CHILD = r"""
import ctypes, json, sys, time
if sys.argv[2] == "heap":
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 512 * 1024 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1024 * 1024 * 1024)  # M_TRIM_THRESHOLD
t = [time.perf_counter()]
from ir2icodec import api
data = open(sys.argv[1], "rb").read()
model = api.load_model(None)
t.append(time.perf_counter())
api.decode_with_warnings(data, model=model)
t.append(time.perf_counter())
api.decode_with_warnings(data, model=model)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
SETTINGS = ("default", "heap")
COLUMNS = ("import + model load", "first decode", "second decode")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rounds", type=click.IntRange(1), default=9, show_default=True)
def main(file: Path, rounds: int) -> None:
    """Decode FILE in fresh processes with and without the heap-keeping allocator settings."""
    times: dict[str, list[list[float]]] = {s: [] for s in SETTINGS}
    for _ in range(rounds):
        for setting in SETTINGS:
            cmd = [sys.executable, "-c", _CHILD, str(file), setting]
            run = subprocess.run(cmd, check=True, capture_output=True, text=True)
            times[setting].append(json.loads(run.stdout.strip().splitlines()[-1]))
    click.echo("| allocator | " + " | ".join(COLUMNS) + " |")
    click.echo("|---|" + "---:|" * len(COLUMNS))
    for setting, rows in times.items():
        medians = [statistics.median(r[i] for r in rows) for i in range(len(COLUMNS))]
        click.echo(f"| {setting} | " + " | ".join(f"{m:.3f}" for m in medians) + " |")


if __name__ == "__main__":
    main()
