"""The package as users get it: `pip install .` into a fresh virtual environment.

The package is built into a wheel once, with this environment's build backend, and installed
into a nested virtual environment. That environment sees this one's site-packages for the
dependencies (a .pth file: no network, and it works whether the tests run in the system
Python, a venv, virtualenv or conda), but ir2icodec itself comes only from the wheel, and the
commands run outside the checkout, so nothing is imported from the source tree.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hatchling") is None,
    reason="building the package needs hatchling ([test] extra)",
)


def _site_dirs() -> list[str]:
    """Where this interpreter finds its installed packages."""
    dirs = [
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        *site.getsitepackages(),
    ]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def _pip(*args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if r.returncode:
        pytest.fail(f"pip {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with ir2i installed from a wheel of this checkout; returns its
    bin/."""
    wheels = tmp_path_factory.mktemp("wheel")
    _pip(
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(wheels),
        str(REPO),
    )
    (wheel,) = wheels.glob("ir2i-*.whl")
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    _pip("--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel))
    # Only now (pip would take an ir2i installed out there for this one), and after the
    # nested site-packages on sys.path, so that the wheel's ir2icodec is the one imported.
    Path(purelib, "outer_environment.pth").write_text("\n".join(_site_dirs()) + "\n")
    return env_dir / "bin"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_pillow_round_trip_with_only_the_package_import(installed, tmp_path):
    Image.fromarray(smooth_image(48, 64)).save(tmp_path / "x.png")
    script = "\n".join(
        [
            "import sys",
            "import ir2icodec",
            "from PIL import Image",
            "assert ir2icodec.__file__.startswith(sys.prefix), ir2icodec.__file__",
            "Image.open('x.png').save('x.ir2i', stages=3)",
            "Image.open('x.ir2i').convert('RGB').save('back.png')",
            "Image.open('back.png').save('y.ir2i', quality=70)",
        ]
    )
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
    r = _run(
        [
            str(installed / "ir2i"),
            "bench",
            "--data",
            str(data),
            "--codecs",
            "ir2i,jpeg",
            "--out",
            "rd",
        ],
        tmp_path,
    )
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
