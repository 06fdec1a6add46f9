"""Peak memory of encoding and decoding a large image (50 megapixels by default).

    python -m benchmarks.memory [--width 8192 --height 6144] [--model DIR] [--bound-mb 2048]

Each step runs in a fresh subprocess so its peak resident set size (ru_maxrss) is its own.
The image is synthetic (smooth gradients plus noise): memory does not depend on content.
Exits non-zero when a peak exceeds --bound-mb, so the bound stated in the README is checked.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import click
from PIL import Image

MAKE = """
import numpy as np, sys
from PIL import Image
h, w = int(sys.argv[1]), int(sys.argv[2])
y = np.linspace(0, 6, h, dtype=np.float32)[:, None]
x = np.linspace(0, 9, w, dtype=np.float32)[None, :]
rng = np.random.default_rng(0)
img = np.empty((h, w, 3), np.uint8)
for c in range(3):
    img[..., c] = np.clip(128 + 90 * np.sin(x + c) * np.cos(y - c)
                          + rng.normal(0, 6, (h, w)), 0, 255)
Image.fromarray(img).save(sys.argv[3], compress_level=1)
"""


@click.command()
@click.option("--width", type=int, default=8192, show_default=True)
@click.option("--height", type=int, default=6144, show_default=True)
@click.option("--model", "model_path", default=None)
@click.option("--stages", type=int, default=8, show_default=True)
@click.option(
    "--bound-mb",
    type=float,
    default=2048,
    show_default=True,
    help="Fail if encode or decode peaks above this.",
)
def main(width: int, height: int, model_path: str | None, stages: int, bound_mb: float) -> None:
    model = ["--model", model_path] if model_path else []
    ir2i = [sys.executable, "-m", "ir2icodec"]
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = Path(tmp, "big.png"), Path(tmp, "big.ir2i"), Path(tmp, "big-out.png")
        subprocess.run([sys.executable, "-c", MAKE, str(height), str(width), str(src)], check=True)
        pixels = width * height
        # One process per measurement so that each ru_maxrss is that step's own peak.
        enc_s, enc_mb = _measure(
            [*ir2i, "encode", str(src), "-o", str(enc), "--stages", str(stages), *model]
        )
        dec_s, dec_mb = _measure([*ir2i, "decode", str(enc), "-o", str(dec), *model])
        with Image.open(dec) as im:
            assert im.size == (width, height)
        raw_mb = pixels * 3 / 2**20
        click.echo(f"| image | {width}x{height} ({pixels / 1e6:.1f} MP, {raw_mb:.0f} MiB as RGB) |")
        click.echo(f"| encode {stages} stages | {enc_s:.0f} s, peak {enc_mb:.0f} MiB |")
        click.echo(f"| decode | {dec_s:.0f} s, peak {dec_mb:.0f} MiB |")
        if max(enc_mb, dec_mb) > bound_mb:
            raise SystemExit(f"peak memory above the bound of {bound_mb:.0f} MiB")


def _measure(cmd: list[str]) -> tuple[float, float]:
    """Peak RSS of one command, measured by a wrapper process that runs only it."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True); "
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[-2]), float(out[-1])


if __name__ == "__main__":
    main()
