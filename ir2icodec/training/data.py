"""Training patches from any folder of photos.

JPEG training photos are downsampled by a random factor (antialiased) before cropping so the
networks learn photographs rather than JPEG blocking. A deterministic split by file name holds
photos out for validation and checkpoint selection (never Kodak).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..imageio import load_rgb  # noqa: F401 - also for the modules that import it from here
from .nets import BLOCK, CONTEXT

VALIDATION_SCALE = 0.65  # the middle of the training crops' downsampling range
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}


def list_images(roots: list[str]) -> list[Path]:
    files = sorted(
        p for r in roots for p in Path(r).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise FileNotFoundError(f"no images found under {', '.join(roots)}")
    return files


def is_held_out(path: Path, holdout_percent: float) -> bool:
    """Stable split: the same photo is held out on every machine and every run."""
    digest = hashlib.sha1(path.name.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10000 < holdout_percent * 100


def split_images(files: list[Path], holdout_percent: float) -> tuple[list[Path], list[Path]]:
    held = [f for f in files if is_held_out(f, holdout_percent)]
    train = [f for f in files if not is_held_out(f, holdout_percent)]
    return train, held


def rescale(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(CONTEXT, round(w * factor)), max(CONTEXT, round(h * factor)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def to_unit(patches: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-0.5, 0.5], the networks' pixel domain."""
    return patches.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - 0.5


@dataclass
class PatchSampler:
    """Draws 64x64 windows: the bottom-right 32x32 is the block, the rest its context."""

    files: list[Path]
    scale_range: tuple[float, float] = (0.5, 0.8)
    crops_per_image: int = 8
    edge_probability: float = 0.1  # blocks on the first row/column have no top/left context

    def __post_init__(self) -> None:
        self._cache: dict[int, np.ndarray] = {}

    def _image(self, i: int) -> np.ndarray:
        if i not in self._cache:  # decoding JPEGs dominates otherwise; photos fit in memory
            self._cache[i] = load_rgb(self.files[i])
        return self._cache[i]

    def preload(self) -> None:
        """Decode every photo now (a long run ends up with all of them cached; a benchmark
        that measures the steady state starts there)."""
        for i in range(len(self.files)):
            self._image(i)

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (blocks, contexts) as float32 NCHW: (B,3,32,32) and (B,3,64,64)."""
        windows = []
        while len(windows) < batch:
            img = rescale(
                self._image(int(rng.integers(len(self.files)))),
                float(rng.uniform(*self.scale_range)),
            )
            h, w = img.shape[:2]
            for _ in range(min(self.crops_per_image, batch - len(windows))):
                y, x = int(rng.integers(h - CONTEXT + 1)), int(rng.integers(w - CONTEXT + 1))
                win = img[y : y + CONTEXT, x : x + CONTEXT]
                windows.append(win[:, ::-1] if rng.random() < 0.5 else win)
        return make_training_pair(np.stack(windows), rng, self.edge_probability)


def make_training_pair(
    windows: np.ndarray, rng: np.random.Generator | None = None, edge_probability: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Split uint8 64x64 windows into target blocks and zero-masked contexts."""
    unit = to_unit(windows)
    blocks = unit[:, :, CONTEXT - BLOCK :, CONTEXT - BLOCK :].copy()
    contexts = unit.copy()
    contexts[:, :, CONTEXT - BLOCK :, CONTEXT - BLOCK :] = 0.0
    if rng is not None and edge_probability > 0:
        n = len(windows)
        contexts[rng.random(n) < edge_probability, :, : CONTEXT - BLOCK, :] = 0.0
        contexts[rng.random(n) < edge_probability, :, :, : CONTEXT - BLOCK] = 0.0
    return blocks, contexts


def validation_windows(files: list[Path], per_image: int = 4, seed: int = 1234) -> np.ndarray:
    """A fixed set of uint8 windows from held-out photos (same every run)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        img = rescale(load_rgb(f), VALIDATION_SCALE)
        h, w = img.shape[:2]
        for _ in range(per_image):
            y, x = int(rng.integers(h - CONTEXT + 1)), int(rng.integers(w - CONTEXT + 1))
            out.append(img[y : y + CONTEXT, x : x + CONTEXT])
    return np.stack(out)
