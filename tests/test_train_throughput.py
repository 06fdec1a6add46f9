"""benchmarks.train_throughput runs for real (tiny settings) and reports every row."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from benchmarks import train_throughput

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(
    r"\| compact \| mix \| 4 \| (pack|photos) \| 1 \| 1 \| (fp32|bf16) \| eager \| "
    r"(\d+\.\d) \| (\d+\.\d) \|"
)


def test_table_has_a_positive_rate_for_each_sampler_and_out_writes_it(
    tmp_path, photo_dir, pack_file
):
    out = tmp_path / "results" / "table.md"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.train_throughput",
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--batches",
            "4",
            "--threads",
            "1",
            "--samplers",
            "pack,photos",
            "--precisions",
            "fp32,bf16",
            "--pack",
            str(pack_file),
            "--data",
            str(photo_dir),
            "--holdout-percent",
            "40",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = [ROW.fullmatch(line) for line in r.stdout.splitlines() if line.startswith("| compact")]
    assert all(rows), r.stdout
    assert [(m.group(1), m.group(2)) for m in rows] == [
        ("pack", "fp32"),
        ("pack", "bf16"),
        ("photos", "fp32"),
        ("photos", "bf16"),
    ]
    for m in rows:
        rate, ms = float(m.group(3)), float(m.group(4))
        assert rate > 0 and ms > 0
        assert rate == pytest.approx(4 * 1000 / ms, rel=0.02)  # windows/s = batch / step time
    assert (
        "| preset | loss | batch | sampler | processes | threads | precision | MS-SSIM term | "
        "windows/s | ms/step |" in r.stdout
    )
    assert out.read_text() == r.stdout


def test_a_failing_compile_is_a_failed_row_not_a_crash(monkeypatch, pack_file):
    def no_compiler(model, *args, **kwargs):
        raise RuntimeError("no C++ compiler found\nlong details")

    monkeypatch.setattr(torch, "compile", no_compiler)
    threads = torch.get_num_threads()
    try:
        r = CliRunner().invoke(
            train_throughput.main,
            [
                "--compile",
                "--seconds",
                "0.1",
                "--warmup",
                "1",
                "--batches",
                "2,4",
                "--threads",
                "1",
                "--samplers",
                "pack",
                "--pack",
                str(pack_file),
            ],
        )
    finally:
        torch.set_num_threads(threads)  # measure() sets it for the whole process
    assert r.exit_code == 0, r.output
    for batch in (2, 4):
        assert (
            f"| compact | mix | {batch} | pack | 1 | 1 | fp32 | eager | failed: RuntimeError: "
            "no C++ compiler found | - |"
        ) in r.output
    assert "long details" not in r.output.split("Training throughput")[-1]


def test_a_failing_msssim_compile_is_a_failed_row_beside_the_eager_one(monkeypatch, pack_file):
    def no_compiler(fn, *args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    threads = torch.get_num_threads()
    try:
        r = CliRunner().invoke(
            train_throughput.main,
            [
                "--msssim",
                "eager,compiled",
                "--seconds",
                "0.1",
                "--warmup",
                "1",
                "--batches",
                "4",
                "--threads",
                "1",
                "--samplers",
                "pack",
                "--pack",
                str(pack_file),
            ],
        )
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    assert re.search(
        r"\| compact \| mix \| 4 \| pack \| 1 \| 1 \| fp32 \| eager \| \d+\.\d \|", r.output
    ), r.output
    assert (
        "| compact | mix | 4 | pack | 1 | 1 | fp32 | compiled | failed: RuntimeError: no C++ "
        "compiler found | - |"
    ) in r.output


def test_two_data_parallel_processes_count_the_windows_of_both(pack_file):
    """--processes 2 spawns two DDP (gloo) processes; each step is two batches of windows."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.train_throughput",
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--batches",
            "4",
            "--threads",
            "1",
            "--processes",
            "2",
            "--samplers",
            "pack",
            "--precisions",
            "bf16",
            "--pack",
            str(pack_file),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    row = re.search(
        r"\| compact \| mix \| 4 \| pack \| 2 \| 1 \| bf16 \| eager \| (\d+\.\d) \| "
        r"(\d+\.\d) \|",
        r.stdout,
    )
    assert row, r.stdout
    rate, ms = float(row.group(1)), float(row.group(2))
    assert rate == pytest.approx(2 * 4 * 1000 / ms, rel=0.02)
