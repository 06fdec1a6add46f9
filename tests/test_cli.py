"""The ir2i command line, run as a real subprocess on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from ir2icodec.container import chunk_layout


def ir2i(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ir2icodec", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    err = r.stderr.decode()
    assert r.returncode != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture()
def photo(tmp_path) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(smooth_image(70, 90)).save(p)
    return p


@pytest.fixture()
def encoded(tmp_path, photo, tiny_bundle) -> Path:
    out = tmp_path / "photo.ir2i"
    r = ir2i("encode", str(photo), "-o", str(out), "--stages", "4", "--model", tiny_bundle)
    assert r.returncode == 0, r.stderr
    return out


def test_encode_decode_info(tmp_path, encoded, tiny_bundle):
    out = tmp_path / "preview.png"
    r = ir2i("decode", str(encoded), "-o", str(out), "--max-stages", "2", "--model", tiny_bundle)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (90, 70)
    r = ir2i("info", str(encoded), "--json")
    info = json.loads(r.stdout)
    assert (info["width"], info["height"], info["stages"]) == (90, 70, 4)
    assert info["model"] == "tiny-ir2i" and info["complete"]
    assert [p["stages"] for p in info["progressive"]] == [2, 3, 4]
    r = ir2i("info", str(encoded))
    assert b"90 x 70" in r.stdout and b"tiny-ir2i" in r.stdout


def test_default_output_names(tmp_path, photo, tiny_bundle):
    r = ir2i("encode", str(photo), "--model", tiny_bundle, cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "photo.ir2i").exists()
    (tmp_path / "sub").mkdir()
    r = ir2i("decode", str(tmp_path / "photo.ir2i"), "--model", tiny_bundle, cwd=tmp_path / "sub")
    assert r.returncode == 0 and (tmp_path / "sub" / "photo.png").exists()


def test_pipeline_through_stdin_and_stdout(photo, tiny_bundle):
    enc = ir2i("encode", "-", "-o", "-", "--model", tiny_bundle, stdin=photo.read_bytes())
    assert enc.returncode == 0 and enc.stdout.startswith(b"\x89IR2")
    dec = ir2i("decode", "-", "-o", "-", "--model", tiny_bundle, stdin=enc.stdout)
    assert dec.returncode == 0 and dec.stdout.startswith(b"\x89PNG")


def test_decoded_file_matches_library_decode(tmp_path, encoded, tiny_model):
    from ir2icodec.codec import decode

    out = tmp_path / "o.png"
    assert (
        ir2i(
            "decode", str(encoded), "-o", str(out), "--model", str(tiny_model.directory)
        ).returncode
        == 0
    )
    ref = decode(encoded.read_bytes(), tiny_model).rgb
    np.testing.assert_array_equal(np.asarray(Image.open(out)), ref)


def test_truncated_file_decodes_complete_stages_with_a_warning(tmp_path, encoded, tiny_bundle):
    data = encoded.read_bytes()
    third = [c for c in chunk_layout(data) if c.type == "CODE"][1]
    cut = tmp_path / "cut.ir2i"
    cut.write_bytes(data[: third.offset + 20])
    r = ir2i("decode", str(cut), "-o", str(tmp_path / "cut.png"), "--model", tiny_bundle)
    assert r.returncode == 0
    assert b"warning" in r.stderr and b"truncated" in r.stderr
    cut.write_bytes(data[:40])
    one_line_error(
        ir2i("decode", str(cut), "-o", str(tmp_path / "x.png"), "--model", tiny_bundle), "truncated"
    )
    assert not (tmp_path / "x.png").exists()


def test_crc_error_and_salvage(tmp_path, encoded, tiny_bundle):
    data = bytearray(encoded.read_bytes())
    last = [c for c in chunk_layout(bytes(data)) if c.type == "CODE"][-1]
    data[last.offset + 12] ^= 0x10
    bad = tmp_path / "bad.ir2i"
    bad.write_bytes(bytes(data))
    out = tmp_path / "bad.png"
    one_line_error(ir2i("decode", str(bad), "-o", str(out), "--model", tiny_bundle), "CRC")
    assert not out.exists()
    r = ir2i("decode", str(bad), "-o", str(out), "--salvage", "--model", tiny_bundle)
    assert r.returncode == 0 and out.exists() and b"warning" in r.stderr


def test_truncate_makes_the_smaller_complete_file(tmp_path, photo, encoded, tiny_bundle):
    out = tmp_path / "three.ir2i"
    r = ir2i("truncate", str(encoded), "-o", str(out), "--stages", "3")
    assert r.returncode == 0, r.stderr
    direct = tmp_path / "direct.ir2i"
    assert (
        ir2i("encode", str(photo), "-o", str(direct), "-s", "3", "--model", tiny_bundle).returncode
        == 0
    )
    assert out.read_bytes() == direct.read_bytes()
    piped = ir2i("truncate", "-", "-s", "2", stdin=encoded.read_bytes())
    assert piped.returncode == 0 and len(piped.stdout) < len(out.read_bytes())
    r = ir2i("truncate", str(encoded), "-o", str(tmp_path / "five.ir2i"), "-s", "5")
    one_line_error(r, "between 2 and 4")
    assert not (tmp_path / "five.ir2i").exists()


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "not_image",
        "not_ir2i",
        "version",
        "stages",
        "max_stages",
        "model",
        "no_model",
        "empty_stdin",
    ],
)
def test_errors_are_one_line(tmp_path, photo, encoded, tiny_bundle, other_bundle, case):
    out = tmp_path / "out.bin"
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a picture\n")
    newer = bytearray(encoded.read_bytes())
    newer[16] = 9  # HEAD's version byte
    (tmp_path / "newer.ir2i").write_bytes(bytes(newer))
    m = ["--model", tiny_bundle]
    runs = {
        "missing": (("encode", str(tmp_path / "nope.png"), "-o", str(out), *m), "no such file"),
        "not_image": (("encode", str(text), "-o", str(out), *m), "not an image"),
        "not_ir2i": (("decode", str(photo), "-o", str(out) + ".png", *m), "not an ir2i file"),
        "version": (("decode", str(tmp_path / "newer.ir2i"), "-o", str(out) + ".png", *m), ""),
        "stages": (("encode", str(photo), "-o", str(out), "--stages", "9", *m), "stages"),
        "max_stages": (
            ("decode", str(encoded), "-o", str(out) + ".png", "-k", "1", *m),
            "max-stages",
        ),
        "model": (
            ("decode", str(encoded), "-o", str(out) + ".png", "--model", other_bundle),
            "tiny-ir2i",
        ),
        "no_model": (("encode", str(photo), "-o", str(out), "--model", str(tmp_path)), "not found"),
        "empty_stdin": (("encode", "-", "-o", str(out), *m), "empty"),
    }
    args, needle = runs[case]
    r = ir2i(*args, stdin=b"")
    one_line_error(r, needle)
    assert not out.exists() and not Path(str(out) + ".png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_existing_output_needs_force_and_input_is_never_overwritten(
    tmp_path, photo, encoded, tiny_bundle
):
    before = encoded.read_bytes()
    one_line_error(
        ir2i("encode", str(photo), "-o", str(encoded), "--model", tiny_bundle), "--force"
    )
    assert encoded.read_bytes() == before
    r = ir2i(
        "encode", str(photo), "-o", str(encoded), "--stages", "2", "-f", "--model", tiny_bundle
    )
    assert r.returncode == 0 and encoded.read_bytes() != before
    one_line_error(
        ir2i("decode", str(encoded), "-o", str(encoded), "-f", "--model", tiny_bundle), "input"
    )


def test_alpha_round_trip_and_refusal(tmp_path, tiny_bundle):
    rgba = np.dstack([smooth_image(40, 40), np.arange(1600, dtype=np.uint8).reshape(40, 40)])
    src = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(src)
    enc, dec = tmp_path / "a.ir2i", tmp_path / "a2.png"
    assert ir2i("encode", str(src), "-o", str(enc), "--model", tiny_bundle).returncode == 0
    assert ir2i("decode", str(enc), "-o", str(dec), "--model", tiny_bundle).returncode == 0
    np.testing.assert_array_equal(np.asarray(Image.open(dec))[..., 3], rgba[..., 3])
    one_line_error(
        ir2i(
            "encode",
            str(src),
            "-o",
            str(tmp_path / "b.ir2i"),
            "--alpha",
            "refuse",
            "--model",
            tiny_bundle,
        ),
        "alpha",
    )


def test_closed_stdout_pipe_is_a_clear_error(photo, tiny_bundle):
    cmd = f"{sys.executable} -m ir2icodec encode {photo} -o - --model {tiny_bundle} | head -c 0"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=120)
    assert r.returncode != 0
    assert b"Traceback" not in r.stderr and b"Exception ignored" not in r.stderr


def test_version_and_help():
    assert ir2i("--version").returncode == 0
    r = ir2i("--help")
    assert r.returncode == 0 and b"encode" in r.stdout and b"decode" in r.stdout


def test_a_command_exits_with_its_status_and_everything_it_wrote(tmp_path, encoded, tiny_bundle):
    # the codec commands end with os._exit (cli.main): stdout must be flushed first
    out = tmp_path / "o.png"
    assert ir2i("decode", str(encoded), "-o", str(out), "--model", tiny_bundle).returncode == 0
    piped = ir2i("decode", str(encoded), "-o", "-", "--model", tiny_bundle)
    assert piped.returncode == 0 and piped.stdout == out.read_bytes()
    info = ir2i("info", str(encoded), "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["width"] > 0
    one_line_error(ir2i("decode", str(tmp_path / "missing.ir2i")), "missing.ir2i")
    assert ir2i("decode").returncode == 2  # click's usage error
