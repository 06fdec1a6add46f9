"""Recover torch weights from an exported ONNX model bundle.

Training checkpoints are large and live outside git, so they get lost between machines; the
shipped bundle is the one copy of a model that always survives. The exporter keeps every
parameter's name as an ONNX initializer (``coder.stages.2.decoder.convs.0.weight`` in a stage
graph, ``layers.0.convs.0.weight`` in the inpainting graph), which is enough to rebuild the
``ProgressiveCoder`` state dict and warm-start or continue training from the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..manifest import MANIFEST_NAME
from .nets import ModelConfig, PostFilter, PostFilterConfig, ProgressiveCoder


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


def state_from_bundle(bundle: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The model config and every named parameter found in the bundle's graphs."""
    bundle = Path(bundle)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    cfg = ModelConfig.from_dict(manifest["config"])
    state: dict[str, torch.Tensor] = {}
    for fname in manifest["files"]:
        prefix = "inpaint." if fname == "inpaint.onnx" else ""
        for init in onnx.load(str(bundle / fname)).graph.initializer:
            if init.name.startswith("/") or "::" in init.name:
                continue  # a constant the exporter made (e.g. a folded slice's bounds)
            name = init.name.removeprefix("coder.")
            state[prefix + name] = torch.from_numpy(numpy_helper.to_array(init).copy())
    return cfg, state


def coder_from_bundle(bundle: str | Path) -> tuple[ProgressiveCoder, list[str]]:
    """A coder with the bundle's weights, and the parameter names the bundle does not hold:
    parameters that no exported graph uses (stage 1's connection weights), and any that the
    exporter merged into another initializer because their values were exactly equal (as
    untrained zero biases are; trained weights practically never are). Those stay at their
    fresh initialisation."""
    cfg, state = state_from_bundle(bundle)
    coder = ProgressiveCoder(cfg)
    own = coder.state_dict()
    found = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    coder.load_state_dict(found, strict=False)
    return coder.eval(), sorted(set(own) - set(found))


def postfilter_from_bundle(bundle: str | Path) -> tuple[PostFilter, list[str]]:
    """The bundle's post-filter as a torch network (its config from the manifest, its
    weights from ``postfilter.onnx``'s named initializers), to fine-tune a shipped filter
    whose training checkpoint is gone; and, as for ``coder_from_bundle``, the names the
    graph does not hold (values the exporter merged because they were exactly equal)."""
    bundle = Path(bundle)
    spec = json.loads((bundle / MANIFEST_NAME).read_text()).get("postfilter")
    if spec is None:
        raise ValueError(f"{bundle} has no post-filter")
    net = PostFilter(PostFilterConfig(**spec["config"]))
    arrays = {
        init.name: numpy_helper.to_array(init)
        for init in onnx.load(str(bundle / spec["file"])).graph.initializer
    }
    state = {k: torch.from_numpy(v.copy()) for k, v in _dequantised(arrays).items()}
    own = net.state_dict()
    found = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(found, strict=False)
    return net.eval(), sorted(set(own) - set(found))


QUANTISED = "_quantized"  # onnxruntime's quantiser's suffix for an int8/int32 initializer


def _dequantised(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An int8 graph's initializers with its weights and biases back in float (steps x scale
    per output channel; their zero points are 0, the quantiser's symmetric choice): the
    rounded weights of the filter it was made from."""
    out = dict(arrays)
    for name, values in arrays.items():
        if not name.endswith(QUANTISED):
            continue
        base = name[: -len(QUANTISED)]
        scale = arrays.get(f"{base}_scale", arrays.get(f"{name}_scale"))
        if scale is None:
            continue
        scale = scale.astype(np.float32).reshape(-1, *[1] * (values.ndim - 1))
        out[base] = values.astype(np.float32) * scale
    return out
