"""Running an exported model bundle with onnxruntime (no torch at inference).

``OnnxModel`` wraps the bundle's graphs: ``inpaint``, ``encode_stage`` and ``decode_stage``
on numpy batches. Sessions are created on first use, so decoding K stages loads K decoders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort

from . import bittables
from .container import Header
from .entropy import BitTables
from .errors import ModelError, UsageError
from .manifest import DIGEST_BYTES, MANIFEST_NAME, bundle_digest, tables_digest
from .tuning import DEFAULT_TUNE, SHIPPED_MODELS, Tune, manifest_tune

DEFAULT_MODEL = SHIPPED_MODELS[DEFAULT_TUNE]
DEVICES = ("auto", "cpu", "cuda")

State = list[np.ndarray]
Item = TypeVar("Item")
Result = TypeVar("Result")


def models_root() -> Path:
    """Where shipped bundles live: inside the installed package, else the source checkout."""
    installed = Path(str(resources.files("ir2icodec"))) / "models"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "models"


def resolve_model_dir(model: str | None) -> Path:
    """A bundle directory from a path, a shipped model's name, or None (the default)."""
    name = model or DEFAULT_MODEL
    path = Path(name)
    if (path / MANIFEST_NAME).is_file():
        return path
    shipped = models_root() / name
    if (shipped / MANIFEST_NAME).is_file():
        return shipped
    raise ModelError(f"model {name!r} not found (neither a bundle directory nor a shipped model)")


def model_for_file(model: str | None, file_model_name: str) -> str | None:
    """The model to decode a file with: the one asked for, else the shipped model the file
    names (so files made by an earlier default model keep decoding after the default
    changes), else None (the default, which ``codec.check_model`` then checks)."""
    if model is not None:
        return model
    if (
        file_model_name
        and "/" not in file_model_name
        and "\\" not in file_model_name
        and file_model_name not in (".", "..")
        and (models_root() / file_model_name / MANIFEST_NAME).is_file()
    ):
        return file_model_name
    return None


def providers_for(device: str) -> list[str]:
    available = ort.get_available_providers()
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise UsageError(
            "--device cuda: this onnxruntime has no CUDA support (install onnxruntime-gpu)"
        )
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


# Blocks per worker below which a batch is not split. 1: since a worker runs every network
# of its part in one dispatch (inpainting ~0.8 ms a block), even one block each pays; 768x512
# at 8 stages decoded in 0.506 s against 0.545 s with 4 (interleaved, 5 rounds, one-off).
MIN_SPLIT = 1


@dataclass
class OnnxModel:
    """A loaded bundle.

    On CPU a batch is split across ``threads`` single-threaded runs of the same session
    (onnxruntime sessions may run concurrently): the networks' convolutions are too small for
    onnxruntime's intra-op threading to pay off (one thread is faster than two), while
    independent blocks parallelise perfectly. Results do not depend on the split.
    """

    directory: Path
    manifest: dict
    providers: list[str]
    threads: int | None = None
    _sessions: dict[str, ort.InferenceSession] = field(default_factory=dict, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _tables: BitTables | None = field(default=None, repr=False)

    @property
    def workers(self) -> int:
        if self.providers[0] != "CPUExecutionProvider":
            return 1
        return max(1, self.threads or os.cpu_count() or 1)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.manifest["digest"])

    @property
    def bit_tables(self) -> BitTables | None:
        """The learned starting counts of the entropy coder (format version 3), or None for
        a model without them (it writes version 2). Read and checked on first use."""
        spec = self.manifest.get("bit_tables")
        if spec is None:
            return None
        if self._tables is None:
            self._tables = bittables.load_tables(
                self.directory / spec["file"],
                spec["sha256"],
                self.stages,
                self.code_shape[0],
                self.name,
            )
        return self._tables

    @property
    def format_version(self) -> int:
        """The format version this model writes: 3 with bit tables, else 2."""
        return 2 if self.manifest.get("bit_tables") is None else 3

    def file_digest(self, version: int) -> bytes:
        """The model digest a file of format ``version`` stores: the weights' for versions 1
        and 2, the weights' and bit tables' together for version 3 (whose codes need both)."""
        if version < 3:
            return self.digest
        spec = self.manifest.get("bit_tables")
        if spec is None:
            raise ModelError(f"model {self.name} has no bit tables (format version 3)")
        return bytes.fromhex(tables_digest(self.manifest["digest"], spec["sha256"]))

    def made(self, header: Header, version: int) -> bool:
        """Whether this model (with its tables, for version 3) made a file with ``header``."""
        if version >= 3 and self.format_version < 3:
            return False
        return header.model_digest == self.file_digest(version)

    @property
    def stages(self) -> int:
        return int(self.manifest["stages"])

    @property
    def block_size(self) -> int:
        return int(self.manifest["block_size"])

    @property
    def context_size(self) -> int:
        return int(self.manifest["context_size"])

    @property
    def bits_per_stage(self) -> int:
        return int(self.manifest["bits_per_stage"])

    @property
    def code_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["code_shape"])

    @property
    def has_inpainting(self) -> bool:
        return bool(self.manifest["inpainting"])

    @property
    def tune(self) -> Tune:
        """The metric the model is tuned for (its rate control's distortion follows)."""
        return manifest_tune(self.manifest)

    @property
    def postfilter_spec(self) -> dict | None:
        """The manifest's ``postfilter`` entry (file, sha256, halo, ...), or None."""
        return self.manifest.get("postfilter")

    def _session(self, fname: str) -> ort.InferenceSession:
        if fname not in self._sessions:
            path = self.directory / fname
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ModelError(f"model {self.name}: cannot read {fname}: {e.strerror}") from e
            # The post-filter is outside the bundle digest (it never changes a bitstream):
            # its own entry carries its hash.
            spec = self.postfilter_spec
            expected = (
                spec["sha256"]
                if spec and fname == spec["file"]
                else self.manifest["files"].get(fname)
            )
            if hashlib.sha256(data).hexdigest() != expected:
                raise ModelError(
                    f"model {self.name}: {fname} does not match its manifest "
                    "(damaged or replaced file)"
                )
            opts = ort.SessionOptions()
            # fatal only: every error reaches the user as our one line, not as a log line too
            opts.log_severity_level = 4
            opts.use_deterministic_compute = True
            # Each session's arena would keep its peak (a band-wide batch) for the life of the
            # model; with 17 sessions that was most of a large image's memory.
            opts.enable_cpu_mem_arena = False
            opts.intra_op_num_threads = 1 if self.workers > 1 else (self.threads or 0)
            opts.inter_op_num_threads = 1
            try:
                self._sessions[fname] = ort.InferenceSession(data, opts, providers=self.providers)
            except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
                if _out_of_memory(e):
                    raise MemoryError(f"loading {fname}") from e
                raise ModelError(f"model {self.name}: cannot load {fname}: {e}") from e
        return self._sessions[fname]

    def worker_parts(self, work: np.ndarray, max_items: int | None = None) -> list[slice]:
        """Contiguous parts of a batch, one per CPU worker, of about equal total ``work``
        (per item); one part when the batch is too small to split. With ``max_items``, at
        least one part per ``max_items`` items (for the workers to take in turn), so that
        parts hold about that many at most (fewer or more as the work per item varies)."""
        n = len(work)
        parts = min(self.workers, n // MIN_SPLIT)
        if max_items is not None:
            parts = max(parts, -(-n // max_items))
        if parts <= 1:
            return [slice(0, n)]
        total = np.cumsum(work, dtype=np.float64)
        cuts = np.searchsorted(total, total[-1] * np.arange(1, parts) / parts, side="right")
        bounds = [0, *np.clip(cuts, 1, n - 1).tolist(), n]
        return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]

    def _run(self, fname: str, feeds: dict[str, np.ndarray], split: bool) -> list[np.ndarray]:
        """Run a graph on a batch; with ``split``, across the CPU workers when the batch is
        large enough (callers that already run on a worker pass False)."""
        sess = self._session(fname)
        n = len(next(iter(feeds.values())))
        parts = self.worker_parts(np.ones(n)) if split else [slice(0, n)]
        if len(parts) == 1:
            return _run_session(sess, feeds)
        chunks = [{k: v[p] for k, v in feeds.items()} for p in parts]
        results = self.map_parallel(lambda f: _run_session(sess, f), chunks)
        return [np.concatenate(outs) for outs in zip(*results)]

    def inpaint(self, contexts: np.ndarray, split: bool = True) -> np.ndarray:
        """(N, 3, 64, 64) contexts -> (N, 3, 32, 32) inpainting estimates."""
        if not self.has_inpainting:
            n, b = len(contexts), self.block_size
            return np.zeros((n, 3, b, b), np.float32)
        return self._run("inpaint.onnx", {"context": contexts}, split)[0]

    def encode_stage(
        self, s: int, residual: np.ndarray, state: State | None, split: bool = True
    ) -> tuple[np.ndarray, State]:
        """Stage s (1-based): residual -> code in {-1, +1} of shape (N, *code_shape)."""
        fname = f"stage{s}_encoder.onnx"
        feeds = {"residual": residual, **_state_feeds(self._session(fname), state)}
        code, *next_state = self._run(fname, feeds, split)
        return code, next_state

    def decode_stage(
        self,
        s: int,
        code: np.ndarray,
        inpainting: np.ndarray,
        state: State | None,
        split: bool = True,
    ) -> tuple[np.ndarray, State]:
        """Stage s (1-based): code -> reconstruction (pixels in [-0.5, 0.5]) and next state."""
        fname = f"stage{s}_decoder.onnx"
        feeds = {
            "code": code,
            "inpainting": inpainting,
            **_state_feeds(self._session(fname), state),
        }
        recon, *next_state = self._run(fname, feeds, split)
        return recon, next_state

    def postfilter(self, image: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """(1, 3, h, w) decoded pixels in [-0.5, 0.5] and their guide -> filtered pixels."""
        spec = self.postfilter_spec
        if spec is None:
            raise ModelError(f"model {self.name} has no post-filter")
        return _run_session(self._session(spec["file"]), {"image": image, "guide": guide})[0]

    def map_parallel(self, fn: Callable[[Item], Result], items: list[Item]) -> list[Result]:
        """``fn`` over ``items`` on the CPU workers (one session run each)."""
        if self.workers <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ir2i")
        return list(self._pool.map(fn, items))


def _state_feeds(sess: ort.InferenceSession, state: State | None) -> dict[str, np.ndarray]:
    names = [i.name for i in sess.get_inputs() if i.name.startswith("state_")]
    if not names:
        return {}
    if state is None or len(state) != len(names):
        raise ModelError("model graphs disagree on the state passed between stages")
    return {f"state_{i}": s for i, s in enumerate(state)}


def _valid_postfilter(spec: object) -> bool:
    """None (no filter), or a file name in the bundle, its SHA-256 and an even halo."""
    if spec is None:
        return True
    if not isinstance(spec, dict):
        return False
    name, digest, halo = spec.get("file"), spec.get("sha256"), spec.get("halo")
    return (
        isinstance(name, str)
        and name.endswith(".onnx")
        and "/" not in name
        and "\\" not in name
        and isinstance(digest, str)
        and len(digest) == 64
        and isinstance(halo, int)
        and halo >= 0
        and halo % 2 == 0
    )


def _out_of_memory(error: Exception) -> bool:
    """Whether an onnxruntime error is an allocation that failed (its C++ ``bad_alloc`` or
    its arena's message), which is the machine's limit, not a broken model."""
    text = str(error)
    return "bad_alloc" in text or "Failed to allocate memory" in text


def _run_session(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One session run; an allocation that failed inside onnxruntime is a ``MemoryError``
    like numpy's, so that callers report it as the machine's limit."""
    try:
        return session.run(None, feeds)
    except Exception as e:  # onnxruntime's own RuntimeException/Fail types
        if _out_of_memory(e):
            raise MemoryError("onnxruntime could not allocate") from e
        raise


def load_model(
    path: str | None = None, device: str = "auto", threads: int | None = None
) -> OnnxModel:
    """Load a bundle: a directory, a shipped model's name, or None for the default model."""
    directory = resolve_model_dir(path)
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
        expected = bundle_digest(manifest["name"], manifest["files"])
        ok = manifest.get("format") == "ir2i-model" and manifest["digest"] == expected
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{directory}: unreadable model manifest ({e})") from e
    if not ok or len(bytes.fromhex(manifest["digest"])) != DIGEST_BYTES:
        raise ModelError(f"{directory}: model manifest is inconsistent")
    if not _valid_postfilter(manifest.get("postfilter")):
        raise ModelError(f"{directory}: the manifest's postfilter entry is malformed")
    if not bittables.valid_spec(manifest.get("bit_tables")):
        raise ModelError(f"{directory}: the manifest's bit_tables entry is malformed")
    manifest_tune(manifest)  # an unknown tune is refused at load, not at the first encode
    return OnnxModel(directory, manifest, providers_for(device), threads)
