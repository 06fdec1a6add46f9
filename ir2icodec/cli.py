"""The ``ir2i`` command line: encode, decode, info (and train/export with the [train] extra).

Every failure a user can cause ends with one line on stderr and a non-zero exit status;
outputs are written atomically, so a failed command leaves no partial file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from . import api, options
from .api import DEFAULT_MAX_PIXELS
from .errors import Ir2iError, UsageError
from .ratecontrol import DEFAULT_QUALITY
from .tuning import TUNES, model_for

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
    if quiet or not sys.stderr.isatty():
        # tqdm is not even imported: a pipeline's decode imports no more than it runs
        yield lambda _done: None
        return
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: a bar this short needs none
    with tqdm(total=total, desc=what, unit="block", unit_scale=True, leave=False) as bar:
        yield bar.update


# The library names its options as the API spells them; the command line says its flags.
_FLAGS = {
    "max_stages": "--max-stages",
    "stages": "--stages",
    "quality": "--quality",
    "target_bpp": "--target-bpp",
    "target_bytes": "--size",
    "max_pixels": "--max-pixels",
    "tune": "--tune",
    "model": "--model",
}
_OPTION_NAME = re.compile(
    r"(?:^|(?<=, )|(?<=and ))(" + "|".join(_FLAGS) + r")\b(?= must| and| are|,)"
)


def flag_names(message: str) -> str:
    """A library message with the options it names (leading, or listed: "quality,
    target_bpp and target_bytes are ...") as the CLI's flags."""
    return _OPTION_NAME.sub(lambda m: _FLAGS[m.group(1)], message)


class _Ir2iGroup(click.Group):
    """Turns the codec's errors (and anything unexpected) into one line on stderr, and
    imports the commands that only some runs need when they run (every ``ir2i decode``
    would otherwise import the benchmark)."""

    LAZY = {"bench": ("ir2icodec.bench.rd", "bench")}  # the rate-distortion benchmark

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY:
            import importlib

            module, attribute = self.LAZY[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Ir2iError as e:
            click.echo(f"ir2i: error: {flag_names(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:
            # A reader such as `head` stopped early (e.g. `ir2i info x | head -1`): like other
            # Unix tools, end quietly, with the status of a SIGPIPE death.
            from .output import discard_stdout

            discard_stdout()
            ctx.exit(141)
        except MemoryError:
            # Anything the limits allow can still outgrow this machine: one line, not a bug.
            click.echo(
                f"ir2i: error: not enough memory to {ctx.invoked_subcommand or 'run'} this; "
                "lower --max-pixels to refuse pictures this large",
                err=True,
            )
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("ir2i: interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:
            if os.environ.get(_DEBUG_ENV):
                raise
            click.echo(
                f"ir2i: internal error: {type(e).__name__}: {e} "
                f"(set {_DEBUG_ENV}=1 for a traceback)",
                err=True,
            )
            ctx.exit(70)


def _model_options(f):
    f = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(f)
    f = click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=None,
        help="onnxruntime threads (default: all cores).",
    )(f)
    f = click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="Where onnxruntime runs the networks.",
    )(f)
    f = click.option(
        "--model",
        "model_path",
        default=None,
        metavar="DIR|NAME",
        help="Model bundle (default: the shipped default model to encode, "
        "ir2icodec.runtime.DEFAULT_MODEL; to decode, the shipped model the "
        "file names).",
    )(f)
    return f


def _max_pixels_option(f):
    return click.option(
        "--max-pixels",
        type=click.IntRange(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse larger images (decompression bombs).",
    )(f)


@click.group(cls=_Ir2iGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir2i", prog_name="ir2i")
def cli() -> None:
    """ir2i: progressive learned image codec (inpainting + residual-to-image)."""


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .ir2i file ('-' = stdout).")
@click.option(
    "--quality",
    type=float,
    default=None,
    help=f"0..100, higher = better and larger; each block gets the stages that buy "
    f"the most quality (default {DEFAULT_QUALITY:g}).",
)
@click.option(
    "--target-bpp",
    type=float,
    default=None,
    help="The best quality whose file fits this many bits per pixel.",
)
@click.option(
    "--size",
    "target_size",
    default=None,
    metavar="BYTES",
    help="The best quality whose file fits this size: 20000, 20k (x1000), 2M.",
)
@click.option(
    "-s",
    "--stages",
    type=int,
    default=None,
    help="Every block this many stages (2..8), or the cap with --quality/--size.",
)
@click.option(
    "--alpha",
    type=click.Choice(["keep", "drop", "refuse"]),
    default="keep",
    show_default=True,
    help="What to do with an alpha channel (kept losslessly).",
)
@click.option(
    "--strip",
    type=click.Choice(["none", "metadata", "all"]),
    default="none",
    show_default=True,
    help="Drop the input's EXIF and XMP (metadata: e.g. GPS, for privacy; the colour "
    "profile stays, the colours need it) or those and the profile (all).",
)
@click.option(
    "--tune",
    type=click.Choice(TUNES),
    default=None,
    help="The metric to serve: msssim (the default model) or psnr (the shipped model "
    "trained for squared error). Decoding needs no flag: the file names its model.",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@_max_pixels_option
@_model_options
def encode(
    source: str,
    output: str | None,
    quality: float | None,
    target_bpp: float | None,
    target_size: str | None,
    stages: int | None,
    alpha: str,
    strip: str,
    tune: str | None,
    force: bool,
    max_pixels: int,
    model_path: str | None,
    device: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Encode an image (PNG, JPEG, ...; '-' = stdin) into a progressive .ir2i file."""
    from .output import write_output

    output = output or _default_output(source, ".ir2i")
    _check_terminal(output)
    target_bytes = parse_size(target_size) if target_size is not None else None
    options.stage_count(stages)  # before reading the image: the API's check and words
    model_path = model_for(model_path, tune)  # type: ignore[arg-type]
    model = api.load_model(model_path, device=device, threads=threads)  # type: ignore[arg-type]
    image = api.load_image(
        source,
        alpha=alpha,
        max_pixels=max_pixels,  # type: ignore[arg-type]
        model=model,
        device=device,
    )  # type: ignore[arg-type]
    h, w = image.rgb.shape[:2]
    blocks = -(-h // model.block_size) * -(-w // model.block_size)
    with _progress_bar("encoding", blocks * (stages or model.stages), quiet) as progress:
        result = api.encode_with_warnings(
            image,
            stages=stages,
            quality=quality,
            target_bpp=target_bpp,
            target_bytes=target_bytes,
            model=model,
            max_pixels=max_pixels,
            progress=progress,
            strip=strip,
        )  # type: ignore[arg-type]
    for note in result.warnings:
        _warn(note)
    write_output(output, result.data, force=force, protect=[source])


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output image; format from the extension (PNG by default, '-' = stdout).",
)
@click.option(
    "-k",
    "--max-stages",
    type=int,
    default=None,
    help="Decode at most this many stages (2..8), as a partial download would.",
)
@click.option(
    "--salvage", is_flag=True, help="Decode the stages before a damaged chunk instead of failing."
)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--progressive",
    type=click.Choice(["animation", "strip"]),
    is_flag=False,
    flag_value="animation",
    default=None,
    help="Every stage count from 2 up, labelled with its bpp: an animated PNG/WebP "
    "(the default) or a strip.",
)
@click.option(
    "--no-filter",
    is_flag=True,
    help="Skip the model's post-filter: the bit-exact reconstruction, block seams and all.",
)
@_max_pixels_option
@_model_options
def decode(
    source: str,
    output: str | None,
    max_stages: int | None,
    salvage: bool,
    force: bool,
    progressive: str | None,
    no_filter: bool,
    max_pixels: int,
    model_path: str | None,
    device: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Decode an .ir2i file ('-' = stdin) to an image."""
    from .imageio import encode_image, format_for_path, format_supports_alpha, read_input
    from .output import write_output

    output = output or _default_output(source, ".png")
    fmt = format_for_path(output)
    _check_terminal(output)
    data = read_input(source, limit=api.max_file_bytes(max_pixels), kind="an .ir2i file")
    look = api.summary(data, max_pixels=max_pixels, salvage=salvage)
    stages = min(max_stages or look.stages_present, look.stages_present)
    settings = {
        "max_stages": max_stages,
        "model": model_path,
        "device": device,
        "threads": threads,
        "salvage": salvage,
        "max_pixels": max_pixels,
        "postfilter": not no_filter,
    }
    if progressive:  # every stage count in one picture: ir2icodec/preview.py
        from .preview import progressive_file, work

        with _progress_bar("decoding", work(look.n_blocks, stages), quiet) as progress:
            picture, notes = progressive_file(data, progressive, fmt, progress=progress, **settings)
        for note in notes:
            _warn(note)
        write_output(output, picture, force=force, protect=[source])
        return
    with _progress_bar("decoding", look.n_blocks * stages, quiet) as progress:
        decoded = api.decode_with_warnings(data, progress=progress, **settings)
    for note in decoded.warnings:
        _warn(note)
    if decoded.alpha is not None and not format_supports_alpha(fmt):
        _warn(f"{fmt.upper()} has no alpha channel: the file's alpha is not written")
    write_output(
        output,
        encode_image(decoded.rgb, decoded.alpha, fmt, decoded.metadata),
        force=force,
        protect=[source],
    )


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .ir2i file ('-' = stdout).")
@click.option(
    "-s", "--stages", type=int, required=True, help="Stages to keep (2..stages in the file)."
)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--model",
    "model_path",
    default=None,
    metavar="DIR|NAME",
    help="The model that made the file (format version 3 is re-coded with its bit tables; "
    "default: the shipped model the file names).",
)
@_max_pixels_option
def truncate(
    source: str,
    output: str | None,
    stages: int,
    force: bool,
    model_path: str | None,
    max_pixels: int,
) -> None:
    """Keep the first stages of an .ir2i file: a smaller, complete file, no re-encoding."""
    from .imageio import read_input
    from .output import write_output

    output = output or _default_output(source, f".s{stages}.ir2i")
    _check_terminal(output)
    data = read_input(source, limit=api.max_file_bytes(max_pixels), kind="an .ir2i file")
    kept = api.truncate(data, stages, max_pixels=max_pixels, model=model_path)
    write_output(output, kept, force=force, protect=[source])


def parse_size(text: str) -> int:
    """A byte count with an optional k (x1000) or M (x1000000) suffix."""
    factor = {"k": 1000, "K": 1000, "M": 1000**2}.get(text[-1:], 1)
    digits = text[:-1] if factor > 1 else text
    try:
        value = float(digits) * factor
    except ValueError:
        raise UsageError(
            f"--size must be a byte count like 20000, 20k or 2M, got {text!r}"
        ) from None
    if not 1 <= value < 2**63:
        raise UsageError(f"--size must be at least 1 byte, got {text!r}")
    return int(value)


@cli.command()
@click.argument("source", metavar="INPUT")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_max_pixels_option
def info(source: str, as_json: bool, max_pixels: int) -> None:
    """Show an .ir2i file's header, model, per-stage sizes and stage-count histogram."""
    from .imageio import read_input

    data = read_input(source, limit=api.max_file_bytes(max_pixels), kind="an .ir2i file")
    report = api.info(data, max_pixels=max_pixels)
    prefixes = report["progressive"]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{source}: ir2i, {report['width']} x {report['height']}, "
        f"{report['stages']} stages ({report['stages_present']} present), "
        f"{len(data)} bytes, {report['bpp']} bpp"
    )
    click.echo(f"model: {report['model']} ({report['model_digest']})")
    blocks_y, blocks_x = report["blocks"]
    click.echo(
        f"blocks: {blocks_y} x {blocks_x} of {report['block_size']}px, "
        f"{report['bits_per_stage']} bits per block per stage, band of "
        f"{report['band_rows']} rows"
    )
    click.echo(f"format version {report['format_version']}")
    if "metadata" in report:
        parts = {"icc": "colour profile", "exif": "EXIF", "xmp": "XMP"}
        click.echo(
            "metadata: " + ", ".join(f"{parts[k]} {n} bytes" for k, n in report["metadata"].items())
        )
    click.echo("progressive prefixes (file cut after each stage's chunk; that chunk's bytes):")
    before = None
    for p in prefixes:
        chunk = p["bytes"] - before if before is not None else p["bytes"]
        click.echo(
            f"  stages 1-{p['stages']}: {p['bytes']:>9} bytes  {p['bpp']:.4f} bpp  "
            f"(+{chunk}{' with the header' if before is None else ''})"
        )
        before = p["bytes"]
    if report["stage_histogram"] is None:
        click.echo(
            "blocks per stage count: not counted (the stage map is too large to decode for a look)"
        )
    else:
        click.echo("blocks per stage count:")
        for row in report["stage_histogram"]:
            click.echo(f"  {row['stages']} stages: {row['blocks']:>7} blocks")
    for w in report["warnings"]:
        _warn(w)


@cli.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
@click.pass_context
def train(ctx: click.Context) -> None:
    """Train a model (needs the [train] extra); see `ir2i train --help`."""
    _torch_command("ir2icodec.training.train", ctx.args)


@cli.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
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


def main() -> None:
    """The ``ir2i`` command. A codec command ends without the interpreter's teardown: once
    its output is written and closed, unloading numpy's and onnxruntime's modules and
    sessions took 35-80 ms of a 0.7 s ``ir2i decode`` (a one-off timing), work whose only
    result is memory the OS frees anyway. Commands that imported torch (training, export)
    or still have child processes end normally: those get their usual clean-up."""
    try:
        cli(prog_name="ir2i")
    except SystemExit as e:
        if _needs_teardown():
            raise
        _exit_without_teardown(e.code)
    if not _needs_teardown():
        _exit_without_teardown(0)


def _needs_teardown() -> bool:
    multiprocessing = sys.modules.get("multiprocessing")
    children = multiprocessing is not None and bool(multiprocessing.active_children())
    return children or "torch" in sys.modules


def _exit_without_teardown(code: object) -> NoReturn:
    """``sys.exit(code)``'s status and message, stdout and stderr flushed, then ``os._exit``
    (a flush that fails makes the status 120, as Python's own exit-time flush does)."""
    if code is None or isinstance(code, int):
        status = code or 0
    else:
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    main()
