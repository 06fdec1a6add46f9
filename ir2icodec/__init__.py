"""ir2i: a progressive learned image codec (inpainting + residual-to-image, Baig et al.).

The public API is ``encode``, ``decode``, ``info`` and ``load_model`` (see
:mod:`ir2icodec.api`); importing the package also registers the ``.ir2i`` format with
Pillow (:mod:`ir2icodec.pillow`), so ``Image.open("x.ir2i")`` works. onnxruntime is
imported on the first encode or decode, not here.
"""

__version__ = "0.1.0"

from . import pillow as _pillow  # noqa: E402,F401 - registers the Pillow plugin
from .api import decode, encode, info, load_model  # noqa: E402

__all__ = ["__version__", "decode", "encode", "info", "load_model"]
