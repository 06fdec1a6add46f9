"""Training runs for real: one process, resume, and 2-process DistributedDataParallel (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from ir2icodec.training.data import PatchSampler, make_training_pair, split_images
from ir2icodec.training.nets import ProgressiveCoder, make_config
from ir2icodec.training.train import coder_loss, selection_metric, warm_start

TINY = [
    "--widths",
    "4,8,8",
    "--filters-per-dilation",
    "1",
    "--batch",
    "4",
    "--holdout-percent",
    "40",
    "--val-every",
    "2",
    "--threads",
    "1",
]


def _train(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "ir2icodec.training.train"]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "ir2icodec.training.train",
        ]
    return subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=300)


def test_train_then_resume(tmp_path, photo_dir):
    out = tmp_path / "run"
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 2
    assert (out / "best.pt").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and len(log[-1]["psnr"]) == 8
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "4", "--resume", *TINY])
    assert r.returncode == 0, r.stderr
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 4


def test_two_process_ddp_step(tmp_path, photo_dir):
    out = tmp_path / "ddp"
    r = _train(["--data", str(photo_dir), "--out", str(out), "--steps", "2", *TINY], nproc=2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 2


def test_sampler_windows_and_holdout(photo_dir):
    files = sorted(photo_dir.glob("*.png"))
    train, held = split_images(files, 40.0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(files)
    assert split_images(files, 40.0) == (train, held)  # stable
    blocks, contexts = PatchSampler(train).sample(np.random.default_rng(0), 10)
    assert blocks.shape == (10, 3, 32, 32) and contexts.shape == (10, 3, 64, 64)
    assert np.all(contexts[:, :, 32:, 32:] == 0)
    assert blocks.min() >= -0.5 and blocks.max() <= 0.5


@pytest.mark.parametrize("connections", ["residual", "prediction", "full", "decoding"])
def test_a_few_steps_reduce_the_loss(connections):
    torch.manual_seed(0)
    cfg = make_config(
        "compact",
        widths=(8, 8, 8),
        inpaint_filters_per_dilation=1,
        inpaint_layers=2,
        connections=connections,
        stages=3,
    )
    coder = ProgressiveCoder(cfg)
    windows = np.stack([smooth_image(64, 64, seed=i) for i in range(8)])
    blocks, contexts = (torch.from_numpy(a) for a in make_training_pair(windows))
    opt = torch.optim.Adam(coder.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = coder_loss(coder(blocks, contexts), blocks, "l2", joint=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_msssim_loss_runs():
    coder = ProgressiveCoder(
        make_config(
            "compact", widths=(4, 8, 8), stages=2, inpaint_filters_per_dilation=1, inpaint_layers=2
        )
    )
    windows = np.stack([smooth_image(64, 64, seed=i) for i in range(4)])
    blocks, contexts = (torch.from_numpy(a) for a in make_training_pair(windows))
    for kind in ("msssim", "mix"):
        loss = coder_loss(coder(blocks, contexts), blocks, kind, joint=True)
        loss.backward()
        assert torch.isfinite(loss)


def test_inpainting_alone_selects_checkpoints_on_inpainting(tmp_path, photo_dir):
    out = tmp_path / "inp"
    r = _train(
        ["--data", str(photo_dir), "--out", str(out), "--steps", "2", "--stages", "0", *TINY]
    )
    assert r.returncode == 0, r.stderr
    log = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert log["psnr"] == [] and log["mean_psnr"] == log["inpaint_psnr"]
    assert (out / "best.pt").exists()


def test_warm_start_copies_what_fits_and_names_the_rest():
    small = ProgressiveCoder(
        make_config(
            "compact", widths=(4, 8, 8), stages=2, inpaint_filters_per_dilation=1, inpaint_layers=4
        )
    )
    deeper = ProgressiveCoder(
        make_config(
            "compact", widths=(4, 8, 8), stages=2, inpaint_filters_per_dilation=1, inpaint_layers=2
        )
    )
    fresh = warm_start(deeper, small.state_dict())
    # Fewer layers of the same width: every tensor of the shallower net has a twin.
    assert fresh == []
    for k, v in deeper.state_dict().items():
        if k not in fresh:
            assert torch.equal(v, small.state_dict()[k])
    wider = ProgressiveCoder(
        make_config(
            "compact", widths=(4, 8, 8), stages=2, inpaint_filters_per_dilation=2, inpaint_layers=2
        )
    )
    fresh = warm_start(wider, small.state_dict())
    assert fresh and all(k.startswith("inpaint.") for k in fresh)


def test_selection_follows_the_loss():
    assert selection_metric("l2", 8) == "mean_psnr"
    assert selection_metric("mix", 8) == "mean_msssim"
    assert selection_metric("msssim", 0) == "mean_psnr"  # inpainting alone: its PSNR


def test_cli_inpaint_layers_and_init(tmp_path, photo_dir):
    first = tmp_path / "first"
    r = _train(["--data", str(photo_dir), "--out", str(first), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    second = tmp_path / "second"
    r = _train(
        [
            "--data",
            str(photo_dir),
            "--out",
            str(second),
            "--steps",
            "2",
            "--inpaint-layers",
            "3",
            "--init",
            str(first / "last.pt"),
            "--loss",
            "mix",
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr
    config = json.loads((second / "config.json").read_text())
    assert config["model"]["inpaint"]["layers"] == 3
    assert config["warm_start_fresh_tensors"] == []  # layers 0-2 and the final conv all fit
    logs = [json.loads(line) for line in (second / "log.jsonl").read_text().splitlines()]
    assert logs[0]["step"] == 0 and logs[0]["loss"] is None  # the warm start is scored too
    assert 0 < logs[-1]["mean_msssim"] <= 1 and len(logs[-1]["msssim"]) == 8
    best = max(log["mean_msssim"] for log in logs)
    assert torch.load(second / "best.pt", weights_only=False)["best"] == best


def test_cli_cycled_inpainting_starts_from_another_runs_inpainting(tmp_path, photo_dir):
    """The fast inpainting network: trained alone, then under a coder warm-started from
    another run whose inpainting network has another shape (--init-inpaint replaces it)."""
    alone = tmp_path / "alone"
    cycled = ["--inpaint-kind", "cycled", "--inpaint-layers", "3", "--inpaint-dilations", "4,2,1"]
    r = _train(
        [
            "--data",
            str(photo_dir),
            "--out",
            str(alone),
            "--steps",
            "2",
            "--stages",
            "0",
            *cycled,
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr
    shape = json.loads((alone / "config.json").read_text())["model"]["inpaint"]
    assert shape["kind"] == "cycled" and shape["dilations"] == [4, 2, 1]
    coder, joint = tmp_path / "coder", tmp_path / "joint"
    r = _train(["--data", str(photo_dir), "--out", str(coder), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    r = _train(
        [
            "--data",
            str(photo_dir),
            "--out",
            str(joint),
            "--steps",
            "1",
            *cycled,
            "--init",
            str(coder / "last.pt"),
            "--init-inpaint",
            str(alone / "last.pt"),
            *TINY,
        ]
    )
    assert r.returncode == 0, r.stderr
    config = json.loads((joint / "config.json").read_text())
    assert all(t.startswith("inpaint.") for t in config["warm_start_fresh_tensors"])
    start = torch.load(alone / "last.pt", weights_only=False)["model"]
    got = torch.load(joint / "last.pt", weights_only=False)["model"]
    inpaint = [n for n in start if n.startswith("inpaint.")]
    assert inpaint and all(n in got for n in inpaint)
    # one Adam step (LR 1e-3) from the alone run's network, not a fresh one
    assert max((got[n] - start[n]).abs().max().item() for n in inpaint) <= 1.01e-3


def test_cli_inpaint_teacher_makes_the_teachers_predictions_the_target(tmp_path, photo_dir):
    """--inpaint-teacher (distillation): a student that starts as the teacher's copy and does
    not move (LR ~0) has nothing left to learn; against the blocks it has."""
    teacher = tmp_path / "teacher"
    r = _train(["--data", str(photo_dir), "--out", str(teacher), "--steps", "2", *TINY])
    assert r.returncode == 0, r.stderr
    losses = {}
    for name, extra in (
        ("distilled", ["--inpaint-teacher", str(teacher / "last.pt")]),
        ("plain", []),
    ):
        out = tmp_path / name
        args = ["--data", str(photo_dir), "--out", str(out), "--steps", "2", "--stages", "0"]
        args += ["--init-inpaint", str(teacher / "last.pt"), "--lr", "1e-12", *extra, *TINY]
        r = _train(args)
        assert r.returncode == 0, r.stderr
        logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        losses[name] = logs[-1]["loss"]
    assert losses["distilled"] < 1e-8 < 1e-4 < losses["plain"]
    r = _train(
        [
            "--data",
            str(photo_dir),
            "--out",
            str(tmp_path / "bad"),
            "--steps",
            "1",
            "--inpaint-teacher",
            str(teacher / "last.pt"),
            *TINY,
        ]
    )
    assert r.returncode != 0 and "--stages 0" in r.stderr


def test_holdout_photos_are_written_for_model_selection(tmp_path, photo_dir):
    out = tmp_path / "held"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ir2icodec.training.holdout",
            "--data",
            str(photo_dir),
            "--out",
            str(out),
            "--holdout-percent",
            "40",
            "--scale",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    _, held = split_images(sorted(photo_dir.glob("*.png")), 40.0)
    assert held and sorted(p.name for p in out.iterdir()) == sorted(p.name for p in held)
    with Image.open(held[0]) as src, Image.open(out / held[0].name) as small:
        assert small.size == (round(src.width * 0.5), round(src.height * 0.5))


def test_all_photos_held_out_is_a_clear_error(tmp_path, photo_dir):
    r = _train(
        [
            "--data",
            str(photo_dir),
            "--out",
            str(tmp_path / "r"),
            "--steps",
            "1",
            "--holdout-percent",
            "100",
            "--threads",
            "1",
        ]
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "held out" in r.stderr.strip().splitlines()[-1]


def test_weights_recovered_from_a_bundle_re_export_byte_identically(tmp_path):
    """The shipped bundle is the copy of a model that always survives: its ONNX initializers
    rebuild the torch coder (for --init), and exporting that gives the same bundle."""
    import json

    from conftest import tiny_coder

    from ir2icodec.training.export import export_bundle
    from ir2icodec.training.recover import coder_from_bundle
    from ir2icodec.training.train import load_weights

    trained = tiny_coder(seed=3)
    with torch.no_grad():  # distinct values, as training leaves them (the exporter merges
        for p in trained.parameters():  # initializers that are exactly equal)
            p.add_(torch.randn_like(p) * 0.01)
    first = export_bundle(trained, tmp_path / "a", "tiny")
    coder, missing = coder_from_bundle(tmp_path / "a")
    # only stage 1's decoder links, which no graph uses, are absent
    assert all(name.startswith("stages.0.decoder.links.") for name in missing)
    again = export_bundle(coder, tmp_path / "b", "tiny")
    assert again["digest"] == first["digest"]
    weights = load_weights(str(tmp_path / "a"), torch.device("cpu"))
    own = trained.state_dict()
    for name, value in weights.items():
        torch.testing.assert_close(value, own[name])
    assert json.loads((tmp_path / "b" / "model.json").read_text())["files"] == first["files"]


def _direct_block_msssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss's block MS-SSIM written out plainly: a 2-D 3x3 Gaussian (sigma 1.5)
    per channel, 3 scales with MS-SSIM's first three weights, luminance at the last."""
    t = torch.arange(3, dtype=torch.float32) - 1
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, 3, 3)
    weights = torch.tensor([0.0448, 0.2856, 0.3001])
    weights = weights / weights.sum()
    x, y = x + 0.5, y + 0.5
    result = torch.ones(x.shape[0])
    for i in range(3):

        def blur(a):
            return torch.nn.functional.conv2d(a, kernel, groups=3)

        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        cs = ((2 * cov + 0.03**2) / (vx + vy + 0.03**2)).mean(dim=(1, 2, 3))
        if i == 2:
            cs = cs * ((2 * mx * my + 0.01**2) / (mx**2 + my**2 + 0.01**2)).mean(dim=(1, 2, 3))
        result = result * torch.relu(cs) ** weights[i]
        x, y = (torch.nn.functional.avg_pool2d(a, 2) for a in (x, y))
    return result.mean()


def test_block_msssim_with_the_reference_computed_once_matches_a_direct_computation():
    from ir2icodec.training.train import block_msssim, msssim_reference

    gen = torch.Generator().manual_seed(0)
    block = torch.rand(6, 3, 32, 32, generator=gen) - 0.5
    reference = msssim_reference(block)
    for noise in (0.02, 0.1, 0.3):  # as the stages of one batch share one reference
        recon = (block + noise * torch.randn(block.shape, generator=gen)).clamp(-0.5, 0.5)
        expected = _direct_block_msssim(recon, block)
        assert block_msssim(recon, block, reference=reference) == pytest.approx(
            expected.item(), abs=1e-6
        )
        assert block_msssim(recon, block) == pytest.approx(expected.item(), abs=1e-6)
    assert block_msssim(block, block, reference=reference) == pytest.approx(1.0, abs=1e-5)


def test_compiled_msssim_gives_the_eager_loss_and_gradient():
    """train --compile-loss: the same MS-SSIM term and gradient, from fused kernels."""
    from ir2icodec.training.train import block_msssim, compiled_msssim, msssim_reference

    gen = torch.Generator().manual_seed(1)
    block = (torch.rand(8, 3, 32, 32, generator=gen) - 0.5).contiguous(
        memory_format=torch.channels_last
    )
    noisy = (block + 0.1 * torch.randn(block.shape, generator=gen)).clamp(-0.5, 0.5)
    reference = msssim_reference(block)
    values, grads = [], []
    for msssim in (block_msssim, compiled_msssim()):
        recon = noisy.clone().requires_grad_()
        value = msssim(recon, block, reference=reference)
        value.backward()
        values.append(value.detach())
        grads.append(recon.grad)
    torch.testing.assert_close(values[1], values[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-9)
    assert grads[0].abs().max() > 0


@pytest.mark.parametrize("preset", ["compact", "large"])
def test_inpainting_under_cpu_autocast_is_bf16_only_where_onednn_gets_it_right(preset):
    """compact's inpainting (3 and 8 input channels) runs in bf16 under autocast, with
    gradients within 5% of fp32's; large's (24 input channels, where oneDNN's bf16 dilated
    convolutions crash or give NaN) stays in fp32 and trains."""
    from ir2icodec.training.nets import BF16_CPU_MAX_WIDTH, InpaintNet

    torch.manual_seed(0)
    cfg = make_config(preset, **({"inpaint_layers": 4} if preset == "compact" else {}))
    net = InpaintNet(cfg.inpaint).to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    context = (torch.rand(4, 3, 64, 64, generator=gen) - 0.5).contiguous(
        memory_format=torch.channels_last
    )
    context[:, :, 32:, 32:] = 0
    grads = {}
    for low in (True, False):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            out = net(context)
        if low:
            low_dtype = out.dtype
        grads[low] = torch.autograd.grad(out.float().square().sum(), list(net.parameters()))
    expected_low = net.widest_input <= BF16_CPU_MAX_WIDTH
    assert expected_low == (preset == "compact")
    assert low_dtype == (torch.bfloat16 if expected_low else torch.float32)
    low, full = (torch.cat([g.flatten().float() for g in grads[k]]) for k in (True, False))
    assert torch.isfinite(low).all()
    assert (low - full).norm() <= 0.05 * full.norm()  # all gradients together: bf16 rounding


def _ddp_worker(rank: int, port: int, out: str) -> None:
    """Three steps of the trainer's data-parallel model, each process on its own windows;
    then the weights of both processes, gathered on rank 0."""
    import torch.distributed as dist

    from ir2icodec.training.train import data_parallel, train_step

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)  # the same start on both, as DDP broadcasts anyway
    model = ProgressiveCoder(
        make_config(
            "compact", widths=(4, 8, 8), stages=3, inpaint_filters_per_dilation=1, inpaint_layers=2
        )
    )
    net = data_parallel(model)
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    windows = np.stack([smooth_image(64, 64, seed=10 * rank + i) for i in range(4)])
    blocks, contexts = (torch.from_numpy(a) for a in make_training_pair(windows))
    torch.manual_seed(rank)  # different binarizer noise per process, as in training
    start = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    for _ in range(3):
        train_step(net, optim, blocks, contexts, "mix", joint=True, bf16=False)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(weights) for _ in range(2)]
    dist.all_gather(gathered, weights)
    if rank == 0:
        torch.save({"start": start, "ranks": gathered}, out)
    dist.barrier()
    dist.destroy_process_group()


def test_data_parallel_processes_keep_identical_weights(tmp_path):
    """Gradients are averaged across processes at every step, so both processes hold the same
    weights after training on different windows, and the weights did move. (DDP's
    static_graph=True fails this: the processes drift apart.)"""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "weights.pt"
    mp.start_processes(_ddp_worker, args=(port, str(out)), nprocs=2, start_method="spawn")
    result = torch.load(out)
    first, second = result["ranks"]
    assert torch.equal(first, second)
    assert not torch.equal(first, result["start"])
