"""Graph rewrites that keep the arithmetic: the folded inpainting graph gives the same bits."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ir2icodec.runtime import models_root
from ir2icodec.training.export import to_onnx
from ir2icodec.training.graphs import fold_pads
from ir2icodec.training.nets import CONTEXT, InpaintNet, make_config


def _run(data: bytes, context: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]).run(
        None, {"context": context}
    )[0]


def _ops(data: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(data).graph.node]


@pytest.mark.parametrize("layers", [2, 4, 8])
def test_folded_pads_give_the_same_bits_without_a_pad(layers):
    torch.manual_seed(layers)
    net = InpaintNet(make_config("compact", inpaint_layers=layers).inpaint).eval()
    plain = to_onnx(net, (torch.zeros(1, 3, CONTEXT, CONTEXT),), ["context"], ["inpainting"])
    folded = fold_pads(plain)
    assert "Pad" in _ops(plain) and "Pad" not in _ops(folded)
    assert _ops(folded).count("Conv") == _ops(plain).count("Conv")
    context = np.random.default_rng(layers).random((37, 3, CONTEXT, CONTEXT), np.float32) - 0.5
    context[:, :, 32:, 32:] = 0  # the block to inpaint is empty, as the codec gives it
    assert np.array_equal(_run(folded, context), _run(plain, context))


def test_the_shipped_default_inpainting_folds_to_the_same_bits():
    plain = (models_root() / "ir2i-compact-4" / "inpaint.onnx").read_bytes()
    folded = fold_pads(plain)
    assert _ops(plain).count("Pad") == 17 and "Pad" not in _ops(folded)
    context = np.random.default_rng(0).random((16, 3, CONTEXT, CONTEXT), np.float32) - 0.5
    assert np.array_equal(_run(folded, context), _run(plain, context))


def test_a_graph_without_pads_keeps_its_convolutions():
    decoder_graph = (models_root() / "ir2i-compact-4" / "stage1_decoder.onnx").read_bytes()
    folded = onnx.load_from_string(fold_pads(decoder_graph))
    assert _ops(folded.SerializeToString()).count("Conv") == _ops(decoder_graph).count("Conv")
    assert [i.name for i in folded.graph.input] == ["code", "inpainting"]
