"""Parameters and FLOPs per 32x32 block of each preset (needs torch: the [train] extra).

    python -m benchmarks.cost [--preset compact --preset paper] [--model ir2i-compact-8]

FLOPs are counted by torch's FlopCounterMode on one block (multiply-add = 2 FLOPs), for
the inpainting network (only the region the 32x32 output needs is computed) and for each
stage's encoder and decoder with the connections of the preset's default variant;
``--model`` adds a bundle's own networks (its manifest's config). With ``--postfilter
BUNDLE`` it also counts that bundle's post-filter per pixel and per block.
"""

from __future__ import annotations

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

from ir2icodec.training.nets import (
    PRESETS,
    ModelConfig,
    PostFilter,
    PostFilterConfig,
    ProgressiveCoder,
    count_parameters,
)


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def preset_cost(name: str) -> dict[str, float]:
    return config_cost(PRESETS[name])


def config_cost(cfg: ModelConfig) -> dict[str, float]:
    """Parameters and FLOPs per block of the networks ``cfg`` describes."""
    coder = ProgressiveCoder(cfg).eval()
    block = torch.zeros(1, 3, 32, 32)
    inp = torch.zeros(1, 3, 32, 32)
    enc_flops = dec_flops = 0
    enc_state = dec_state = None
    for s in range(coder.cfg.stages):
        enc_flops += _flops(lambda s=s, st=enc_state: coder.stage_encode(s, block, st))
        code, enc_state = coder.stage_encode(s, block, enc_state)
        dec_flops += _flops(lambda s=s, c=code, st=dec_state: coder.stage_decode(s, c, inp, st))
        _, _, dec_state = coder.stage_decode(s, code, inp, dec_state)
    inpaint_flops = _flops(lambda: coder.inpaint(torch.zeros(1, 3, 64, 64)))
    return {
        "inpaint_params": count_parameters(coder.inpaint),
        "stage_params": count_parameters(coder.stages),
        "inpaint_mflops": inpaint_flops / 1e6,
        "encoder_mflops_8": enc_flops / 1e6,
        "decoder_mflops_8": dec_flops / 1e6,
        # Encoding runs every decoder too (to track the decoder's reconstruction).
        "encode_mflops": (inpaint_flops + enc_flops + dec_flops) / 1e6,
        "decode_mflops": (inpaint_flops + dec_flops) / 1e6,
    }


def postfilter_cost(cfg: PostFilterConfig, side: int = 256) -> dict[str, float]:
    """Parameters and FLOPs of a post-filter, per pixel (counted on a side x side image)."""
    net = PostFilter(cfg).eval()
    x = torch.zeros(1, 3, side, side)
    per_pixel = _flops(lambda: net(x, x)) / side**2
    return {
        "params": count_parameters(net),
        "flops_per_pixel": per_pixel,
        "mflops_per_block": per_pixel * 32 * 32 / 1e6,
    }


@click.command()
@click.option(
    "--preset",
    "presets",
    multiple=True,
    default=sorted(PRESETS),
    type=click.Choice(sorted(PRESETS)),
)
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Also count this bundle's networks (a directory or shipped name), e.g. a model "
    "whose shape is no preset.",
)
@click.option(
    "--postfilter",
    "postfilter_bundle",
    default=None,
    help="Also count this bundle's post-filter (a directory or shipped name).",
)
def main(presets: tuple[str, ...], models: tuple[str, ...], postfilter_bundle: str | None) -> None:
    click.echo(
        "| preset | inpainting params | stage params (8) | inpainting MFLOP/block | "
        "8 encoders MFLOP/block | 8 decoders MFLOP/block | encode MFLOP/block | "
        "decode MFLOP/block |"
    )
    click.echo("|---|---|---|---|---|---|---|---|")
    from ir2icodec.runtime import load_model

    rows = [(name, PRESETS[name]) for name in presets]
    for bundle in models:
        model = load_model(bundle, device="cpu")
        rows.append((model.name, ModelConfig.from_dict(model.manifest["config"])))
    for name, cfg in rows:
        c = config_cost(cfg)
        click.echo(
            f"| {name} | {c['inpaint_params']:,} | {c['stage_params']:,} | "
            f"{c['inpaint_mflops']:.1f} | {c['encoder_mflops_8']:.1f} | "
            f"{c['decoder_mflops_8']:.1f} | {c['encode_mflops']:.1f} | "
            f"{c['decode_mflops']:.1f} |"
        )
    if postfilter_bundle:
        model = load_model(postfilter_bundle, device="cpu")
        spec = model.postfilter_spec
        if spec is None:
            raise click.ClickException(f"model {model.name} has no post-filter")
        c = postfilter_cost(PostFilterConfig(**spec["config"]))
        click.echo(f"\n| post-filter of {model.name} | params | FLOP/pixel | MFLOP/block |")
        click.echo("|---|---|---|---|")
        click.echo(
            f"| width {spec['config']['width']}, {spec['config']['layers']} layers | "
            f"{c['params']:,} | {c['flops_per_pixel']:,.0f} | "
            f"{c['mflops_per_block']:.1f} |"
        )


if __name__ == "__main__":
    main()
