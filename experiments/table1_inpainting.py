"""Paper Table 1: partial-context inpainting, average SSIM of each method.

Run ``python -m experiments.table1_inpainting --data DIR --out DIR [--network NAME=CKPT]...``.

Protocol (paper Sec. 2.2 and 3.2): every non-overlapping 32x32 block of each image gets a
64x64 context whose top-left, top and left 32x32 quarters are the TRUE pixels and whose
bottom-right quarter (the block) is zeroed; each method predicts the block from that context
alone, and SSIM is measured between the predicted block and the original one.

Decisions (the paper does not spell them out):

* Blocks of the first block row and column are skipped: they lack the top / left
  neighbours, so "partial context" would mean a different, easier-to-fail problem (the
  codec feeds zeros there). Partial blocks at the right/bottom edge are skipped too.
  On a 768x512 Kodak image that is 23 x 15 = 345 blocks.
* SSIM is ``ir2icodec.metrics.ssim`` on the 32x32 RGB block (pytorch-msssim convention:
  11x11 Gaussian window with *valid* filtering, i.e. a 22x22 SSIM map, per channel, then
  averaged). The table reports the mean over all blocks of all images (every Kodak image
  has the same number of blocks, so this is also the mean of per-image means).
* Every method returns 8-bit pixels (networks are rounded and clipped like the codec does).
* PDE-based: OpenCV ``cv2.inpaint(..., cv2.INPAINT_NS)``: Bertalmio, Bertozzi & Sapiro's
  2001 Navier-Stokes formulation of the PDE inpainting of the paper's [3] (Bertalmio et al.
  2000, which OpenCV does not ship), on the 64x64 context with the block as the mask, radius
  ``PDE_RADIUS``; like every method it only sees the partial context (the block touches the
  context's bottom and right border, so information flows in from the top and left only).
* Exemplar-based: Criminisi et al. 2004, ``experiments.criminisi`` (9x9 patches, sources are
  the fully known patches of the same 64x64 context).
* Networks: the ``inpaint`` module of a training checkpoint (``--network NAME=CKPT``), fed the
  context in the networks' pixel domain with the block at 0 (mid-grey), as in training.

Outputs in ``--out``: ``table1.md`` (ours beside the paper's values), ``table1.csv`` (one
row per method) and ``table1_blocks.csv`` (one row per block, one SSIM column per method).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from ir2icodec import blocks as blk
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import ssim

from .common import CONTEXT_SETTINGS, NAMED_PATH, fmt, images_in, map_images, unique_names
from .criminisi import PATCH_SIZE, inpaint_criminisi

BLOCK = 32  # the networks' block and context sizes (ir2icodec.training.nets BLOCK/CONTEXT)
CONTEXT = 64
PDE_RADIUS = 3  # OpenCV's inpaintRadius: neighbourhood of each boundary pixel (its usual value)
CLASSICAL = ("pde", "exemplar")
CLASSICAL_LABELS = {
    "pde": "PDE-based [3]: Navier-Stokes (Bertalmio et al. 2001), OpenCV INPAINT_NS",
    "exemplar": f"Exemplar-based [6]: Criminisi et al., {PATCH_SIZE}x{PATCH_SIZE} patches",
}
# Table 1 of the paper (average SSIM on Kodak).
PAPER_SSIM = {"pde": 0.4574, "exemplar": 0.4611, "vanilla": 0.4545, "multiscale": 0.5165}
NETWORK_BATCH = 256

Inpainter = Callable[[np.ndarray], np.ndarray]  # (N,64,64,3) uint8 -> (N,32,32,3) uint8


@dataclass(frozen=True)
class Method:
    """A method of the table: classical (``checkpoint`` None) or a network checkpoint."""

    name: str
    checkpoint: str | None = None

    @property
    def paper(self) -> float | None:
        """The paper's value for this row: classical methods by name; networks whose name
        starts with ``vanilla`` or ``multiscale`` / ``multi-scale`` get those columns."""
        if self.checkpoint is None:
            return PAPER_SSIM[self.name]
        key = self.name.lower().replace("multi-scale", "multiscale")
        return next(
            (
                v
                for k, v in PAPER_SSIM.items()
                if k in ("vanilla", "multiscale") and key.startswith(k)
            ),
            None,
        )


def block_grid(height: int, width: int) -> np.ndarray:
    """(row, col) of every full block with top, left and top-left neighbours, raster order."""
    rows, cols = height // BLOCK, width // BLOCK
    return np.array(
        [(r, c) for r in range(1, rows) for c in range(1, cols)], dtype=np.int64
    ).reshape(-1, 2)


def block_mask() -> np.ndarray:
    """(64, 64) bool, True on the block to inpaint (the bottom-right quarter)."""
    mask = np.zeros((CONTEXT, CONTEXT), bool)
    mask[CONTEXT - BLOCK :, CONTEXT - BLOCK :] = True
    return mask


def partial_contexts(rgb: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """(N, 64, 64, 3) uint8 windows ending at each block, the block itself zeroed so that no
    method can see it."""
    out = np.empty((len(coords), CONTEXT, CONTEXT, 3), np.uint8)
    for k, (r, c) in enumerate(coords):
        y, x = (r + 1) * BLOCK - CONTEXT, (c + 1) * BLOCK - CONTEXT
        out[k] = rgb[y : y + CONTEXT, x : x + CONTEXT]
    out[:, block_mask()] = 0
    return out


def pde_inpaint(contexts: np.ndarray) -> np.ndarray:
    import cv2  # opencv-python-headless; imported here so the rest runs without it

    mask = block_mask().astype(np.uint8) * 255
    return np.stack(
        [
            cv2.inpaint(np.ascontiguousarray(ctx), mask, PDE_RADIUS, cv2.INPAINT_NS)[
                CONTEXT - BLOCK :, CONTEXT - BLOCK :
            ]
            for ctx in contexts
        ]
    )


def exemplar_inpaint(contexts: np.ndarray) -> np.ndarray:
    mask = block_mask()
    return np.stack(
        [inpaint_criminisi(ctx, mask)[CONTEXT - BLOCK :, CONTEXT - BLOCK :] for ctx in contexts]
    )


class NetworkInpainter:
    """The inpainting network of a training checkpoint, on uint8 contexts."""

    def __init__(self, checkpoint: str):
        from ir2icodec.training.export import load_checkpoint  # torch: only when needed
        from ir2icodec.training.nets import BLOCK as NET_BLOCK
        from ir2icodec.training.nets import CONTEXT as NET_CONTEXT

        assert (NET_BLOCK, NET_CONTEXT) == (BLOCK, CONTEXT)
        coder = load_checkpoint(checkpoint)
        if coder.inpaint is None:
            raise ValueError(
                f"{checkpoint}: this model has no inpainting network "
                f"(inpainting={coder.cfg.inpainting!r})"
            )
        self.net = coder.inpaint.eval()
        self.kind = coder.cfg.inpaint.kind
        self.parameters = sum(p.numel() for p in self.net.parameters())

    def __call__(self, contexts: np.ndarray) -> np.ndarray:
        import torch

        unit = blk.to_unit(contexts)  # (N, 3, 64, 64) in [-0.5, 0.5]
        unit[:, :, CONTEXT - BLOCK :, CONTEXT - BLOCK :] = 0.0  # mid-grey, as in training
        outs = []
        with torch.no_grad():
            for i in range(0, len(unit), NETWORK_BATCH):
                outs.append(self.net(torch.from_numpy(unit[i : i + NETWORK_BATCH])).numpy())
        return (
            blk.to_uint8(np.concatenate(outs)) if outs else np.zeros((0, BLOCK, BLOCK, 3), np.uint8)
        )


def make_inpainter(method: Method) -> Inpainter:
    if method.checkpoint is not None:
        return NetworkInpainter(method.checkpoint)
    return {"pde": pde_inpaint, "exemplar": exemplar_inpaint}[method.name]


@dataclass(frozen=True)
class ImageBlocks:
    """Per-block SSIM of every method on one image."""

    image: str
    coords: np.ndarray  # (N, 2) block row, column
    ssim: dict[str, np.ndarray]  # method name -> (N,)


def evaluate_image(
    path: Path, methods: Sequence[Method], inpainters: dict[str, Inpainter]
) -> ImageBlocks:
    rgb = load_rgb(path)
    coords = block_grid(*rgb.shape[:2])
    contexts = partial_contexts(rgb, coords)
    originals = blk.extract_blocks(rgb, coords, BLOCK)
    if len(coords) == 0:  # smaller than one context: nothing to inpaint
        return ImageBlocks(path.name, coords, {m.name: np.zeros(0) for m in methods})
    scores = {}
    for m in methods:
        predicted = inpainters[m.name](contexts)
        scores[m.name] = np.array([ssim(p, o) for p, o in zip(predicted, originals)])
    return ImageBlocks(path.name, coords, scores)


def _evaluate_in_worker(path: Path, methods: Sequence[Method]) -> ImageBlocks:
    # Each worker builds its own inpainters (torch modules are not shared across processes)
    # and runs single-threaded: --jobs is the only source of parallelism.
    import torch

    torch.set_num_threads(1)
    return evaluate_image(path, methods, {m.name: make_inpainter(m) for m in methods})


def run(
    images: Sequence[Path], methods: Sequence[Method], jobs: int = 1, progress: bool | None = None
) -> list[ImageBlocks]:
    """Evaluate every image (in parallel processes when ``jobs`` > 1), in input order."""
    inpainters = {m.name: make_inpainter(m) for m in methods} if jobs == 1 else {}
    return map_images(
        images,
        lambda p: evaluate_image(p, methods, inpainters),
        _evaluate_in_worker,
        (methods,),
        jobs,
        "table1",
        progress,
    )


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class Summary:
    method: Method
    label: str
    mean: float
    sem: float  # standard error over blocks (blocks are not independent: indicative only)
    blocks: int


def summarize(
    results: Sequence[ImageBlocks], methods: Sequence[Method], labels: dict[str, str]
) -> list[Summary]:
    out = []
    for m in methods:
        values = np.concatenate([r.ssim[m.name] for r in results]) if results else np.array([])
        n = values.size
        mean = float(values.mean()) if n else math.nan
        sem = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        out.append(Summary(m, labels.get(m.name, m.name), mean, sem, n))
    return out


def write_block_csv(results: Sequence[ImageBlocks], methods: Sequence[Method], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "block_row", "block_col", *(m.name for m in methods)])
        for r in results:
            for k, (row, col) in enumerate(r.coords):
                writer.writerow(
                    [r.image, int(row), int(col), *(f"{r.ssim[m.name][k]:.6f}" for m in methods)]
                )


def write_summary_csv(summaries: Sequence[Summary], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["method", "label", "checkpoint", "mean_ssim", "sem", "blocks", "paper_ssim"]
        )
        for s in summaries:
            paper = s.method.paper
            writer.writerow(
                [
                    s.method.name,
                    s.label,
                    s.method.checkpoint or "",
                    f"{s.mean:.6f}",
                    f"{s.sem:.6f}",
                    s.blocks,
                    "" if paper is None else f"{paper:.4f}",
                ]
            )


def table_markdown(summaries: Sequence[Summary], n_images: int, data: str) -> str:
    blocks = summaries[0].blocks if summaries else 0
    lines = [
        "# Table 1: partial-context inpainting (average SSIM)",
        "",
        f"{n_images} images from `{data}`, {blocks} blocks of {BLOCK}x{BLOCK}: every full "
        "block with top, left and top-left neighbours (first block row and column skipped). "
        f"Context {CONTEXT}x{CONTEXT}: true pixels above and to the left, the block zeroed. "
        "SSIM: `ir2icodec.metrics.ssim` on each 8-bit 32x32 RGB block against the original "
        "(11x11 Gaussian window, valid filtering: a 22x22 map), averaged over all blocks. "
        "± is the standard error over blocks (indicative: blocks of an image are correlated). "
        "Paper: Kodak, SSIM implementation not stated.",
        "",
        "| method | SSIM (ours) | ± | SSIM (paper) |",
        "|---|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.label} | {fmt(s.mean, 4)} | {fmt(s.sem, 4)} | {fmt(s.method.paper, 4)} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


@click.command(
    context_settings=CONTEXT_SETTINGS,
    help="Paper Table 1: partial-context inpainting SSIM of PDE, exemplar and network inpainting.",
)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="folder of images")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output folder")
@click.option(
    "--network",
    type=NAMED_PATH,
    multiple=True,
    metavar="NAME=CKPT",
    help="a training checkpoint whose inpainting network to evaluate "
    "(repeatable); names starting with 'vanilla' or 'multiscale' "
    "are shown beside the paper's values for those networks",
)
@click.option(
    "--methods",
    default=",".join(CLASSICAL),
    help="comma-separated classical methods among pde,exemplar "
    "(default: both; '' for networks only)",
)
@click.option("--limit", type=int, default=None, help="use only the first N images")
@click.option("--jobs", type=int, default=1, help="images evaluated in parallel")
def main(
    data: Path,
    out: Path,
    network: tuple[tuple[str, str], ...],
    methods: str,
    limit: int | None,
    jobs: int,
) -> None:
    classical = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in classical if m not in CLASSICAL]
    if unknown:
        raise click.UsageError(
            f"unknown method(s) {', '.join(unknown)}; known: {', '.join(CLASSICAL)}"
        )
    networks = unique_names(network, "--network")
    clash = set(networks) & set(CLASSICAL)
    if clash:
        raise click.UsageError(
            f"network name(s) {', '.join(sorted(clash))} clash with a classical method"
        )
    if not classical and not networks:
        raise click.UsageError("nothing to evaluate: no classical method and no --network")
    if not data.is_dir():
        raise click.UsageError(f"--data {data} is not a folder")
    if limit is not None and limit < 1:
        raise click.UsageError("--limit must be >= 1")
    if jobs < 1:
        raise click.UsageError("--jobs must be >= 1")

    to_run = [Method(m) for m in classical] + [Method(n, p) for n, p in networks.items()]
    labels = dict(CLASSICAL_LABELS)
    for name, path in networks.items():  # fail early (before hours of work) on a bad file
        try:
            net = NetworkInpainter(path)
        except Exception as exc:  # torch.load raises many types (pickle, zip, ...)
            raise click.UsageError(f"--network {name}={path}: {exc}") from None
        labels[name] = f"network `{name}` ({net.kind}, {net.parameters} parameters)"

    images, warnings = images_in(data, limit)
    for message in warnings:
        click.echo(f"warning: {message}", err=True)
    if not images:
        raise click.UsageError(f"no readable images in {data}")
    results = run(images, to_run, jobs)
    summaries = summarize(results, to_run, labels)
    if summaries[0].blocks == 0:
        # exit status 1 (not a usage error), as before
        raise click.ClickException(f"no image in {data} is at least {CONTEXT}x{CONTEXT}")
    out.mkdir(parents=True, exist_ok=True)
    write_block_csv(results, to_run, out / "table1_blocks.csv")
    write_summary_csv(summaries, out / "table1.csv")
    (out / "table1.md").write_text(table_markdown(summaries, len(images), str(data)))
    click.echo(f"wrote table1.md, table1.csv, table1_blocks.csv to {out}")


if __name__ == "__main__":
    main()
