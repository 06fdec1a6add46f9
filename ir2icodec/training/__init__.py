"""Training-side code (needs torch): networks, data, training loop, ONNX export."""
