"""The ``ir2i`` command line: encode, decode, info (and train/export with the [train] extra).

Every failure a user can cause ends with one line on stderr and a non-zero exit status;
outputs are written atomically, so a failed command leaves no partial file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .bench.rd import bench as bench_command
from .container import DEFAULT_MAX_PIXELS, chunk_layout, read_header
from .errors import Ir2iError, UsageError

_DEBUG_ENV = "IR2I_DEBUG"  # set to get a traceback for internal errors


def _warn(message: str) -> None:
    click.echo(f"ir2i: warning: {message}", err=True)


def _default_output(source: str, suffix: str) -> str:
    return "-" if source == "-" else str(Path(source).with_suffix(suffix).name)


def _check_terminal(output: str) -> None:
    if output == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write binary data to a terminal; use -o FILE or a pipe")


@contextmanager
def _progress_bar(what: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr, shown only on a terminal (never in pipelines or logs)."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    with tqdm(total=total, desc=what, unit="block", unit_scale=True, leave=False,
              disable=disable) as bar:
        yield bar.update


def _max_ir2i_bytes(max_pixels: int) -> int:
    # 8 stages x 128 bits per 32x32 block is 1 bpp; allow headers and chunks on top.
    return max_pixels // 8 + 2**20


class _Ir2iGroup(click.Group):
    """Turns the codec's errors (and anything unexpected) into one line on stderr."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Ir2iError as e:
            click.echo(f"ir2i: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:
            # A reader such as `head` stopped early (e.g. `ir2i info x | head -1`): like other
            # Unix tools, end quietly, with the status of a SIGPIPE death.
            from .output import discard_stdout

            discard_stdout()
            ctx.exit(141)
        except KeyboardInterrupt:
            click.echo("ir2i: interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:
            if os.environ.get(_DEBUG_ENV):
                raise
            click.echo(f"ir2i: internal error: {type(e).__name__}: {e} "
                       f"(set {_DEBUG_ENV}=1 for a traceback)", err=True)
            ctx.exit(70)


def _model_options(f):
    f = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(f)
    f = click.option("--threads", type=click.IntRange(1, 256), default=None,
                     help="onnxruntime threads (default: all cores).")(f)
    f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True, help="Where onnxruntime runs the networks.")(f)
    f = click.option("--model", "model_path", default=None, metavar="DIR|NAME",
                     help="Model bundle (default: the shipped ir2i-compact).")(f)
    return f


def _max_pixels_option(f):
    return click.option("--max-pixels", type=click.IntRange(1), default=DEFAULT_MAX_PIXELS,
                        show_default=True, help="Refuse larger images (decompression bombs).")(f)


@click.group(cls=_Ir2iGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir2i", prog_name="ir2i")
def cli() -> None:
    """ir2i: progressive learned image codec (inpainting + residual-to-image)."""


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .ir2i file ('-' = stdout).")
@click.option("-s", "--stages", type=int, default=8, show_default=True,
              help="Stages to store, 2..8: 0.25 bpp for the first code + 0.125 bpp each.")
@click.option("--alpha", type=click.Choice(["keep", "drop", "refuse"]), default="keep",
              show_default=True, help="What to do with an alpha channel (kept losslessly).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@_max_pixels_option
@_model_options
def encode(source: str, output: str | None, stages: int, alpha: str, force: bool,
           max_pixels: int, model_path: str | None, device: str, threads: int | None,
           quiet: bool) -> None:
    """Encode an image (PNG, JPEG, ...; '-' = stdin) into a progressive .ir2i file."""
    from .codec import encode as encode_image
    from .imageio import read_image_file
    from .output import write_output
    from .runtime import load_model

    output = output or _default_output(source, ".ir2i")
    _check_terminal(output)
    model = load_model(model_path, device=device, threads=threads)
    if not 2 <= stages <= model.stages:
        raise UsageError(f"--stages must be between 2 and {model.stages}, got {stages}")
    image = read_image_file(source, max_pixels=max_pixels, alpha=alpha)
    for note in image.warnings:
        _warn(note)
    h, w = image.rgb.shape[:2]
    blocks = -(-h // model.block_size) * -(-w // model.block_size)
    with _progress_bar("encoding", blocks * stages, quiet) as progress:
        result = encode_image(image.rgb, model, stages, alpha=image.alpha, progress=progress)
    write_output(output, result.data, force=force, protect=[source])


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", default=None,
              help="Output image; format from the extension (PNG by default, '-' = stdout).")
@click.option("-k", "--max-stages", type=int, default=None,
              help="Decode at most this many stages (2..8), as a partial download would.")
@click.option("--salvage", is_flag=True,
              help="Decode the stages before a damaged chunk instead of failing.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--progressive", type=click.Choice(["animation", "strip"]), is_flag=False,
              flag_value="animation", default=None,
              help="Every stage count from 2 up, labelled with its bpp: an animated PNG/WebP "
              "(the default) or a strip.")
@_max_pixels_option
@_model_options
def decode(source: str, output: str | None, max_stages: int | None, salvage: bool, force: bool,
           progressive: str | None, max_pixels: int, model_path: str | None, device: str,
           threads: int | None, quiet: bool) -> None:
    """Decode an .ir2i file ('-' = stdin) to an image."""
    from .codec import decode as decode_data
    from .imageio import encode_image, format_for_path, format_supports_alpha, read_input
    from .output import write_output
    from .runtime import load_model

    output = output or _default_output(source, ".png")
    fmt = format_for_path(output)
    _check_terminal(output)
    data = read_input(source, limit=_max_ir2i_bytes(max_pixels), kind="an .ir2i file")
    model = load_model(model_path, device=device, threads=threads)
    header = read_header(data, max_pixels=max_pixels)
    total = header.n_blocks * min(max_stages or header.stages, header.stages)
    if progressive:  # every stage count in one picture: ir2icodec/preview.py
        from .preview import progressive_file, work

        with _progress_bar("decoding", work(header.n_blocks, total // header.n_blocks),
                           quiet) as progress:
            picture, notes = progressive_file(data, model, progressive, fmt,
                                              max_stages=max_stages, salvage=salvage,
                                              max_pixels=max_pixels, progress=progress)
        for note in notes:
            _warn(note)
        write_output(output, picture, force=force, protect=[source])
        return
    with _progress_bar("decoding", total, quiet) as progress:
        decoded = decode_data(data, model, max_stages=max_stages, salvage=salvage,
                              max_pixels=max_pixels, progress=progress)
    for note in decoded.warnings:
        _warn(note)
    if decoded.alpha is not None and not format_supports_alpha(fmt):
        _warn(f"{fmt.upper()} has no alpha channel: the file's alpha is not written")
    write_output(output, encode_image(decoded.rgb, decoded.alpha, fmt), force=force,
                 protect=[source])


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .ir2i file ('-' = stdout).")
@click.option("-s", "--stages", type=int, required=True,
              help="Stages to keep (2..stages in the file).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@_max_pixels_option
def truncate(source: str, output: str | None, stages: int, force: bool, max_pixels: int) -> None:
    """Keep the first stages of an .ir2i file: a smaller, complete file, no re-encoding."""
    from .container import truncate_stages
    from .imageio import read_input
    from .output import write_output

    output = output or _default_output(source, f".s{stages}.ir2i")
    _check_terminal(output)
    data = read_input(source, limit=_max_ir2i_bytes(max_pixels), kind="an .ir2i file")
    write_output(output, truncate_stages(data, stages, max_pixels=max_pixels), force=force,
                 protect=[source])


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_max_pixels_option
def info(source: str, as_json: bool, max_pixels: int) -> None:
    """Show an .ir2i file's header, model and per-stage sizes."""
    from .container import read_container
    from .imageio import read_input

    data = read_input(source, limit=_max_ir2i_bytes(max_pixels), kind="an .ir2i file")
    header = read_header(data, max_pixels=max_pixels)
    layout = chunk_layout(data)
    container = read_container(data, max_pixels=max_pixels, salvage=True)
    pixels = header.width * header.height
    # Size of a file cut after each complete CODE chunk: what a progressive download needs.
    prefixes = []
    stage = 0
    for chunk in layout:
        if chunk.type == "CODE" and chunk.crc_ok:
            stage = header.first_code_stages if stage == 0 else stage + 1
            end = chunk.offset + chunk.length + 12
            prefixes.append({"stages": stage, "bytes": end, "bpp": round(8 * end / pixels, 4)})
    report = {
        "file_bytes": len(data), "width": header.width, "height": header.height,
        "block_size": header.block_size, "blocks": [header.blocks_y, header.blocks_x],
        "stages": header.stages, "stages_present": container.stages_found,
        "complete": container.complete, "first_code_stages": header.first_code_stages,
        "bits_per_stage": header.bits_per_stage, "band_rows": header.band_rows,
        "flags": header.flags, "model": header.model_name,
        "model_digest": header.model_digest.hex(),
        "bpp": round(8 * len(data) / pixels, 4), "progressive": prefixes,
        "chunks": [c._asdict() for c in layout], "warnings": container.warnings,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{source}: ir2i, {header.width} x {header.height}, "
               f"{header.stages} stages ({container.stages_found} present), "
               f"{len(data)} bytes, {report['bpp']} bpp")
    click.echo(f"model: {header.model_name} ({header.model_digest.hex()})")
    click.echo(f"blocks: {header.blocks_y} x {header.blocks_x} of {header.block_size}px, "
               f"{header.bits_per_stage} bits per block per stage, band of {header.band_rows} rows")
    click.echo("progressive prefixes:")
    for p in prefixes:
        click.echo(f"  stages 1-{p['stages']}: {p['bytes']:>9} bytes  {p['bpp']:.4f} bpp")
    for w in container.warnings:
        _warn(w)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                               "help_option_names": []})
@click.pass_context
def train(ctx: click.Context) -> None:
    """Train a model (needs the [train] extra); see `ir2i train --help`."""
    _torch_command("ir2icodec.training.train", ctx.args)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                               "help_option_names": []})
@click.pass_context
def export(ctx: click.Context) -> None:
    """Export a training checkpoint to an ONNX bundle (needs the [train] extra)."""
    _torch_command("ir2icodec.training.export", ctx.args)


def _torch_command(module: str, args: list[str]) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("this command needs torch: pip install 'ir2i[train]'") from None
    import importlib

    command = importlib.import_module(module).main
    command.main(args=args, prog_name=f"ir2i {command.name}", standalone_mode=True)


cli.add_command(bench_command)  # ir2i bench: the rate-distortion benchmark ([bench] extra)


def main() -> None:
    cli(prog_name="ir2i")


if __name__ == "__main__":
    main()
