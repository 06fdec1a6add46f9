"""Rewrites of exported ONNX graphs that keep their arithmetic and cut onnxruntime's work.

The exporter writes the inpainting network's crop-then-pad convolutions (``nets._cropped_conv``)
as a ``Pad`` node, fed by a chain of shape arithmetic, before each ``Conv``: onnxruntime runs
every one of those 17 pads as a copy of the feature map. A convolution's own ``pads``
attribute adds the same zeros without the copy (its padding may be asymmetric, which
PyTorch's cannot), and the products and their order are the same, so the output is
bit-identical (tested): the inpainting network ran about 10% faster in one A/B.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


def constant_folded(data: bytes) -> onnx.ModelProto:
    """The graph after onnxruntime's basic (provider-independent) optimisations: constants
    folded, so every ``Pad`` reads its pads from an initializer."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 4
    with tempfile.TemporaryDirectory() as tmp:
        opts.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        return onnx.load(opts.optimized_model_filepath)


def _zero_pads(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> list[int] | None:
    """A constant-mode, zero-valued Pad's (top, left, bottom, right), or None."""
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
    pads = constants.get(node.input[1]) if len(node.input) > 1 else None
    value = node.input[2] if len(node.input) > 2 else ""
    if mode != b"constant" or pads is None or pads.shape != (8,):
        return None
    if value and (value not in constants or float(constants[value]) != 0.0):
        return None
    n0, c0, top, left, n1, c1, bottom, right = pads.tolist()
    if n0 or c0 or n1 or c1 or min(top, left, bottom, right) < 0:
        return None
    return [top, left, bottom, right]


def fold_pads(data: bytes) -> bytes:
    """``data`` with every zero ``Pad`` that feeds only a ``Conv`` folded into that
    convolution's ``pads``; other graphs come back constant-folded and otherwise unchanged."""
    model = constant_folded(data)
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded = []
    for node in graph.node:
        if node.op_type != "Pad":
            continue
        pads = _zero_pads(node, constants)
        users = consumers.get(node.output[0], [])
        if (
            pads is None
            or len(users) != 1
            or users[0].op_type != "Conv"
            or node.output[0] in outputs
        ):
            continue
        conv = users[0]
        own = next((a for a in conv.attribute if a.name == "pads"), None)
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        before = list(helper.get_attribute_value(own)) if own is not None else [0, 0, 0, 0]
        # ONNX orders a 2-D convolution's pads as (top, left, bottom, right)
        after = [b + p for b, p in zip(before, pads)]
        if own is not None:
            conv.attribute.remove(own)
        conv.attribute.append(helper.make_attribute("pads", after))
        conv.input[0] = node.input[0]
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)
    return model.SerializeToString()
