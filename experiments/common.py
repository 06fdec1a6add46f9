"""Small helpers shared by the experiment commands."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import click
from tqdm import tqdm

from ir2icodec.bench.rd import find_images

T = TypeVar("T")


# ``-h`` as well as ``--help``, as the commands had under argparse.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def named_path(text: str) -> tuple[str, str]:
    """Parse ``NAME=PATH``; ValueError with a one-line reason."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"expected NAME=PATH, got {text!r}")
    return name, path


class NamedPath(click.ParamType):
    """Click type of a ``NAME=PATH`` option value: ``(name, path)``."""

    name = "NAME=PATH"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):  # already converted (a default, or a second pass)
            return value
        try:
            return named_path(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


NAMED_PATH = NamedPath()


def unique_names(pairs: Iterable[tuple[str, str]], what: str) -> dict[str, str]:
    """``[(name, path)]`` -> ``{name: path}``, refusing duplicate names (``what``: the option,
    e.g. ``--bundle``, named in the error)."""
    out: dict[str, str] = {}
    for name, path in pairs:
        if name in out:
            raise click.BadParameter(f"name {name!r} given twice", param_hint=f"'{what}'")
        out[name] = path
    return out


def images_in(data: Path, limit: int | None) -> tuple[list[Path], list[str]]:
    """Readable images of a folder, sorted by name (the rule ``ir2icodec.bench.rd`` uses)."""
    return find_images(data, limit)


def fmt(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "n/a" if value is not None else "—"
    return f"{value:.{digits}f}"


def map_images(
    images: Sequence[Path],
    local: Callable[[Path], T],
    in_worker: Callable[..., T],
    worker_args: tuple,
    jobs: int,
    desc: str,
    progress: bool | None = None,
) -> list[T]:
    """Results for every image, in input order: ``local(path)`` in this process when
    ``jobs`` is 1, else ``in_worker(path, *worker_args)`` in ``jobs`` processes (spawned, not
    forked: the parent may have run torch or onnxruntime threads, which a fork can hang)."""
    with tqdm(
        total=len(images), unit="img", desc=desc, disable=None if progress is None else not progress
    ) as bar:
        results: list[T] = []
        if jobs == 1:
            for path in images:
                results.append(local(path))
                bar.update(1)
            return results
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = [pool.submit(in_worker, p, *worker_args) for p in images]
            try:
                for f in futures:
                    results.append(f.result())
                    bar.update(1)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # on Ctrl-C/error, skip queued images
                raise
        return results
