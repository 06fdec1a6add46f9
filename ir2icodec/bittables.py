"""A model's learned bit tables (format version 3): the starting counts of the entropy coder's
contexts, counted on training photos' codes, stored in the model bundle.

Version 2's coder starts every chunk with empty counts, so a small picture's chunks end before
they have learned much (``../shared/notes/bit-model-headroom.md``). Version 3 starts each
stage's fine contexts (channel, W, N, C, P) from counts that the bundle carries: what that
stage's codes looked like on photos the model was trained on, worth at most ``weight``
observations each, so a chunk adapts from there. Everything is integers (``entropy.BitTables``),
so every machine decodes what any other encoded.

The file is ``bit_tables.npy``: int32 (2, stages, channels * 81), zeros then ones, in units of
1/``entropy.COUNT_SCALE`` of an observation. The manifest's ``bit_tables`` entry names it with
its SHA-256, outside the bundle digest (a version-3 file's model digest covers both,
``manifest.tables_digest``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .entropy import _COARSE, COUNT_LIMIT, COUNT_SCALE, OUTSIDE, BitTables
from .errors import ModelError

TABLES_FILE = "bit_tables.npy"
# A context's learned counts are worth at most this many observations: chosen on the
# held-out photos (docs/rate-aware.md, lever 2); more trusts the training photos too much.
DEFAULT_WEIGHT = 16
MAX_COUNT = COUNT_LIMIT * COUNT_SCALE  # what the coder itself never exceeds


def fine_contexts(bits: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """The coder's fine context of every bit of (blocks, C, H, W) 0/1 ``bits``: channel * 81 +
    ((W * 3 + N) * 3 + C) * 3 + P, as ``entropy`` numbers them (``previous``: the same
    blocks' bits of the stage before, None for stage 1)."""
    b = np.asarray(bits, np.int64)
    west = np.full_like(b, OUTSIDE)
    west[..., :, 1:] = b[..., :, :-1]
    north = np.full_like(b, OUTSIDE)
    north[..., 1:, :] = b[..., :-1, :]
    channel_before = np.full_like(b, OUTSIDE)
    channel_before[:, 1:] = b[:, :-1]
    prev = np.full_like(b, OUTSIDE) if previous is None else np.asarray(previous, np.int64)
    coarse = ((west * 3 + north) * 3 + channel_before) * 3 + prev
    return np.arange(b.shape[1]).reshape(1, -1, 1, 1) * _COARSE + coarse


def count_contexts(
    pictures: Iterable[list[np.ndarray]], code_shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Ones and totals per (stage, fine context) over pictures' codes, each picture a list of
    stages' (blocks, bits) 0/1 arrays: (stages, channels * 81) float64 each."""
    contexts = code_shape[0] * _COARSE
    ones: np.ndarray | None = None
    totals: np.ndarray | None = None
    for stage_bits in pictures:
        if ones is None or totals is None:
            ones = np.zeros((len(stage_bits), contexts))
            totals = np.zeros((len(stage_bits), contexts))
        previous = None
        for s, flat in enumerate(stage_bits):
            bits = np.asarray(flat, np.int64).reshape(-1, *code_shape)
            ctx = fine_contexts(bits, previous).ravel()
            ones[s] += np.bincount(ctx, weights=bits.ravel(), minlength=contexts)
            totals[s] += np.bincount(ctx, minlength=contexts)
            previous = bits
    if ones is None or totals is None:
        raise ValueError("no pictures to count")
    return ones, totals


def tables_from_counts(
    ones: np.ndarray, totals: np.ndarray, weight: int = DEFAULT_WEIGHT
) -> BitTables:
    """Starting counts from counted statistics: each context's smoothed frequency, worth
    min(its observations, ``weight``) observations (a context rarely seen in training starts
    almost empty, as in version 2)."""
    p_one = (ones + 0.5) / (totals + 1.0)
    mass = COUNT_SCALE * np.minimum(totals, weight)
    return BitTables(
        zeros=np.rint(mass * (1 - p_one)).astype(np.int64),
        ones=np.rint(mass * p_one).astype(np.int64),
    )


def tables_bytes(tables: BitTables) -> bytes:
    """The ``bit_tables.npy`` file of ``tables`` (np.save's bytes are deterministic)."""
    buffer = io.BytesIO()
    np.save(buffer, np.stack([tables.zeros, tables.ones]).astype("<i4"), allow_pickle=False)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_tables(
    path: Path, expected_sha256: str, stages: int, channels: int, model: str
) -> BitTables:
    """The bundle's tables, checked: its hash, shape and value range (a damaged or replaced
    file is a ``ModelError``, never a coder that disagrees with the encoder's)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"model {model}: cannot read {path.name}: {e.strerror}") from e
    if sha256(data) != expected_sha256:
        raise ModelError(
            f"model {model}: {path.name} does not match its manifest (damaged or replaced file)"
        )
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise ModelError(f"model {model}: {path.name} is not a table file ({e})") from e
    shape = (2, stages, channels * _COARSE)
    if array.shape != shape or array.dtype != np.dtype("<i4"):
        raise ModelError(
            f"model {model}: {path.name} holds {array.dtype} {array.shape}, expected int32 {shape}"
        )
    if array.min() < 0 or array.max() > MAX_COUNT:
        raise ModelError(f"model {model}: {path.name} has counts outside 0..{MAX_COUNT}")
    counts = array.astype(np.int64)
    return BitTables(zeros=counts[0], ones=counts[1])


def valid_spec(spec: object) -> bool:
    """None (no tables: the model writes version 2), or the manifest's ``bit_tables`` entry:
    the file name and its SHA-256."""
    if spec is None:
        return True
    if not isinstance(spec, dict):
        return False
    name, digest = spec.get("file"), spec.get("sha256")
    return (
        name == TABLES_FILE
        and isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    )
