"""Export a trained coder to the ONNX model bundle that ``ir2icodec.runtime`` runs.

A bundle is a directory: ``model.json`` (the manifest) plus one ONNX graph for the inpainting
network and one encoder and one decoder graph per stage. Per-stage graphs keep progressive
decoding cheap (decoding K stages loads and runs K decoders). Stage graphs thread the state
that the variant passes from stage to stage (decoding-layer features for R2I-decoding) as
explicit ``state_i`` inputs and ``next_state_i`` outputs, so the runtime needs no knowledge
of the variant.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import warnings
from pathlib import Path

import click
import torch
from torch import nn

from ..manifest import MANIFEST_NAME, bundle_digest
from ..tuning import DEFAULT_TUNE, TUNES
from .graphs import fold_pads
from .int8_filter import Ranges
from .nets import BLOCK, CODE_SHAPE, CONTEXT, ModelConfig, PostFilter, ProgressiveCoder

OPSET = 17


class _EncoderStep(nn.Module):
    def __init__(self, coder: ProgressiveCoder, s: int):
        super().__init__()
        self.coder, self.s = coder, s

    def forward(self, residual: torch.Tensor, *state: torch.Tensor):
        code, feats = self.coder.stage_encode(self.s, residual, list(state) or None)
        return (code, *feats) if self.coder.cfg.connections == "full" else (code,)


class _DecoderStep(nn.Module):
    def __init__(self, coder: ProgressiveCoder, s: int):
        super().__init__()
        self.coder, self.s = coder, s

    def forward(self, code: torch.Tensor, inpainting: torch.Tensor, *state: torch.Tensor):
        recon, _, next_state = self.coder.stage_decode(
            self.s, code, inpainting, list(state) or None
        )
        return (recon, *next_state)


def to_onnx(
    module: nn.Module,
    args: tuple,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[int, str] | None = None,
) -> bytes:
    """One module as ONNX bytes; ``dynamic`` names its dynamic axes (default: the batch)."""
    # The exporter restores the wrapper's train/eval mode afterwards, and with it the wrapped
    # coder's: wrappers must be in eval mode, or the coder comes back in training mode.
    module.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is chatty about deprecation
        torch.onnx.export(
            module,
            args,
            buf,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={n: dynamic or {0: "blocks"} for n in inputs + outputs},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def load_checkpoint(path: str | Path) -> ProgressiveCoder:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    coder = ProgressiveCoder(ModelConfig.from_dict(ckpt["config"]))
    coder.load_state_dict(ckpt["model"])
    return coder.eval()


@torch.no_grad()
def export_bundle(
    coder: ProgressiveCoder, out_dir: str | Path, name: str, extra: dict | None = None
) -> dict:
    """Write the bundle; returns the manifest."""
    coder = coder.eval().to(memory_format=torch.contiguous_format)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = coder.cfg
    graphs: dict[str, bytes] = {}
    if coder.inpaint is not None:
        graphs["inpaint.onnx"] = fold_pads(
            to_onnx(
                coder.inpaint, (torch.zeros(1, 3, CONTEXT, CONTEXT),), ["context"], ["inpainting"]
            )
        )
    block = torch.zeros(1, 3, BLOCK, BLOCK)
    enc_state: list[torch.Tensor] | None = None
    dec_state: list[torch.Tensor] | None = None
    for s in range(cfg.stages):
        enc_args = (block, *(enc_state or []))
        enc_in = ["residual"] + [f"state_{i}" for i in range(len(enc_state or []))]
        enc_outs = _EncoderStep(coder, s)(*enc_args)
        graphs[f"stage{s + 1}_encoder.onnx"] = to_onnx(
            _EncoderStep(coder, s),
            enc_args,
            enc_in,
            ["code"] + [f"next_state_{i}" for i in range(len(enc_outs) - 1)],
        )
        enc_state = list(enc_outs[1:]) or None
        code = enc_outs[0]
        dec_args = (code, block, *(dec_state or []))
        dec_in = ["code", "inpainting"] + [f"state_{i}" for i in range(len(dec_state or []))]
        dec_outs = _DecoderStep(coder, s)(*dec_args)
        graphs[f"stage{s + 1}_decoder.onnx"] = to_onnx(
            _DecoderStep(coder, s),
            dec_args,
            dec_in,
            ["reconstruction"] + [f"next_state_{i}" for i in range(len(dec_outs) - 1)],
        )
        dec_state = list(dec_outs[1:])
    for fname, data in graphs.items():
        (out / fname).write_bytes(data)
    files = {f: hashlib.sha256(d).hexdigest() for f, d in sorted(graphs.items())}
    manifest = {
        "format": "ir2i-model",
        "format_version": 1,
        "name": name,
        "block_size": BLOCK,
        "context_size": CONTEXT,
        "code_shape": list(CODE_SHAPE),
        "bits_per_stage": int(torch.tensor(CODE_SHAPE).prod()),
        "stages": cfg.stages,
        "inpainting": coder.inpaint is not None,
        "config": cfg.to_dict(),
        "files": files,
        "digest": bundle_digest(name, files),
        **(extra or {}),
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


POSTFILTER_FILE = "postfilter.onnx"


@torch.no_grad()
def export_postfilter(
    net: PostFilter,
    bundle: str | Path,
    training: dict | None = None,
    int8_ranges: Ranges | None = None,
) -> dict:
    """Write ``postfilter.onnx`` into a bundle and name it in the manifest's ``postfilter``
    entry (its own SHA-256; the bundle digest, which files carry, is unchanged because the
    filter never changes a bitstream). With ``int8_ranges`` (a quantisation-aware
    fine-tuning's, ``int8_filter``), the graph written is the int8 one on those grids.
    Returns the entry."""
    bundle = Path(bundle)
    manifest_path = bundle / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    sample = torch.zeros(1, 3, 64, 64)
    data = to_onnx(
        net,
        (sample, sample),
        ["image", "guide"],
        ["filtered"],
        {0: "batch", 2: "height", 3: "width"},
    )
    if int8_ranges is not None:
        from .quantize import quantized_postfilter

        data = quantized_postfilter(data, int8_ranges)
    (bundle / POSTFILTER_FILE).write_bytes(data)
    spec = {
        "file": POSTFILTER_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "halo": net.halo,
        "config": net.cfg.to_dict(),
        "training": training or {},
    }
    if int8_ranges is not None:
        spec["int8"] = {
            "method": "quantisation-aware fine-tuning; onnxruntime static QDQ: int8 weights "
            "per channel, uint8 activations on the trained grids, the residual sum in float",
            "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in int8_ranges.items()},
        }
    manifest["postfilter"] = spec
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(manifest_path)
    return spec


def copy_postfilter(source: str | Path, bundle: str | Path) -> dict:
    """Give ``bundle`` the post-filter of bundle ``source`` (file and manifest entry, as
    they are): a stand-in until the new model's own filter is trained on its pictures."""
    source, bundle = Path(source), Path(bundle)
    spec = json.loads((source / MANIFEST_NAME).read_text()).get("postfilter")
    if spec is None:
        raise click.ClickException(f"{source} has no post-filter")
    shutil.copyfile(source / spec["file"], bundle / spec["file"])
    manifest_path = bundle / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["postfilter"] = {
        **spec,
        "training": {**spec.get("training", {}), "copied_from": source.name},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest["postfilter"]


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Model name stored in every .ir2i file it makes.")
@click.option(
    "--postfilter-from",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Copy this bundle's post-filter (e.g. the model it was fine-tuned from) "
    "until one is trained for the new model.",
)
@click.option(
    "--tune",
    type=click.Choice(TUNES),
    default=DEFAULT_TUNE,
    show_default=True,
    help="The metric the model was trained for (its rate control measures the same).",
)
@click.option(
    "--bit-tables-from",
    "tables_data",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Count the bundle's bit tables on this training folder's photos (never held-out "
    "ones; as `python -m ir2icodec.training.bit_tables` does) so that it writes format "
    "version 3; without it the bundle writes version 2 until they are counted.",
)
def main(
    checkpoint: str,
    out_dir: str,
    name: str,
    postfilter_from: str | None,
    tune: str,
    tables_data: tuple[str, ...],
) -> None:
    """Export CHECKPOINT (a training .pt) to an ONNX model bundle in OUT_DIR."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    extra: dict = {
        "training": {"step": ckpt.get("step"), "elapsed_s": round(ckpt.get("elapsed", 0))}
    }
    if tune != DEFAULT_TUNE:  # bundles without the key are msssim-tuned (every earlier one)
        extra["tune"] = tune
    manifest = export_bundle(load_checkpoint(checkpoint), out_dir, name, extra)
    if postfilter_from:
        copy_postfilter(postfilter_from, out_dir)
    click.echo(f"exported {name} ({manifest['digest']}) to {out_dir}")
    if tables_data:
        from .bit_tables import count_into_bundle  # runs the exported networks: onnxruntime

        click.echo(count_into_bundle(Path(out_dir), list(tables_data)))


if __name__ == "__main__":
    main()
