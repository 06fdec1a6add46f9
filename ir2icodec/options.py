"""One check per option of the public API, run before any work: every door (the API, the
Pillow plugin, the CLI through them) refuses a bad value with the same ``UsageError``, whose
message names the option as the API spells it (``quality``); the CLI says its flag.

Types are checked as well as ranges: a string, a bool or a NaN where a number belongs is a
usage error, not a ``TypeError`` from somewhere inside numpy.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from .container import MAX_STAGES, MIN_STAGES, SIGNATURE
from .errors import UsageError

QUALITY_RANGE = (0.0, 100.0)
DEVICES = ("auto", "cpu", "cuda")
ALPHA_POLICIES = ("keep", "drop", "refuse")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def stage_count(value: Any, name: str = "stages", *, optional: bool = True) -> int | None:
    """A stage count in MIN_STAGES..MAX_STAGES (the model may allow fewer: checked later)."""
    if value is None and optional:
        return None
    if not _is_int(value) or not MIN_STAGES <= int(value) <= MAX_STAGES:
        raise UsageError(
            f"{name} must be a whole number of stages from {MIN_STAGES} to "
            f"{MAX_STAGES}, got {value!r}"
        )
    return int(value)


def quality(value: Any) -> float | None:
    if value is None:
        return None
    lo, hi = QUALITY_RANGE
    if not _is_real(value) or not lo <= float(value) <= hi:
        raise UsageError(f"quality must be a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def target_bpp(value: Any) -> float | None:
    if value is None:
        return None
    if not _is_real(value) or not float(value) > 0:
        raise UsageError(f"target_bpp must be a number above 0, got {value!r}")
    return float(value)


def max_pixels(value: Any) -> int:
    if not _is_int(value) or int(value) < 1:
        raise UsageError(f"max_pixels must be a positive whole number, got {value!r}")
    return int(value)


def device(value: Any) -> str:
    if value not in DEVICES:
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, got {value!r}")
    return value


def alpha(value: Any) -> str:
    if value not in ALPHA_POLICIES:
        raise UsageError(f"alpha must be one of {', '.join(ALPHA_POLICIES)}, got {value!r}")
    return value


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False, got {value!r}")
    return value


def file_data(value: Any) -> bytes | str:
    """.ir2i bytes, or a path (str or os.PathLike) as a str. A str that holds a file's
    contents (read in text mode) is refused with a hint instead of being taken for a path."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str) and (value[1:4] == SIGNATURE[1:4].decode() or "\x00" in value):
        raise UsageError(
            "got the file's contents as text: pass its bytes (open it with 'rb') or its path"
        )
    if isinstance(value, str | os.PathLike):
        try:
            return (
                os.fspath(value)
                if isinstance(os.fspath(value), str)
                else os.fsdecode(os.fspath(value))
            )
        except (TypeError, ValueError) as e:
            raise UsageError(f"cannot use {value!r} as a path ({e})") from None
    raise UsageError(f"cannot decode a {type(value).__name__}: pass bytes or a path")


def target_bytes(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or int(value) < 1:
        raise UsageError(f"target_bytes must be a whole number of bytes, at least 1, got {value!r}")
    return int(value)


def threads(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 1 <= int(value) <= 256:
        raise UsageError(f"threads must be a whole number from 1 to 256, got {value!r}")
    return int(value)


def strip(value: Any) -> str:
    from .metadata import STRIPS

    if value not in STRIPS:
        raise UsageError(f"strip must be one of {', '.join(STRIPS)}, got {value!r}")
    return value


def tune(value: Any) -> str | None:
    """None (no choice made: the model decides) or one of ``tuning.TUNES``."""
    from .tuning import TUNES

    if value is not None and value not in TUNES:
        raise UsageError(f"tune must be one of {', '.join(TUNES)}, got {value!r}")
    return value
