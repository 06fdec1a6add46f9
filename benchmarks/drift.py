"""Drift between execution providers: decode the same file on CPU and on CUDA.

    python -m benchmarks.drift [--image examples/kodim23.png] [--model DIR]

Bit-exactness holds between an encoder and a decoder on the same machine and provider.
On another provider the convolutions round differently, the 8-bit stage-2 context can
differ in places, and the difference propagates along the wavefront. This prints the PSNR
of the CUDA decode against the CPU decode (and of CUDA-encoded files decoded on CPU), per
stage count. Needs onnxruntime-gpu and a GPU; says so and exits 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path

import click
import onnxruntime as ort

from ir2icodec.codec import decode, encode
from ir2icodec.imageio import read_image_file
from ir2icodec.metrics import psnr
from ir2icodec.runtime import load_model

DEFAULT_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "kodim23.png"


@click.command()
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=str(DEFAULT_IMAGE))
@click.option("--model", "model_path", default=None)
def main(image: str, model_path: str | None) -> None:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        click.echo(
            "no CUDA execution provider here (install onnxruntime-gpu on a GPU machine); "
            "nothing to measure"
        )
        return
    cpu = load_model(model_path, device="cpu")
    cuda = load_model(model_path, device="cuda")
    rgb = read_image_file(image).rgb
    from_cpu = encode(rgb, cpu, 8).data
    from_cuda = encode(rgb, cuda, 8).data
    click.echo(
        "| stages | CPU file: CUDA vs CPU decode PSNR (dB) | CUDA file decoded on CPU vs "
        "CUDA's own reconstruction PSNR (dB) |"
    )
    click.echo("|---|---|---|")
    for k in range(2, 9):
        a = psnr(decode(from_cpu, cpu, max_stages=k).rgb, decode(from_cpu, cuda, max_stages=k).rgb)
        b = psnr(
            decode(from_cuda, cuda, max_stages=k).rgb, decode(from_cuda, cpu, max_stages=k).rgb
        )
        click.echo(f"| {k} | {a:.2f} | {b:.2f} |")


if __name__ == "__main__":
    main()
