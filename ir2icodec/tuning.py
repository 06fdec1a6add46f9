"""What a model is tuned for: the metric its training served, and so the block distortion
its rate control must measure.

A bundle names its tune in its manifest (``"tune"``; bundles without one are ``msssim``,
as every model before ``--tune psnr`` was). ``--tune`` picks the shipped model for a metric;
a file names the model that made it, so decoding needs no tune.
"""

from __future__ import annotations

from typing import Any, Literal

from .errors import ModelError, UsageError
from .ratecontrol import Distortion

Tune = Literal["msssim", "psnr"]
TUNES: tuple[str, ...] = ("msssim", "psnr")
DEFAULT_TUNE: Tune = "msssim"
# The shipped model for each tune. The first is the package's default model.
SHIPPED_MODELS: dict[str, str] = {"msssim": "ir2i-compact-10", "psnr": "ir2i-psnr-2"}
# Rate control serves the same metric as training: MS-SSIM's scales of the block for the
# MS-SSIM-tuned model, squared error (what PSNR counts) for the PSNR-tuned one.
RATE_CONTROL_DISTORTION: dict[str, Distortion] = {"msssim": "msssim", "psnr": "mse"}


def model_for(model: Any, tune_name: Tune | None) -> Any:
    """The model to encode with: the one given, or the shipped model of ``tune_name``
    (None: the caller's default). Both at once is ambiguous: refused."""
    if tune_name is None:
        return model
    if model is not None:
        raise UsageError("tune and model are mutually exclusive (tune picks a shipped model)")
    return SHIPPED_MODELS[tune_name]


def manifest_tune(manifest: dict) -> Tune:
    """The tune a bundle's manifest declares (``msssim`` when it declares none)."""
    value = manifest.get("tune", DEFAULT_TUNE)
    if value not in TUNES:
        raise ModelError(
            f"model {manifest.get('name', '?')}: unknown tune {value!r} "
            f"(this ir2i knows {', '.join(TUNES)})"
        )
    return value


def rate_control_distortion(tune_name: Tune) -> Distortion:
    return RATE_CONTROL_DISTORTION[tune_name]
