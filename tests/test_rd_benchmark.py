"""BD-rate (ir2icodec.bdrate) and the rate-distortion benchmark (ir2icodec.bench.rd, also
``python -m ir2icodec.bench.rd`` and ``ir2i bench``)."""

from __future__ import annotations

import csv
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ir2icodec.bdrate import (
    average_curve,
    bd_rate,
    bd_rate_in_window,
    bd_rate_of_averages,
    clip_to_rate_window,
    mean_bd_rate,
)
from ir2icodec.bench import codecs, rd, report
from ir2icodec.imageio import load_rgb
from ir2icodec.metrics import psnr

# A plausible RD curve: bpp and PSNR-like quality growing with log-rate.
RATES = np.array([0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.4])
QUALS = 30 + 6 * np.log2(RATES) + 0.3 * np.log2(RATES) ** 2


# ---------------------------------------------------------------- BD-rate


def test_curve_against_itself_is_zero() -> None:
    assert bd_rate(RATES, QUALS, RATES, QUALS) == pytest.approx(0.0, abs=1e-12)
    assert bd_rate_in_window((RATES, QUALS), (RATES, QUALS)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor", [0.9, 0.5, 1.2])
def test_scaled_rate_gives_that_percentage(factor: float) -> None:
    expected = 100 * (factor - 1)
    assert bd_rate(RATES, QUALS, factor * RATES, QUALS) == pytest.approx(expected, abs=1e-9)
    # Clipping to the window moves the end points a little but not the answer much.
    windowed = bd_rate_in_window((RATES, QUALS), (factor * RATES, QUALS), (0.125, 1.0))
    assert windowed == pytest.approx(expected, abs=0.5)


def test_better_curve_is_negative_and_worse_positive() -> None:
    assert bd_rate(RATES, QUALS, RATES, QUALS + 1.0) < 0
    assert bd_rate(RATES, QUALS, RATES, QUALS - 1.0) > 0


def test_order_of_points_and_duplicate_qualities_do_not_matter() -> None:
    perm = np.random.default_rng(0).permutation(RATES.size)
    assert bd_rate(RATES, QUALS, 0.9 * RATES[perm], QUALS[perm]) == pytest.approx(-10.0)
    rates = np.append(RATES, 0.9 * RATES[3])  # a second point at an existing quality
    quals = np.append(QUALS, QUALS[3])
    assert math.isfinite(bd_rate(RATES, QUALS, rates, quals))


def test_non_overlapping_or_degenerate_curves_give_nan() -> None:
    assert math.isnan(bd_rate(RATES, QUALS, RATES, QUALS + 100))
    assert math.isnan(bd_rate(RATES, QUALS, [0.5], [30.0]))
    assert math.isnan(bd_rate_in_window((RATES, QUALS), (RATES + 5, QUALS), (0.125, 1.0)))


def test_malformed_input_raises() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        bd_rate(RATES, QUALS[:-1], RATES, QUALS)
    with pytest.raises(ValueError, match="positive"):
        bd_rate(RATES - 1, QUALS, RATES, QUALS)
    with pytest.raises(ValueError, match="finite"):
        bd_rate(RATES, np.append(QUALS[:-1], np.inf), RATES, QUALS)


def test_clip_interpolates_edges_in_log_rate_and_does_not_extrapolate() -> None:
    r, q = clip_to_rate_window([0.1, 0.4, 2.0], [10.0, 20.0, 30.0], 0.2, 1.0)
    assert r.tolist() == [0.2, 0.4, 1.0]
    assert q[0] == pytest.approx(15.0)  # 0.2 is halfway from 0.1 to 0.4 in log-rate
    w = math.log(1.0 / 0.4) / math.log(2.0 / 0.4)
    assert q[2] == pytest.approx(20.0 + 10.0 * w)
    r, q = clip_to_rate_window([0.3, 0.6], [1.0, 2.0], 0.125, 1.0)
    assert r.tolist() == [0.3, 0.6] and q.tolist() == [1.0, 2.0]


def test_averaging_helpers() -> None:
    curves = [(RATES, QUALS), (2 * RATES, QUALS + 2)]
    r, q = average_curve(curves)
    np.testing.assert_allclose(r, 1.5 * RATES)
    np.testing.assert_allclose(q, QUALS + 1)
    better = [(0.8 * c[0], c[1]) for c in curves]
    assert bd_rate_of_averages(curves, better, None) == pytest.approx(-20.0)
    pairs = [(c, b) for c, b in zip(curves, better, strict=True)]
    pairs.append(((RATES, QUALS), (RATES, QUALS + 100)))  # undefined: left out of the mean
    mean, n = mean_bd_rate(pairs, None)
    assert mean == pytest.approx(-20.0) and n == 2
    with pytest.raises(ValueError, match="different numbers"):
        average_curve([(RATES, QUALS), (RATES[:-1], QUALS[:-1])])


# ---------------------------------------------------------------- benchmark


def _synthetic_image(seed: int, size: int = 192) -> np.ndarray:
    """Smooth gradients, a few edges and some texture: compresses like a photo, roughly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([120 + 80 * np.sin(3 * x + c + seed) * np.cos(2 * y - c) for c in range(3)], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, size - 40, 2)
        img[y0 : y0 + 40, x0 : x0 + 40] = rng.integers(0, 256, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(_synthetic_image(i)).save(data / f"img{i}.png")
    (data / "README.txt").write_text("not an image")
    return data


def test_end_to_end_jpeg_webp(image_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = rd.main(["--data", str(image_dir), "--out", str(out), "--codecs", "jpeg,webp"])
    assert code == 0
    assert "skipping README.txt" in capsys.readouterr().err

    with (out / rd.CSV_NAME).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "codec", "setting", "bytes", "bpp", "psnr", "ssim", "ms_ssim"]
    expected = 2 * (len(codecs.JPEG_QUALITIES) + len(codecs.WEBP_QUALITIES))
    assert len(rows) == expected
    for row in rows:
        assert float(row["bpp"]) == pytest.approx(8 * int(row["bytes"]) / 192**2)
        assert 0 < float(row["ms_ssim"]) <= 1 and float(row["psnr"]) > 10
    assert rd.read_csv(out / rd.CSV_NAME)[0].codec == rows[0]["codec"]

    table = (out / rd.TABLE_NAME).read_text()
    assert "| jpeg | +0.0% | +0.0% | +0.0% | +0.0% | 2 |" in table
    webp_row = next(line for line in table.splitlines() if line.startswith("| webp |"))
    assert "n/a" not in webp_row

    with Image.open(out / rd.PLOT_NAME) as im:
        assert im.format == "PNG" and im.width > 500

    # Re-measure JPEG alone, keeping the earlier run's WebP points.
    again = tmp_path / "again"
    assert (
        rd.main(
            [
                "--data",
                str(image_dir),
                "--out",
                str(again),
                "--codecs",
                "jpeg",
                "--keep",
                str(out / rd.CSV_NAME),
            ]
        )
        == 0
    )
    merged = rd.read_csv(again / rd.CSV_NAME)
    assert sorted(p.codec for p in merged) == sorted(r["codec"] for r in rows)
    assert "| webp |" in (again / rd.TABLE_NAME).read_text()

    # --keep-as: the earlier JPEG points stay, renamed, beside the re-measured ones.
    beside = tmp_path / "beside"
    argv = ["--data", str(image_dir), "--out", str(beside), "--codecs", "jpeg"]
    keep = ["--keep", str(out / rd.CSV_NAME), "--keep-as", "jpeg=jpeg-before"]
    assert rd.main(argv + keep) == 0
    names = [p.codec for p in rd.read_csv(beside / rd.CSV_NAME)]
    assert names.count("jpeg-before") == names.count("jpeg") == 2 * len(codecs.JPEG_QUALITIES)
    assert (
        "| jpeg-before | +0.0% | +0.0% | +0.0% | +0.0% | 2 |"
        in (beside / rd.TABLE_NAME).read_text()
    )
    assert rd.main(argv + ["--keep-as", "jpeg=x"]) != 0  # needs --keep
    assert rd.main(argv + keep[:2] + ["--keep-as", "jpeg"]) != 0  # not OLD=NEW


def test_parallel_jobs_give_the_same_points(image_dir: Path) -> None:
    images, _ = rd.find_images(image_dir)
    serial, ok1 = rd.run_benchmark(images, ["jpeg"], jobs=1, progress=False)
    parallel, ok2 = rd.run_benchmark(images, ["jpeg"], jobs=2, progress=False)
    assert ok1 and ok2 and serial == parallel


def test_bd_rates_from_points() -> None:
    points = []
    for image in ("a", "b"):
        for k, (r, q) in enumerate(zip(RATES, QUALS, strict=True)):
            ms = 1 - 10 ** (-q / 30)  # any increasing map into (0, 1)
            points.append(rd.RDPoint(image, "jpeg", str(k), 1, r, q, ms, ms))
            points.append(rd.RDPoint(image, "same", str(k), 1, r, q, ms, ms))
            points.append(rd.RDPoint(image, "better", str(k), 1, 0.7 * r, q, ms, ms))
    rows = {(r.codec, r.metric): r for r in report.bd_rates(points, anchor="jpeg")}
    for metric in ("MS-SSIM", "PSNR"):
        assert rows[("same", metric)].per_image_mean == pytest.approx(0.0, abs=1e-12)
        assert rows[("same", metric)].on_average_curve == pytest.approx(0.0, abs=1e-12)
        assert rows[("better", metric)].per_image_mean < -20
        assert rows[("better", metric)].on_average_curve < -20
        assert rows[("better", metric)].n_images == 2

    # A third image too small for MS-SSIM (nan) leaves the MS-SSIM averages to the others.
    for k, (r, q) in enumerate(zip(RATES, QUALS, strict=True)):
        points.append(rd.RDPoint("tiny", "jpeg", str(k), 1, r, q, math.nan, math.nan))
        points.append(rd.RDPoint("tiny", "better", str(k), 1, 0.5 * r, q, math.nan, math.nan))
    again = {(r.codec, r.metric): r for r in report.bd_rates(points, anchor="jpeg")}
    assert again[("better", "MS-SSIM")].n_images == 2
    assert again[("better", "MS-SSIM")].on_average_curve == pytest.approx(
        rows[("better", "MS-SSIM")].on_average_curve
    )
    assert again[("better", "PSNR")].n_images == 3


def test_missing_plugins_and_model_are_skipped_not_fatal(monkeypatch) -> None:
    registry = codecs.codec_registry()
    assert set(registry) == set(codecs.ALL_CODECS + codecs.EXTRA_CODECS)
    missing = codecs.PillowCodec("x", "NOPE", (1,), lambda q: {}, plugin="no_such_plugin_module")
    with pytest.raises(codecs.CodecUnavailable, match="no_such_plugin_module"):
        missing.open()
    monkeypatch.setitem(sys.modules, "ir2icodec.codec", None)  # import now fails
    sessions, warnings = rd.open_sessions(["jpeg", "ir2i"], None)
    assert list(sessions) == ["jpeg"]
    assert any("skipping codec ir2i" in w for w in warnings)


def _fake_ir2i(monkeypatch, load_model) -> None:
    """Stand-in ir2icodec.codec/runtime modules whose model loading is ``load_model``."""
    jpeg = codecs.codec_registry()["jpeg"].open()
    codec = types.ModuleType("ir2icodec.codec")
    codec.analyse = lambda rgb, model: None
    codec.decode = lambda data, model, **kw: types.SimpleNamespace(rgb=jpeg.decode(data))
    runtime = types.ModuleType("ir2icodec.runtime")
    runtime.load_model = load_model
    monkeypatch.setitem(sys.modules, "ir2icodec.codec", codec)
    monkeypatch.setitem(sys.modules, "ir2icodec.runtime", runtime)


def test_ir2i_adapters_measure_the_files_the_encoder_writes(
    image_dir: Path, tiny_bundle: str
) -> None:
    """ir2i sweeps --quality (rate control), ir2i-uniform sweeps --stages; each point is
    byte for byte the file ``encode`` writes with that setting."""
    from ir2icodec.codec import decode, encode
    from ir2icodec.runtime import load_model

    images, _ = rd.find_images(image_dir)
    points, ok = rd.run_benchmark(
        images[:1], ["ir2i", "ir2i-uniform"], model_path=tiny_bundle, progress=False
    )
    assert ok
    quality = [p for p in points if p.codec == "ir2i"]
    uniform = [p for p in points if p.codec == "ir2i-uniform"]
    assert [p.setting for p in quality] == [str(q) for q in codecs.IR2I_QUALITIES]
    assert [p.setting for p in uniform] == [str(k) for k in range(2, 9)]
    model = load_model(tiny_bundle)
    rgb = load_rgb(images[0])
    for p in quality[::3] + uniform[::3]:
        setting = {"quality": float(p.setting)} if p.codec == "ir2i" else {"stages": int(p.setting)}
        data = encode(rgb, model, **setting).data
        assert p.bytes == len(data)
        assert p.psnr == pytest.approx(psnr(rgb, decode(data, model).rgb))


def test_ir2i_without_a_model_is_skipped(monkeypatch) -> None:
    def no_model(path=None, device="auto"):
        raise FileNotFoundError("no shipped model")

    _fake_ir2i(monkeypatch, no_model)
    sessions, warnings = rd.open_sessions(["ir2i", "jpeg"], None)
    assert list(sessions) == ["jpeg"]
    assert any("no usable model" in w and "no shipped model" in w for w in warnings)


def test_a_failing_codec_is_reported_and_others_continue(image_dir: Path) -> None:
    class Broken:
        def encode(self, rgb: np.ndarray, setting: float) -> bytes:
            raise RuntimeError("boom")

        def decode(self, data: bytes) -> np.ndarray:
            raise AssertionError("unreachable")

    sessions = {"webp": Broken(), "jpeg": codecs.codec_registry()["jpeg"].open()}
    result = rd.measure_image(image_dir / "img0.png", ["webp", "jpeg"], sessions)
    assert len(result.failures) == 1 and "boom" in result.failures[0]
    assert {p.codec for p in result.points} == {"jpeg"}


def test_small_images_get_nan_ms_ssim(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(_synthetic_image(3, size=64)).save(path)
    sessions = {"jpeg": codecs.codec_registry()["jpeg"].open()}
    result = rd.measure_image(path, ["jpeg"], sessions)
    assert result.points and all(math.isnan(p.ms_ssim) for p in result.points)
    assert all(math.isfinite(p.ssim) for p in result.points)
    assert any("MS-SSIM needs" in w for w in result.warnings)


def test_missing_bench_extra_is_one_line_naming_it(
    monkeypatch, image_dir: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from ir2icodec.cli import cli

    monkeypatch.setattr(rd, "_REQUIRED_MODULES", ("scipy", "no_such_module_here"))
    r = CliRunner().invoke(cli, ["bench", "--data", str(image_dir), "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "ir2i: error: the rate-distortion benchmark needs no_such_module_here: "
        "pip install 'ir2i[bench]'"
    ]


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-m", "ir2icodec.bench.rd", "--out", str(tmp_path), "--codecs", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: unknown codec(s) nope; known: ir2i")


def test_the_report_says_where_each_curve_ends() -> None:
    """A codec whose curves stop early is compared only up to there: the report's second
    table gives each codec's highest-rate point, averaged over the images."""
    points = []
    for image, shift in (("a", 0.0), ("b", 2.0)):
        for k, (r, q) in enumerate(zip(RATES, QUALS, strict=True)):
            ms = 1 - 10 ** (-(q + shift) / 30)
            points.append(rd.RDPoint(image, "jpeg", str(k), 1, r, q + shift, ms, ms))
            if k < 2:  # the short codec stops after two settings
                points.append(rd.RDPoint(image, "short", str(k), 1, r, q + shift, ms, ms))
    tops = {t.codec: t for t in report.curve_tops(points)}
    last, second = len(RATES) - 1, 1
    assert tops["jpeg"].bpp == pytest.approx(RATES[last])
    assert tops["jpeg"].psnr == pytest.approx(QUALS[last] + 1.0)  # the mean of q and q + 2
    assert tops["short"].bpp == pytest.approx(RATES[second])
    assert tops["short"].psnr == pytest.approx(QUALS[second] + 1.0)
    assert tops["short"].n_images == 2
    table = report.bdrate_markdown(points)
    assert "## Where each curve ends" in table
    assert f"| short | {RATES[second]:.3f} | {QUALS[second] + 1.0:.2f} |" in table
