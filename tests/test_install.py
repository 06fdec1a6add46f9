"""The package as users get it: `pip install .` into a fresh virtual environment.

The environment sees this interpreter's site-packages for the dependencies (no network), but
ir2icodec itself comes only from the wheel built from this checkout, and the commands run
outside the checkout, so nothing is imported from the source tree.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                                reason="building the package needs hatchling ([test] extra)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with ir2i installed from this checkout; returns its bin/."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-build-isolation", "--no-index", str(REPO)],
                   check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env_dir / "bin"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_pillow_round_trip_with_only_the_package_import(installed, tmp_path):
    Image.fromarray(smooth_image(48, 64)).save(tmp_path / "x.png")
    script = "\n".join([
        "import sys",
        "import ir2icodec",
        "from PIL import Image",
        "assert ir2icodec.__file__.startswith(sys.prefix), ir2icodec.__file__",
        "Image.open('x.png').save('x.ir2i', stages=3)",
        "Image.open('x.ir2i').convert('RGB').save('back.png')",
        "Image.open('back.png').save('y.ir2i', quality=70)",
    ])
    r = _run([str(installed / "python"), "-c", script], tmp_path)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "back.png") as back:
        assert back.size == (64, 48) and back.mode == "RGB"
    assert (tmp_path / "x.ir2i").read_bytes().startswith(b"\x89IR2")
    with Image.open(tmp_path / "y.ir2i") as y:
        assert y.size == (64, 48)


def test_ir2i_bench_runs_from_the_installed_package(installed, tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(48, 64, seed=i)).save(data / f"p{i}.png")
    r = _run([str(installed / "ir2i"), "bench", "--data", str(data), "--codecs", "ir2i,jpeg",
              "--out", "rd"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "rd"
    with (out / "rd_points.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["codec"] for row in rows} == {"ir2i", "jpeg"}
    assert {row["image"] for row in rows} == {"p0.png", "p1.png"}
    assert "| ir2i |" in (out / "bdrate.md").read_text()
    with Image.open(out / "rd.png") as plot:
        assert plot.format == "PNG"
    assert np.isfinite([float(row["psnr"]) for row in rows]).all()
