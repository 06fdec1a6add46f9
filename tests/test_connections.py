"""The four connection variants wired as the paper describes them (Sec. 2.1, Fig. 1).

- residual (Toderici et al.): stage s encodes the residual left by stages 1..s-1 and predicts
  that residual; the picture is the sum of the stages' outputs; no parametric links.
- prediction: R2I, every stage's loss is against the image; the stages' outputs are summed
  without parameters ("prediction connections"); no parametric links.
- full: every encoder and decoder layer of stage s-1 feeds the same layer of stage s through
  a learned 1x1 filter, added before that layer's non-linearity.
- decoding: the same, between decoder layers only.

Each test reads what each link really receives with forward hooks, and changes one stage's
features to see what moves.
"""

from __future__ import annotations

import pytest
import torch

from ir2icodec.training.nets import ProgressiveCoder, make_config


def _coder(connections: str) -> ProgressiveCoder:
    torch.manual_seed(0)
    cfg = make_config(
        "compact",
        connections=connections,
        inpainting="joint",
        stages=3,
        widths=(4, 8, 8),
        inpaint_layers=1,
        inpaint_filters_per_dilation=1,
    )
    coder = ProgressiveCoder(cfg).eval()
    with torch.no_grad():  # links start at zero (see nets._link): give them something to carry
        for name, p in coder.named_parameters():
            if ".links." in name:
                p.normal_(0, 0.3)
    return coder


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 32, 32, generator=g) - 0.5, torch.rand(2, 3, 64, 64, generator=g) - 0.5


def _link_inputs(coder: ProgressiveCoder, part: str, stage: int) -> list[torch.Tensor]:
    """What each link of ``stage``'s encoder or decoder receives in one forward pass."""
    got: list[torch.Tensor] = []
    links = getattr(coder.stages[stage], part).links
    hooks = [
        link.register_forward_hook(lambda m, args, out: got.append(args[0].clone()))
        for link in links
    ]
    coder(*_inputs())
    for h in hooks:
        h.remove()
    return got


def _features(coder: ProgressiveCoder, part: str, stage: int) -> list[torch.Tensor]:
    """The per-layer outputs of ``stage``'s encoder or decoder (what it passes on)."""
    got: list[list[torch.Tensor]] = []
    module = getattr(coder.stages[stage], part)
    hook = module.register_forward_hook(lambda m, args, out: got.append(list(out[1])))
    coder(*_inputs())
    hook.remove()
    return got[0]


@pytest.mark.parametrize("connections", ["residual", "prediction"])
def test_parameter_free_variants_have_no_links(connections):
    coder = _coder(connections)
    assert all(s.encoder.links is None and s.decoder.links is None for s in coder.stages)


def test_residual_stages_predict_the_residual_and_add_up():
    coder = _coder("residual")
    block, context = _inputs()
    out = coder(block, context)
    for s in range(1, 3):
        # Stage s is trained against what stages before it left, and adds its output.
        torch.testing.assert_close(out.stage_targets[s], block - out.reconstructions[s - 1])
        torch.testing.assert_close(
            out.reconstructions[s], out.reconstructions[s - 1] + out.stage_outputs[s]
        )


def test_prediction_connections_sum_the_stage_outputs_against_the_image():
    coder = _coder("prediction")
    block, context = _inputs()
    out = coder(block, context)
    decoded = [coder.stages[s].decoder(out.codes[s], None)[0] for s in range(3)]
    for s in range(3):
        assert out.stage_targets[s] is block  # R2I: every stage is judged on the image
        torch.testing.assert_close(out.reconstructions[s], sum(decoded[: s + 1]) + out.inpainting)


@pytest.mark.parametrize(
    "connections,parts", [("full", ("encoder", "decoder")), ("decoding", ("decoder",))]
)
def test_links_join_each_layer_to_the_same_layer_of_the_stage_before(connections, parts):
    coder = _coder(connections)
    for part in ("encoder", "decoder"):
        links = getattr(coder.stages[1], part).links
        assert (links is not None) == (part in parts), (connections, part)
    for part in parts:
        for s in (1, 2):
            received = _link_inputs(coder, part, s)
            sent = _features(coder, part, s - 1)
            assert len(received) == len(sent) == len(getattr(coder.stages[s], part).convs)
            for r, f in zip(received, sent):
                torch.testing.assert_close(r, f)
    # Stage 1 has no stage before it: its links are never used.
    for part in parts:
        assert _link_inputs(coder, part, 0) == []


@pytest.mark.parametrize("connections", ["full", "decoding"])
def test_what_a_later_stage_depends_on(connections):
    """Zeroing stage 1's links in one part changes stage 2 only where the paper wires it."""
    block, context = _inputs()
    coder = _coder(connections)
    base = coder(block, context)
    for part in ("encoder", "decoder"):
        changed = _coder(connections)
        links = getattr(changed.stages[1], part).links
        if links is None:
            continue
        with torch.no_grad():
            for link in links:
                link.weight.zero_()
        out = changed(block, context)
        if part == "encoder":  # stage 2's code depends on stage 1's encoder features
            assert not torch.equal(out.codes[1], base.codes[1]) or not torch.equal(
                out.reconstructions[1], base.reconstructions[1]
            )
        else:  # the same code, decoded without stage 1's decoder features: another picture
            torch.testing.assert_close(out.codes[1], base.codes[1])
            assert not torch.allclose(out.reconstructions[1], base.reconstructions[1])
        torch.testing.assert_close(out.reconstructions[0], base.reconstructions[0])


@pytest.mark.parametrize("kind", ["zero", "identity", "msra"])
def test_link_initialisations(kind):
    from ir2icodec.training.nets import init_links

    coder = _coder("full")
    n = init_links(coder, kind)
    links = [
        m.weight
        for name, m in coder.named_modules()
        if ".links." in f".{name}." and isinstance(m, torch.nn.Conv2d)
    ]
    assert n == len(links) == 3 * (3 + 4)  # every stage: 3 encoder and 4 decoder links
    for w in links:
        eye = torch.eye(w.shape[0]).view_as(w)
        if kind == "zero":
            assert not w.any()
        elif kind == "identity":
            torch.testing.assert_close(w, eye)
        else:
            assert w.std() > 0 and not torch.allclose(w, eye)
    assert init_links(_coder("residual"), kind) == 0
