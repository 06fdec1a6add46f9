"""ir2i: a progressive learned image codec (inpainting + residual-to-image, Baig et al.)."""

__version__ = "0.1.0"
