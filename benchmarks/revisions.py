"""Decode speed of two revisions of ir2i, timed side by side (``benchmarks.speed --baseline``).

Each revision runs its own code and its own default model: a git worktree of the baseline
revision (made and removed here), and the checkout this module belongs to (uncommitted
changes included). Each encodes kodim23 (or ``--image``) to a uniform 8-stage file with its
default model, and the two are then timed in interleaved rounds, so that a drift of the
machine's speed hits both alike:

- in-process decode (post-filter on): a long-lived child process per revision, told by a
  line on its stdin to decode once, answers with the seconds that took;
- then, the children gone, the whole ``ir2i decode FILE -o OUT.png`` process, wall-clock,
  start-up and PNG write included.

In every other round the baseline goes second, so that neither always runs first.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent

# Runs inside a revision's tree (its ir2icodec first on sys.path). Uses only calls that every
# revision since format version 2 has: codec.encode/decode, runtime.load_model,
# imageio.read_image_file. Answers one line per request: "ready" after encoding, then the
# seconds of each decode.
_CHILD = """
import sys, time
from ir2icodec.codec import decode, encode
from ir2icodec.imageio import read_image_file
from ir2icodec.runtime import load_model
image, out, threads = sys.argv[1], sys.argv[2], sys.argv[3]
model = load_model(None, device="cpu", threads=int(threads) or None)
data = encode(read_image_file(image).rgb, model, 8).data
open(out, "wb").write(data)
decode(data, model)  # warm-up: sessions and first-run allocations
print("ready", model.name, len(data), flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    decode(data, model)
    print(time.perf_counter() - t, flush=True)
"""


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A detached git worktree of ``revision`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="ir2i-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(CHECKOUT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(CHECKOUT), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
            )


def _env(tree: Path) -> dict[str, str]:
    """The environment that makes ``tree``'s ir2icodec the one imported (before any
    installed copy). Byte code is written (the warm-up process does it), so that no timed
    process compiles the sources, as none does in an installed package."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass
class Revision:
    """One revision under test: its tree, its timing child and the file it encoded."""

    label: str
    tree: Path
    file: Path
    threads: int = 0
    model: str = ""
    size: int = 0
    _child: subprocess.Popen | None = None

    def start(self, image: Path) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(image), str(self.file), str(self.threads)],
            cwd=self.tree,
            env=_env(self.tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self._child.stdout.readline().split()
        if not first or first[0] != "ready":
            self.close()
            raise RuntimeError(f"{self.label}: the timing child did not start")
        self.model, self.size = first[1], int(first[2])

    def decode_seconds(self) -> float:
        assert self._child is not None
        self._child.stdin.write("decode\n")
        self._child.stdin.flush()
        return float(self._child.stdout.readline())

    def process_seconds(self, out: Path) -> float:
        """Wall-clock of the whole ``ir2i decode`` process (module entry point)."""
        command = [sys.executable, "-m", "ir2icodec", "decode", str(self.file), "-o", str(out)]
        t = time.perf_counter()
        subprocess.run(
            command + ["-f", "-q"],
            cwd=self.tree,
            env=_env(self.tree),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - t

    def close(self) -> None:
        if self._child is not None:
            self._child.stdin.close()
            self._child.wait(timeout=60)
            self._child = None


@dataclass(frozen=True)
class Comparison:
    """Medians over the interleaved rounds (seconds), per revision label."""

    in_process: dict[str, float]
    process: dict[str, float]
    models: dict[str, str]
    sizes: dict[str, int]
    rounds: int


def compare(baseline: str, image: Path, rounds: int, threads: int | None = None) -> Comparison:
    """Time the decode of ``baseline`` and of this checkout, interleaved for ``rounds``."""
    with worktree(baseline) as tree, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        revisions = [
            Revision(f"baseline {baseline}", tree, work / "baseline.ir2i", threads or 0),
            Revision("this checkout", CHECKOUT, work / "current.ir2i", threads or 0),
        ]
        try:
            for r in revisions:
                r.start(image)
            in_process: dict[str, list[float]] = {r.label: [] for r in revisions}
            process: dict[str, list[float]] = {r.label: [] for r in revisions}
            for i in range(rounds):
                for r in revisions if i % 2 == 0 else revisions[::-1]:  # neither always first
                    in_process[r.label].append(r.decode_seconds())
        finally:
            for r in revisions:
                r.close()
        # The processes run after the children have exited: timed beside the live children,
        # one revision's processes came out 0.13-0.28 s slower in three runs and not when
        # its child had exited (cause not found), so the children do not stay.
        for r in revisions:  # the first process of each pays the cold file cache
            r.process_seconds(work / "warm.png")
        for i in range(rounds):
            for r in revisions if i % 2 == 0 else revisions[::-1]:
                process[r.label].append(r.process_seconds(work / f"{r.file.stem}.png"))
    return Comparison(
        {k: statistics.median(v) for k, v in in_process.items()},
        {k: statistics.median(v) for k, v in process.items()},
        {r.label: r.model for r in revisions},
        {r.label: r.size for r in revisions},
        rounds,
    )


def table(result: Comparison) -> str:
    """Markdown: each revision's medians and this checkout's time as a fraction of the
    baseline's."""
    base, current = list(result.in_process)
    rows = [
        f"Uniform 8-stage file of the image, each revision's own default model, median of "
        f"{result.rounds} interleaved rounds.",
        "",
        "| revision | model | file bytes | decode in process (s) | whole `ir2i decode` (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for label in (base, current):
        rows.append(
            f"| {label} | {result.models[label]} | {result.sizes[label]} | "
            f"{result.in_process[label]:.3f} | {result.process[label]:.3f} |"
        )
    in_process = result.in_process[current] / result.in_process[base]
    process = result.process[current] / result.process[base]
    rows.append(f"| this checkout / baseline | | | {in_process:.2f}x | {process:.2f}x |")
    return "\n".join(rows)
