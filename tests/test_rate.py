"""The rate term of the training loss (training/rate.py) and rate control on coded costs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import smooth_image
from test_training import TINY, _train

from ir2icodec import entropy
from ir2icodec.codec import analyse, decode, encode
from ir2icodec.container import read_container
from ir2icodec.entropy import CodeLayout, _position_context
from ir2icodec.ratecontrol import allocate
from ir2icodec.training.rate import BitModel, fine_contexts, rate_term


def test_contexts_are_the_entropy_coders():
    rng = np.random.default_rng(0)
    bits, prev = rng.integers(0, 2, (2, 5, 8, 4, 4))
    layout = CodeLayout(8, 4, 4)
    for previous in (prev, None):
        ours = fine_contexts(
            torch.from_numpy(bits), None if previous is None else torch.from_numpy(previous)
        )
        ours = ours.reshape(5, -1).numpy()
        flat_prev = None if previous is None else previous.reshape(5, -1)
        for k in range(layout.bits):
            fine, _ = _position_context(layout, bits.reshape(5, -1), flat_prev, k)
            np.testing.assert_array_equal(ours[:, k], fine)


def test_the_rate_is_a_cross_entropy_in_bits_with_a_gradient_to_the_codes():
    model = BitModel(stages=2)
    codes = [torch.ones(3, 8, 4, 4, requires_grad=True), torch.ones(3, 8, 4, 4)]
    # Untrained tables: every bit costs exactly one bit.
    costs = model.stage_bits(codes)
    torch.testing.assert_close(costs[0], torch.full((3,), 128.0))
    assert float(rate_term(costs, 128).detach()) == pytest.approx(2.0)
    # Calibrated on all-ones codes, the tables predict them: a fraction of a bit each, and
    # the gradient pushes every code value towards +1 (the cheaper bit).
    model.calibrate([c.detach() for c in codes])
    costs = model.stage_bits(codes)
    assert float(costs[0].detach().mean()) < 128 * 0.5
    costs[0].sum().backward()
    assert (codes[0].grad < 0).all()


def test_a_rate_aware_run_logs_its_rate_and_keeps_its_bit_model(tmp_path, pack_file):
    out = tmp_path / "rate"
    r = _train(
        [
            "--pack",
            str(pack_file),
            "--out",
            str(out),
            "--steps",
            "2",
            "--loss",
            "mix",
            "--rate-weight",
            "0.02",
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr[-2000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log[-1]["rate"]) == 8 and 0 < min(log[-1]["rate"]) < 2
    assert np.isfinite(log[-1]["objective"])
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["bit_model"]["logits"].shape == (8, 8 * 81)
    assert best["best"] == pytest.approx(-min(e["objective"] for e in log))
    r = _train(
        [
            "--pack",
            str(pack_file),
            "--out",
            str(out),
            "--steps",
            "3",
            "--loss",
            "mix",
            "--rate-weight",
            "0.02",
            "--resume",
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_rate_weight_per_stage_scales_each_stages_cost(tmp_path, pack_file):
    costs = [torch.full((4,), 64.0), torch.full((4,), 32.0)]
    assert float(rate_term(costs, 128)) == pytest.approx(0.75)
    assert float(rate_term(costs, 128, (2.0, 0.0))) == pytest.approx(1.0)
    out = tmp_path / "scaled"
    args = ["--pack", str(pack_file), "--out", str(out), "--steps", "2", "--loss", "l2"]
    scales = ["--rate-weight", "0.5", "--rate-stage-scales", "4,0,0,0,0,0,0,0"]
    r = _train([*args, *scales, *TINY])
    assert r.returncode == 0, r.stderr[-2000:]
    entry = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()][-1]
    mse = [10 ** (-p / 10) for p in entry["psnr"]]  # the l2 objective's distortion
    expected = sum(mse) + 0.5 * 4 * entry["rate"][0]
    assert entry["objective"] == pytest.approx(expected, rel=1e-3)
    r = _train([*args, "--rate-weight", "0.5", "--rate-stage-scales", "1,1", *TINY])
    assert r.returncode != 0 and "needs 8 values" in r.stderr


def test_coded_costs_estimate_the_chunks_the_coder_writes(tiny_model):
    analysis = analyse(smooth_image(64, 96), tiny_model, keep_pixels=False, costs="coded")
    extra = analysis.stage_costs
    assert extra.shape == (6, 7) and (extra[:, 0] == 0).all()
    assert (np.diff(extra, axis=1) > 0).all()
    # Every block at 8 stages: the estimate of stages 3..8 is each chunk's ideal length,
    # within the range coder's few words of the real chunks.
    data = analysis.write(np.full(6, 8, np.uint8))
    layout = CodeLayout.for_block(32, 128)
    words = 0
    for s in range(2, 8):
        payload = entropy.encode_stage_bits(
            [analysis.stage_bits[s]], analysis.stage_bits[s - 1], layout
        )
        words += len(payload) // 4
    assert abs(extra[:, -1].sum() - 32 * words) < 32 * 2 * 6
    assert read_container(data).stages_found == 8


def test_allocation_takes_each_blocks_own_costs():
    distortion = np.array([[10.0, 5.0], [10.0, 5.0]])
    flat = allocate(distortion, 0.01, 128, 2)
    assert flat.tolist() == [3, 3]
    # The second block's next stage costs 10x more: it stays at 2 stages.
    own = allocate(distortion, 0.01, np.array([[0.0, 100.0], [0.0, 1000.0]]), 2)
    assert own.tolist() == [3, 2]


def test_a_file_allocated_on_coded_costs_decodes_to_its_own_reconstruction(tiny_model):
    img = smooth_image(64, 96)
    coded = encode(img, tiny_model, quality=50, costs="coded")
    np.testing.assert_array_equal(
        decode(coded.data, tiny_model, postfilter=False).rgb, coded.reconstruction
    )
