"""An int8 twin of a bundle: its decoding networks quantised for faster CPU decoding.

onnxruntime's static quantisation (QDQ, int8 weights per output channel, uint8 activations
with ranges calibrated on training photos) of the graphs a decoder runs: the inpainting
network, the stage decoders and the post-filter. The stage encoders stay in float32: only
the encoder runs them, and their codes are what the file keeps.

A quantised bundle is a model of its own (a new name and digest), because the encoder
tracks the reconstruction the decoder will make: both must run the same arithmetic, so a
file written with the int8 twin names it and decodes only with it.

    python -m ir2icodec.training.quantize models/ir2i-compact-4 models/ir2i-compact-4-q8 \\
        --name ir2i-compact-4-q8 --data ../shared/data/train --photos 12

Calibration photos come from the training split (never the held-out photos or Kodak).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from ..codec import decode, encode
from ..manifest import MANIFEST_NAME, bundle_digest
from ..runtime import OnnxModel, load_model
from .data import list_images, split_images
from .graphs import fold_pads
from .int8_filter import Ranges

if TYPE_CHECKING:
    import onnx

# The graphs a decoder runs (the encoder runs them too, to track the decoder's pictures).
DECODING_GRAPHS = ("inpaint", "decoders", "postfilter")
# Enough rows of each graph's inputs for its activation ranges, few enough to hold in memory.
MAX_ROWS = 2048
MAX_POSTFILTER_BANDS = 48
HOLDOUT_PERCENT = 5.0  # the training runs' split (train --holdout-percent)


@dataclass
class _Recorder(OnnxModel):
    """An ``OnnxModel`` that keeps a sample of every input it runs its graphs on."""

    seen: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict, repr=False)
    rows: dict[str, int] = field(default_factory=dict, repr=False)

    def _keep(self, fname: str, feeds: dict[str, np.ndarray], limit: int) -> None:
        if self.rows.get(fname, 0) >= limit:
            return
        n = len(next(iter(feeds.values())))
        take = min(n, limit - self.rows.get(fname, 0))
        self.seen.setdefault(fname, []).append({k: v[:take].copy() for k, v in feeds.items()})
        self.rows[fname] = self.rows.get(fname, 0) + take

    def _run(self, fname: str, feeds: dict[str, np.ndarray], split: bool) -> list[np.ndarray]:
        self._keep(fname, feeds, MAX_ROWS)
        return super()._run(fname, feeds, split)

    def postfilter(self, image: np.ndarray, guide: np.ndarray) -> np.ndarray:
        bands = self.seen.setdefault(self.postfilter_spec["file"], [])
        if len(bands) < MAX_POSTFILTER_BANDS:  # whole bands: the filter's input is a picture
            bands.append({"image": image.copy(), "guide": guide.copy()})
        return super().postfilter(image, guide)


def graphs_of(model: OnnxModel, parts: Iterable[str]) -> list[str]:
    """The bundle's files that ``parts`` (of ``DECODING_GRAPHS``) name."""
    files: list[str] = []
    for part in parts:
        if part == "inpaint" and model.has_inpainting:
            files.append("inpaint.onnx")
        elif part == "decoders":
            files += [f"stage{s}_decoder.onnx" for s in range(1, model.stages + 1)]
        elif part == "postfilter" and model.postfilter_spec is not None:
            files.append(model.postfilter_spec["file"])
        elif part not in DECODING_GRAPHS:
            raise click.BadParameter(f"unknown part {part!r}; choose from {DECODING_GRAPHS}")
    return files


def record_inputs(
    model: OnnxModel, photos: Iterable[np.ndarray], quality: float = 75.0
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Every graph's inputs while the photos are encoded (rate-controlled at ``quality``, so
    blocks end at every stage) and decoded at every stage count, filter on."""
    recorder = _Recorder(model.directory, model.manifest, model.providers, model.threads)
    for rgb in photos:
        data = encode(rgb, recorder, quality=quality, keep_reconstruction=False).data
        for stages in range(2, model.stages + 1, 2):
            decode(data, recorder, max_stages=stages)
    return recorder.seen


class _Batches:
    """onnxruntime's ``CalibrationDataReader`` protocol over recorded inputs."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # onnxruntime calls it only for some methods
        pass


def _residual_sum(model_path: Path) -> list[str]:
    """The nodes after a graph's last convolution (the post-filter's pixel shuffle and its sum
    with the input picture): kept in float, because 8-bit steps over the sum's range are
    coarser than a pixel's (0.03 dB of the filter's gain on held-out photos, in one try)."""
    import onnx

    nodes = [n for n in onnx.load(str(model_path)).graph.node if n.op_type != "Constant"]
    last_conv = max(i for i, n in enumerate(nodes) if n.op_type == "Conv")
    return [n.name for n in nodes[last_conv + 1 :]]


def _float_inputs_for_float_nodes(model: onnx.ModelProto, float_nodes: list[str]) -> None:
    """Let the nodes kept in float read the graph's own float inputs, not their 8-bit copies
    (onnxruntime's quantiser gives every consumer of an input the dequantised copy): the
    post-filter's residual sum then adds the decoded picture exactly. A picture of k / 255 -
    0.5 is not on any uint8 grid with an integer zero point, and its copy is half a level
    off, which moved the filter's rounding (0.01 dB of its gain, a one-off try)."""
    inputs = {i.name for i in model.graph.input}
    quantised = {
        n.output[0]: n.input[0]
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] in inputs
    }
    copies = {
        n.output[0]: quantised[n.input[0]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in quantised
    }
    for node in model.graph.node:
        if node.name in float_nodes:
            node.input[:] = [copies.get(x, x) for x in node.input]


def postfilter_overrides(model_path: Path, ranges: Ranges) -> dict:
    """onnxruntime's ``TensorQuantOverrides`` that put a post-filter graph's tensors on the
    grids of ``ranges`` (``int8_filter.tensor_names``: inputs, their concatenation, each
    convolution's output and activation, the head), found by their place in the graph."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    names = {"image": "image", "guide": "guide"}
    concat = [n.output[0] for n in graph.node if n.op_type == "Concat"]
    convs = [n.output[0] for n in graph.node if n.op_type == "Conv"]
    acts = [n.output[0] for n in graph.node if n.op_type == "LeakyRelu"]
    if len(concat) != 1 or len(acts) != len(convs) - 1:
        raise ValueError(f"{model_path.name} is not a post-filter graph")
    names["concat"] = concat[0]
    names["head"] = convs[-1]
    for i, (conv, act) in enumerate(zip(convs, acts)):
        names[f"conv{i}"], names[f"act{i}"] = conv, act
    if set(names) != set(ranges):
        raise ValueError(f"the int8 ranges do not fit {model_path.name}'s tensors")
    return {
        names[k]: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
        for k, (lo, hi) in ranges.items()
    }


def quantize_graph(
    source: Path,
    target: Path,
    batches: list[dict[str, np.ndarray]],
    overrides: dict | None = None,
) -> None:
    """Static int8 quantisation of one graph, calibrated on ``batches`` (min/max ranges);
    ``overrides`` (``TensorQuantOverrides``) fix the ranges of the tensors they name."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # the post-filter's sizes are symbolic: onnx's own shape inference only
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        float_nodes = _residual_sum(prepared)
        quantize_static(
            str(prepared),
            str(target),
            _Batches(batches),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes,
            extra_options={"TensorQuantOverrides": overrides or {}},
        )
    model = onnx.load(str(target))
    _float_inputs_for_float_nodes(model, float_nodes)
    onnx.save(model, str(target))


def quantized_postfilter(float_graph: bytes, ranges: Ranges) -> bytes:
    """The int8 graph of a float post-filter graph on the grids of ``ranges`` (a
    quantisation-aware fine-tuning's, ``int8_filter.activation_ranges``): what it trained."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(float_graph)
        # every range used is fixed: one small batch only runs the calibrator's machinery
        dummy = np.zeros((1, 3, 8, 8), np.float32)
        batches = [{"image": dummy, "guide": dummy}]
        quantize_graph(source, target, batches, postfilter_overrides(source, ranges))
        return target.read_bytes()


def quantize_bundle(
    source: str | Path,
    out_dir: str | Path,
    name: str,
    photos: list[np.ndarray],
    parts: Iterable[str] = DECODING_GRAPHS,
) -> dict:
    """Write the int8 twin of bundle ``source`` to ``out_dir``; returns its manifest."""
    model = load_model(str(source), device="cpu")
    files = graphs_of(model, parts)
    seen = record_inputs(model, photos)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = copy.deepcopy(model.manifest)  # the twin's, edited below
    # the networks, and what the manifest names beside them (the bit tables: the twin's
    # codes are the float model's, up to the decoders' arithmetic, and so are their odds)
    every = [*manifest["files"]] + [
        manifest[extra]["file"] for extra in ("postfilter", "bit_tables") if manifest.get(extra)
    ]
    for fname in every:
        if fname in files:
            quantize_graph(model.directory / fname, out / fname, seen[fname])
        elif fname == "inpaint.onnx":  # the same arithmetic, faster (graphs.fold_pads)
            (out / fname).write_bytes(fold_pads((model.directory / fname).read_bytes()))
        else:
            shutil.copyfile(model.directory / fname, out / fname)
    digests = {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in manifest["files"]}
    manifest["name"] = name
    manifest["files"] = digests
    manifest["digest"] = bundle_digest(name, digests)
    if "postfilter" in manifest:
        spec = manifest["postfilter"]
        spec["sha256"] = hashlib.sha256((out / spec["file"]).read_bytes()).hexdigest()
    manifest["quantized"] = {
        "from": model.name,
        "from_digest": model.manifest["digest"],
        "graphs": files,
        "method": "onnxruntime static QDQ: int8 weights per channel, uint8 activations, min/max",
        "calibration_photos": len(photos),
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


@click.command("quantize")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="The twin's model name (files carry it).")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="The training photos; the held-out ones are left out.",
)
@click.option("--photos", type=int, default=12, show_default=True, help="Calibration photos.")
@click.option(
    "--parts",
    default=",".join(DECODING_GRAPHS),
    show_default=True,
    help="Which decoding graphs to quantise (comma-separated).",
)
@click.option("--seed", type=int, default=0, show_default=True)
def main(bundle: str, out_dir: str, name: str, data: str, photos: int, parts: str, seed: int):
    """Write BUNDLE's int8 twin to OUT_DIR."""
    from PIL import Image

    paths, _held_out = split_images(list_images([data]), HOLDOUT_PERCENT)
    chosen = np.random.default_rng(seed).choice(
        len(paths), size=min(photos, len(paths)), replace=False
    )
    images = [np.asarray(Image.open(paths[i]).convert("RGB")) for i in sorted(chosen)]
    manifest = quantize_bundle(bundle, out_dir, name, images, [p for p in parts.split(",") if p])
    graphs = ", ".join(manifest["quantized"]["graphs"]) or "nothing"
    click.echo(f"wrote {name} ({manifest['digest']}): int8 {graphs}")


if __name__ == "__main__":
    main()
