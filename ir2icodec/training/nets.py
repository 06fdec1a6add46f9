"""The torch networks of IR2I (Baig et al.): progressive stages and partial-context inpainting.

Pixels live in [-0.5, 0.5] (``x / 255 - 0.5``) so that a zeroed context region is mid-grey.
A stage codes one 32x32 block into 8 x 4 x 4 = 128 binary values (0.125 bpp).

Connection variants between stages (paper Fig. 1):
- ``residual``: Toderici et al. 2016 residual encoder, residual in, residual out (eq. 1).
- ``prediction``: R2I with parameter-free additive connections of the stage outputs (eq. 2).
- ``full``: R2I with parametric (1x1 conv) connections between all corresponding layers.
- ``decoding``: R2I with parametric connections between decoding layers only (the best, and ours).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Connections = Literal["residual", "prediction", "full", "decoding"]
Inpainting = Literal["none", "joint", "separate"]
InpaintKind = Literal["multiscale", "vanilla", "cycled"]

BLOCK = 32
CONTEXT = 64
CODE_SHAPE = (8, 4, 4)  # 128 bits per block per stage


@dataclass(frozen=True)
class InpaintConfig:
    """Partial-context inpainting network: multi-scale layers of k filters per dilation.

    ``kind="cycled"`` is the fast variant: each layer one convolution of
    ``filters_per_dilation`` filters at a single dilation, ``dilations[i % len]`` for layer i
    (largest first keeps the early, wide layers on the smallest region).
    """

    kind: InpaintKind = "multiscale"
    layers: int = 8
    filters_per_dilation: int = 24
    dilations: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a network; stored in checkpoints and model manifests."""

    preset: str = "compact"
    connections: Connections = "decoding"
    inpainting: Inpainting = "joint"
    stages: int = 8
    # Channels of the encoder at 16x16, 8x8 and 4x4 (the decoder mirrors them).
    widths: tuple[int, int, int] = (64, 256, 512)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> ModelConfig:
        d = dict(d)
        inpaint = d["inpaint"]
        d["inpaint"] = InpaintConfig(**{**inpaint, "dilations": tuple(inpaint["dilations"])})
        d["widths"] = tuple(d["widths"])
        return ModelConfig(**d)


PRESETS: dict[str, ModelConfig] = {
    # The paper's sizes: 8 multi-scale layers x 24 filters per dilation; stage widths in the
    # range of Toderici et al.'s conv/deconv encoder. Meant for GPU users.
    "paper": ModelConfig(preset="paper", widths=(64, 256, 512), inpaint=InpaintConfig()),
    # Same structure, sized to train on 2 CPU cores in about 2 hours and to decode a
    # 768x512 image in under a second (see benchmarks/speed.py and the model card). Four
    # multi-scale layers still see the whole 64x64 context (4 x 8 + 1 pixels back from the
    # block); eight took 2.8x the time (python -m benchmarks.inpaint_layers).
    "compact": ModelConfig(
        preset="compact",
        widths=(16, 32, 64),
        inpaint=InpaintConfig(layers=4, filters_per_dilation=2),
    ),
    # Sized for a few minutes on one GPU (experiments/gpu_train.sh): twice compact's stage
    # widths (4x its parameters, 4.0 M: a weights-only checkpoint of 15.4 MiB, under the 16
    # MiB a GPU run may bring back per file) and a 24-channel, 6-layer inpainting network.
    # About 5x compact's decode FLOPs per block (python -m benchmarks.cost), so not the
    # default: the higher-quality model for who can wait.
    "large": ModelConfig(
        preset="large",
        widths=(32, 64, 128),
        inpaint=InpaintConfig(layers=6, filters_per_dilation=6),
    ),
}


def make_config(preset: str = "compact", **overrides) -> ModelConfig:
    """A preset with overrides, e.g. ``make_config("compact", connections="full")``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    inpaint_over = {
        k[len("inpaint_") :]: v for k, v in overrides.items() if k.startswith("inpaint_")
    }
    other = {k: v for k, v in overrides.items() if not k.startswith("inpaint_")}
    cfg = PRESETS[preset]
    if inpaint_over:
        other["inpaint"] = replace(cfg.inpaint, **inpaint_over)
    return replace(cfg, **other)


# --------------------------------------------------------------------------- binarizer


def binarize(x: torch.Tensor, stochastic: bool) -> torch.Tensor:
    """Map tanh outputs in [-1, 1] to {-1, +1}.

    Training uses the stochastic binarizer of Raiko et al. (P(+1) = (1 + x) / 2, an unbiased
    estimate of x) with a straight-through gradient; inference uses a deterministic sign, with 0
    mapped to +1 so that every value is a valid bit.
    """
    if stochastic:
        prob = (1 + x) / 2
        b = torch.where(torch.rand_like(x) < prob, 1.0, -1.0)
        return x + (b - x).detach()
    return torch.where(x >= 0, 1.0, -1.0)


# --------------------------------------------------------------------------- stages


def _act(x: torch.Tensor) -> torch.Tensor:
    # Leaky: these networks are narrow, and a dead ReLU channel is a large share of a layer.
    return F.leaky_relu(x, 0.2)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="leaky_relu", a=0.2)  # MSRA, as the paper
    nn.init.zeros_(conv.bias)
    return conv


def _link(cin: int, cout: int) -> nn.Conv2d:
    """A parametric connection (projection shortcut); zero-initialised so every stage starts
    as an independent coder and learns how much of the previous stage to reuse (the paper
    initialises every layer with MSRA: ``init_links`` starts them otherwise)."""
    conv = nn.Conv2d(cin, cout, 1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


LinkInit = Literal["zero", "identity", "msra"]
LINK_INITS: tuple[str, ...] = ("zero", "identity", "msra")


@torch.no_grad()
def init_links(coder: nn.Module, kind: LinkInit) -> int:
    """Start every connection link of ``coder`` as ``kind``: zero (each stage an independent
    coder at first), identity (each layer starts with the previous stage's same layer added:
    the later stages begin from the earlier ones' features) or msra (He-normal, as the
    paper's every layer). Returns the number of links set."""
    links = [
        m
        for name, m in coder.named_modules()
        if ".links." in f".{name}." and isinstance(m, nn.Conv2d)
    ]
    for link in links:
        if kind == "zero":
            nn.init.zeros_(link.weight)
        elif kind == "identity":
            nn.init.dirac_(link.weight)
        elif kind == "msra":
            nn.init.kaiming_normal_(link.weight, nonlinearity="leaky_relu", a=0.2)
        else:
            raise ValueError(f"unknown link init {kind!r}; choose from {LINK_INITS}")
    return len(links)


class StageEncoder(nn.Module):
    """32x32x3 residual -> 8x4x4 values in [-1, 1] (before binarization)."""

    def __init__(self, widths: tuple[int, int, int], linked: bool):
        super().__init__()
        w1, w2, w3 = widths
        self.convs = nn.ModuleList(
            [_conv(3, w1, stride=2), _conv(w1, w2, stride=2), _conv(w2, w3, stride=2)]
        )
        self.to_code = nn.Conv2d(w3, CODE_SHAPE[0], 1)
        self.links = nn.ModuleList([_link(w, w) for w in widths]) if linked else None

    def forward(
        self, residual: torch.Tensor, prev: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        h = residual
        for i, conv in enumerate(self.convs):
            pre = conv(h)
            if self.links is not None and prev is not None:
                pre = pre + self.links[i](prev[i])
            h = _act(pre)
            feats.append(h)
        return torch.tanh(self.to_code(h)), feats


class StageDecoder(nn.Module):
    """8x4x4 code -> 32x32x3, upsampling by depth-to-space (sub-pixel convolution)."""

    def __init__(self, widths: tuple[int, int, int], linked: bool):
        super().__init__()
        w1, w2, w3 = widths
        self.convs = nn.ModuleList(
            [
                _conv(CODE_SHAPE[0], w3),  # 4x4
                _conv(w3, 4 * w2),  # -> 8x8 after depth-to-space
                _conv(w2, 4 * w1),  # -> 16x16
                _conv(w1, 4 * 3),  # -> 32x32x3, the stage's prediction
            ]
        )
        # Start each stage's prediction near zero: with MSRA gain its output std is ~5x the
        # pixels', and the first large updates kill the ReLUs of these small networks.
        self.convs[-1].weight.data.mul_(0.1)
        self.shuffle = nn.PixelShuffle(2)
        self.links = (
            nn.ModuleList([_link(w3, w3), _link(w2, w2), _link(w1, w1), _link(3, 3)])
            if linked
            else None
        )

    def forward(
        self, code: torch.Tensor, prev: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        h = code
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            pre = conv(h)
            if i > 0:
                pre = self.shuffle(pre)
            if self.links is not None and prev is not None:
                pre = pre + self.links[i](prev[i])
            h = pre if i == last else _act(pre)
            feats.append(h)
        return h, feats


class Stage(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = StageEncoder(cfg.widths, linked=cfg.connections == "full")
        self.decoder = StageDecoder(cfg.widths, linked=cfg.connections in ("full", "decoding"))


# --------------------------------------------------------------------------- inpainting


class MultiScaleConv(nn.Module):
    """k filters for each dilation, concatenated (paper Fig. 2b).

    ``forward`` computes only the output rows/columns from ``offset_out`` on (the network only
    needs the bottom-right block), given an input that starts at ``offset_in``; the result is
    exactly what a zero-padded full-size convolution gives there.
    """

    def __init__(self, cin: int, k: int, dilations: tuple[int, ...]):
        super().__init__()
        self.dilations = dilations
        self.convs = nn.ModuleList()
        for _ in dilations:
            conv = nn.Conv2d(cin, k, 3, padding=0)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="leaky_relu", a=0.2)
            nn.init.zeros_(conv.bias)
            self.convs.append(conv)

    def forward(self, x: torch.Tensor, offset_in: int, offset_out: int) -> torch.Tensor:
        if self.training:
            # 'Same'-padded convolutions over the whole input region, then one crop: more
            # pixels than the crop-then-pad of inference, but a backward pass without a pad
            # and a crop per dilation (and the strided gradient sums they leave): a CPU
            # training step was 5-6% faster (one interleaved A/B, 1 thread, batch 128,
            # bf16). Exact as well (tests/test_parity.py): the zeros
            # padded above ``offset_in`` reach only the first ``d`` output rows, all above
            # ``offset_out`` (offset_out - offset_in >= max dilation unless offset_in is 0,
            # where the zeros are the context's own edge), and those rows are cut off.
            y = torch.cat(
                [
                    F.conv2d(x, conv.weight, conv.bias, padding=d, dilation=d)
                    for conv, d in zip(self.convs, self.dilations)
                ],
                dim=1,
            )
            crop = offset_out - offset_in
            return y[:, :, crop:, crop:] if crop else y
        return torch.cat(
            [
                _cropped_conv(conv, x, d, offset_in, offset_out)
                for conv, d in zip(self.convs, self.dilations)
            ],
            dim=1,
        )


def _cropped_conv(
    conv: nn.Conv2d, x: torch.Tensor, d: int, offset_in: int, offset_out: int
) -> torch.Tensor:
    """3x3 conv with dilation d on a map covering [offset_in, CONTEXT) in both axes, evaluated
    on [offset_out, CONTEXT), zero outside the context as with 'same' padding."""
    start = offset_out - d  # first input row the output needs
    if start < offset_in and offset_in == offset_out:
        # Full-size layer: the convolution's own symmetric padding (one ONNX op, not two).
        return F.conv2d(x, conv.weight, conv.bias, padding=d, dilation=d)
    if start >= offset_in:
        x = x[:, :, start - offset_in :, start - offset_in :]
        top = 0
    else:
        top = offset_in - start
    x = F.pad(x, (top, d, top, d))
    return F.conv2d(x, conv.weight, conv.bias, dilation=d)


# Under bf16 autocast the inpainting network's dilated convolutions run in bf16 on the CPU only
# when no layer has more input channels than this, and in fp32 otherwise (and on CUDA, as
# every GPU run so far). oneDNN in torch 2.13 crashes or returns NaN weight gradients for bf16
# dilated channels_last convolutions with 20 or 24 input channels on 41x41 to 57x57 maps
# (``large``: 24), while 3 to 16 (``compact``: 3 and 8) give finite gradients within bf16's
# rounding of fp32's (tests/test_training.py); bf16 made compact's inpainting about 20%
# faster in one A/B.
BF16_CPU_MAX_WIDTH = 16


class InpaintNet(nn.Module):
    """Partial-context inpainting: 64x64 context (bottom-right 32x32 zeroed) -> that 32x32 block.

    Full resolution throughout (no striding); ``kind="vanilla"`` uses dilation 1 only with 4x the
    depth and half the width, which keeps the parameter count (paper Table 1).
    """

    def __init__(self, cfg: InpaintConfig):
        super().__init__()
        if cfg.kind == "vanilla":
            layers, k, dils = cfg.layers * 4, cfg.filters_per_dilation * 2, (1,)
            layer_dils = [dils] * layers
        elif cfg.kind == "cycled":
            # One convolution a layer: onnxruntime runs each convolution in blocks of 8-16
            # channels, so four 2-filter convolutions a layer cost about four 8-filter ones.
            layers, k = cfg.layers, cfg.filters_per_dilation
            layer_dils = [(cfg.dilations[i % len(cfg.dilations)],) for i in range(layers)]
        else:
            layers, k, dils = cfg.layers, cfg.filters_per_dilation, cfg.dilations
            layer_dils = [dils] * layers
        width = k * len(layer_dils[0])
        self.layers = nn.ModuleList(
            [MultiScaleConv(3 if i == 0 else width, k, d) for i, d in enumerate(layer_dils)]
        )
        self.final = nn.Conv2d(width, 3, 3, padding=0)
        nn.init.kaiming_normal_(self.final.weight, nonlinearity="linear")
        self.final.weight.data.mul_(0.1)  # start near a mid-grey prediction (see StageDecoder)
        nn.init.zeros_(self.final.bias)
        # Offsets (top-left corner) of the region each layer's output must cover, worked back
        # from the block at [32, 64): each layer needs max(dilation) more pixels of context.
        offsets = [CONTEXT - BLOCK - 1]  # input of the final 3x3 conv
        for d in reversed(layer_dils):
            offsets.append(max(0, offsets[-1] - max(d)))
        self.offsets = offsets[::-1]  # offsets[0]: network input, offsets[i]: output of layer i
        self.widest_input = max(3, width)  # input channels of the widest layer

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        if context.device.type == "cpu" and self.widest_input <= BF16_CPU_MAX_WIDTH:
            return self._forward(context)  # under autocast, if the caller enabled it
        with torch.autocast(context.device.type, enabled=False):
            return self._forward(context.float())

    def _forward(self, context: torch.Tensor) -> torch.Tensor:
        h = context
        if self.offsets[0] > 0:
            h = h[:, :, self.offsets[0] :, self.offsets[0] :]
        for i, layer in enumerate(self.layers):
            h = _act(layer(h, self.offsets[i], self.offsets[i + 1]))
        if self.training:  # as MultiScaleConv: pad inside the convolution, crop after
            crop = CONTEXT - BLOCK - self.offsets[-1]
            return F.conv2d(h, self.final.weight, self.final.bias, padding=1)[:, :, crop:, crop:]
        return _cropped_conv(self.final, h, 1, self.offsets[-1], CONTEXT - BLOCK)


# --------------------------------------------------------------------------- the whole coder


@dataclass
class CoderOutput:
    reconstructions: list[torch.Tensor]  # image estimate after each stage
    codes: list[torch.Tensor]  # {-1, +1} codes of each stage
    inpainting: torch.Tensor  # the inpainting estimate (zeros without inpainting)
    stage_targets: list[torch.Tensor]  # what each stage's loss compares against
    stage_outputs: list[torch.Tensor]  # what each stage produced for that comparison


class ProgressiveCoder(nn.Module):
    """S stages (+ optional inpainting): residual encoder, R2I variants, or IR2I."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stages = nn.ModuleList([Stage(cfg) for _ in range(cfg.stages)])
        self.inpaint = InpaintNet(cfg.inpaint) if cfg.inpainting != "none" else None

    def stage_encode(
        self, s: int, residual: torch.Tensor, state: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage s (0-based): residual -> deterministic/stochastic code, encoder state."""
        values, feats = self.stages[s].encoder(residual, state)
        return binarize(values, stochastic=self.training), feats

    def stage_decode(
        self, s: int, code: torch.Tensor, inpainting: torch.Tensor, state: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Stage s (0-based): code -> (reconstruction, stage output, decoder state).

        The decoder state carries whatever the variant passes to the next stage: the
        decoding-layer features (full/decoding), the running sum of outputs (prediction) or the
        running reconstruction (residual). The reconstruction always includes the inpainting.
        """
        out, feats = self.stages[s].decoder(code, state if self._linked else None)
        mode = self.cfg.connections
        if mode in ("full", "decoding"):
            return out + inpainting, out, feats
        prev_sum = state[0] if state is not None else torch.zeros_like(out)
        total = prev_sum + out
        return total + inpainting, out, [total]

    @property
    def _linked(self) -> bool:
        return self.cfg.connections in ("full", "decoding")

    def forward(
        self, block: torch.Tensor, context: torch.Tensor | None = None, stages: int | None = None
    ) -> CoderOutput:
        if self.inpaint is not None:
            if context is None:
                raise ValueError("this model inpaints: pass the 64x64 context")
            inpainting = self.inpaint(context)
            if self.cfg.inpainting == "separate":
                inpainting = inpainting.detach()  # trained beforehand, frozen here
        else:
            inpainting = torch.zeros_like(block)
        residual = block - inpainting
        enc_state = dec_state = None
        recons, codes, targets, outputs = [], [], [], []
        for s in range(stages or self.cfg.stages):
            code, enc_state = self.stage_encode(s, residual, enc_state)
            recon, out, dec_state = self.stage_decode(s, code, inpainting, dec_state)
            if self.cfg.connections == "residual":
                targets.append(residual)  # eq. 1: each stage models the previous residual
                outputs.append(out)
            else:
                targets.append(block)  # eq. 2/4: each stage predicts the image itself
                outputs.append(recon)
            residual = block - recon
            recons.append(recon)
            codes.append(code)
        return CoderOutput(recons, codes, inpainting, targets, outputs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- post-filter


@dataclass(frozen=True)
class PostFilterConfig:
    """The decoder-side post-filter: ``width`` channels, ``layers`` 3x3 convolutions at half
    resolution (space-to-depth by 2 keeps it cheap per pixel and doubles its reach)."""

    width: int = 32
    layers: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


POSTFILTER_GUIDE = 3  # guide channels: stage count / 8, block-grid phase across, phase down


class PostFilter(nn.Module):
    """Decoded image (N,3,H,W) in [-0.5, 0.5] and guide (N,3,H,W) -> filtered image.

    H and W must be even. Residual: the network predicts a correction, zero-initialised
    in its last layer so that training starts from the unfiltered reconstruction.
    """

    def __init__(self, cfg: PostFilterConfig = PostFilterConfig()):
        super().__init__()
        self.cfg = cfg
        cin = 4 * (3 + POSTFILTER_GUIDE)
        widths = [cin] + [cfg.width] * (cfg.layers - 1)
        self.body = nn.ModuleList(_conv(a, b) for a, b in zip(widths, widths[1:]))
        self.head = nn.Conv2d(cfg.width, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def radius(self) -> int:
        """Pixels of context each output pixel depends on, on each side: ``layers`` 3x3
        convolutions at half resolution, plus the 2x2 grouping."""
        return 2 * self.cfg.layers + 1

    @property
    def halo(self) -> int:
        """Rows of context a band of the picture needs: the radius, rounded up to even so
        that bands keep the 2x2 grouping aligned."""
        return self.radius + self.radius % 2

    def forward(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(torch.cat([image, guide], 1), 2)
        for conv in self.body:
            x = _act(conv(x))
        return image + F.pixel_shuffle(self.head(x), 2)


@torch.no_grad()
def grown_postfilter(small: PostFilter, cfg: PostFilterConfig) -> PostFilter:
    """A wider and/or deeper filter that starts from ``small``'s function.

    Widening is exact: the new channels get fresh incoming weights and zero outgoing ones, so
    they change nothing until training gives them a use. Added layers go last in the body,
    as identity convolutions: exact on the positive activations, while the negative ones pass
    the leaky slope a second time (0.2 -> 0.04) - close, not exact, and the first steps
    recover it.
    """
    if cfg.width < small.cfg.width or cfg.layers < small.cfg.layers:
        raise ValueError(
            f"cannot grow a {small.cfg.width}x{small.cfg.layers} filter into "
            f"{cfg.width}x{cfg.layers}: both must stay or grow"
        )
    big = PostFilter(cfg)
    for old, new in zip(small.body, big.body):
        cout, cin = old.weight.shape[:2]
        new.weight[:, cin:] = 0  # fresh channels feed nothing yet
        new.weight[:cout, :cin] = old.weight
        new.bias[:cout] = old.bias
    for new in list(big.body)[len(small.body) :]:
        nn.init.dirac_(new.weight)
        nn.init.zeros_(new.bias)
    big.head.weight.zero_()
    big.head.weight[:, : small.cfg.width] = small.head.weight
    big.head.bias.copy_(small.head.bias)
    return big


@torch.no_grad()
def shrunk_postfilter(big: PostFilter, width: int) -> PostFilter:
    """A narrower filter cut from ``big``: each layer keeps its ``width`` most used
    channels, those whose incoming weights times outgoing weights are largest (a channel
    that is small or that the next layer barely reads changes little when dropped).

    Not exact: the dropped channels' contributions are lost, so it needs fine-tuning; it
    starts far closer to ``big``'s function than a fresh filter (a cheaper filter for the
    decoder's speed, issue "viewer speed")."""
    if not 0 < width <= big.cfg.width:
        raise ValueError(f"cannot shrink a {big.cfg.width}-channel filter to {width} channels")
    small = PostFilter(PostFilterConfig(width=width, layers=big.cfg.layers))
    readers = [*list(big.body)[1:], big.head]
    kept_in = torch.arange(big.body[0].weight.shape[1])  # the input channels: all
    for old, new, reader in zip(big.body, small.body, readers):
        incoming = old.weight[:, kept_in].flatten(1).norm(dim=1)
        outgoing = reader.weight.transpose(0, 1).flatten(1).norm(dim=1)
        kept = torch.sort(torch.topk(incoming * outgoing, width).indices).values
        new.weight.copy_(old.weight[kept][:, kept_in])
        new.bias.copy_(old.bias[kept])
        kept_in = kept
    small.head.weight.copy_(big.head.weight[:, kept_in])
    small.head.bias.copy_(big.head.bias)
    return small
