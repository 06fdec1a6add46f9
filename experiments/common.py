"""Small helpers shared by the experiment commands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmarks.rd import find_images


def named_path(text: str) -> tuple[str, str]:
    """Parse ``NAME=PATH`` (argparse ``type=``)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def unique_names(pairs: list[tuple[str, str]], what: str) -> dict[str, str]:
    """``[(name, path)]`` -> ``{name: path}``, refusing duplicate names."""
    out: dict[str, str] = {}
    for name, path in pairs:
        if name in out:
            raise argparse.ArgumentTypeError(f"{what} name {name!r} given twice")
        out[name] = path
    return out


def images_in(data: Path, limit: int | None) -> tuple[list[Path], list[str]]:
    """Readable images of a folder, sorted by name (the rule ``benchmarks.rd`` uses)."""
    return find_images(data, limit)


def fmt(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "n/a" if value is not None else "—"
    return f"{value:.{digits}f}"
