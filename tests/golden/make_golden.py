"""Write the frozen golden files of tests/golden/ and the digests of what they decode to.

Run once per new format version or shipped model, from the repo root, with the revision
that is to be frozen (its library on the path), e.g. for the files of 2026-12-06:

    git worktree add /tmp/frozen 8714341
    PYTHONPATH=/tmp/frozen python tests/golden/make_golden.py --out tests/golden

The files are small crops of examples/kodim23.png, coded by shipped models, of format
versions 1 (raw bits), 2 (stage map, entropy-coded) and 3 (coded from the model's bit tables;
added 2026-12-06 with ``--add``, which writes only the files that expected.json lacks and
leaves the frozen ones alone). ``expected.json`` holds, per file,
the SHA-256 of the decoded pixels with and without the post-filter (every stage present)
and of ``ir2icodec.info``'s report; tests/test_golden.py checks today's code against them,
so a change that alters what an existing file decodes to fails the suite.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
import numpy as np
from PIL import Image

import ir2icodec
from ir2icodec.container import read_container, write_container

REPO = Path(__file__).resolve().parents[2]
MODEL = "ir2i-compact-3"  # the default model when the files were frozen (2026-12-06)


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()


def info_digest(data: bytes) -> str:
    return hashlib.sha256(json.dumps(ir2icodec.info(data), sort_keys=True).encode()).hexdigest()


def as_version_1(data: bytes) -> bytes:
    """The same codes as a version-1 file (raw bits, every block every stage)."""
    c = read_container(data)
    return write_container(c.header, c.stage_bits, c.ancillary)


V3_MODEL = "ir2i-compact-4"  # the first shipped model with bit tables (format version 3)


def crops() -> tuple[np.ndarray, np.ndarray]:
    """The two golden inputs: a 96 x 128 crop and a 45 x 77 one (partial blocks)."""
    with Image.open(REPO / "examples" / "kodim23.png") as im:
        photo = np.asarray(im.convert("RGB"))
    return photo[96:192, 192:320], photo[200:245, 300:377]


def version_3_files() -> dict[str, bytes]:
    crop, odd = crops()
    return {
        "v3-rate-controlled.ir2i": ir2icodec.encode(crop, quality=50, model=V3_MODEL),
        "v3-uniform-odd-size.ir2i": ir2icodec.encode(odd, stages=4, model=V3_MODEL),
        "v3-psnr.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-psnr-1"),
        # added 2026-12-07 with the new default model
        "v3-compact-5.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-5"),
        "v3-compact-6.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-6"),
        "v3-compact-7.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-7"),
        "v3-psnr-2.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-psnr-2"),
        # added 2026-12-07 with ir2i-compact-8 (its cycled inpainting network)
        "v3-compact-8.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-8"),
        # added 2026-12-07 with ir2i-compact-9 (its int8 post-filter)
        "v3-compact-9.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-9"),
        # added 2026-12-08 with ir2i-compact-10 (a third joint training cycle)
        "v3-compact-10.ir2i": ir2icodec.encode(crop, quality=50, model="ir2i-compact-10"),
    }


def frozen_entry(data: bytes) -> dict[str, str]:
    return {
        "filtered": digest(ir2icodec.decode(data, output="numpy")),
        "unfiltered": digest(ir2icodec.decode(data, output="numpy", postfilter=False)),
        "info": info_digest(data),
    }


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--add", is_flag=True, help="Only the files expected.json lacks.")
def main(out: Path, add: bool) -> None:
    if add:
        expected = json.loads((out / "expected.json").read_text())
        for name, data in version_3_files().items():
            if name not in expected:
                (out / name).write_bytes(data)
                expected[name] = frozen_entry(data)
        (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        click.echo(f"{len(expected)} golden files in {out}")
        return
    crop, odd = crops()
    alpha = np.dstack([crop, (np.arange(96 * 128) % 251).astype(np.uint8).reshape(96, 128)])
    files = {
        "v2-rate-controlled.ir2i": ir2icodec.encode(crop, quality=50, model=MODEL),
        "v2-uniform-odd-size.ir2i": ir2icodec.encode(odd, stages=4, model=MODEL),
        "v2-rgba.ir2i": ir2icodec.encode(alpha, stages=3, model=MODEL),
        "v2-compact-2.ir2i": ir2icodec.encode(odd, quality=70, model="ir2i-compact-2"),
        "v1-compact.ir2i": as_version_1(ir2icodec.encode(crop, stages=8, model="ir2i-compact")),
        "v1-odd-size.ir2i": as_version_1(ir2icodec.encode(odd, stages=5, model=MODEL)),
    }
    full = ir2icodec.encode(crop, stages=8, model=MODEL)
    layout = [c for c in ir2icodec.info(full)["chunks"] if c["type"] == "CODE"]
    third = layout[2]  # the chunk of stage 4: cut inside it, stages 1-3 remain
    files["v2-truncated.ir2i"] = full[: third["offset"] + third["length"] // 2]
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, data in files.items():
        (out / name).write_bytes(data)
        expected[name] = frozen_entry(data)
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    click.echo(f"{len(files)} golden files in {out}")


if __name__ == "__main__":
    main()
