"""Hostile files through every door: forged .ir2i files with correct CRCs, and mutations.

A file of about a hundred bytes must not make a reader spend gigabytes or minutes: every
door (the API's ``info``/``decode``, Pillow's ``open``/``load``/``seek``, the CLI's ``info``,
``decode`` and ``truncate``) is run on every file of a corpus in one child process, whose
address space is capped at its warmed-up size plus ``--memory-mb`` after warm-up (an
allocation past the cap is a ``MemoryError``, which counts as mishandled), and each call is
timed. A call is mishandled when it raises anything but the codec's errors (``Ir2iError``,
or Pillow's ``DecompressionBombError``), when the CLI exits with status 70 (an internal
error) or prints more than one line, or when it takes longer than its allowance: ``--look-s``
for ``info`` and ``Image.open``, and for the decoding doors ``--look-s`` plus three times the
model's measured time per padded pixel for the pixels the file declares (a file may declare a
picture the limits allow, and then must decode at the codec's normal speed).

    python -m benchmarks.hostile --model models/ir2i-compact-3 --mutations 2000 \\
        --out results/hostile.md

The suite runs the same harness on a smaller corpus with a tiny model (tests/test_hostile.py).
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

SIGNATURE = b"\x89IR2\r\n\x1a\n"
DOORS = (
    "api.info",
    "api.decode",
    "pillow.open",
    "pillow.load",
    "pillow.seek",
    "cli.info",
    "cli.decode",
    "cli.truncate",
)
LOOKING_DOORS = ("api.info", "pillow.open", "cli.info")


# --------------------------------------------------------------------------- forging


def chunk(ctype: bytes, data: bytes) -> bytes:
    """A chunk with a correct CRC, whatever it holds."""
    crc = zlib.crc32(data, zlib.crc32(ctype))
    return struct.pack(">I4s", len(data), ctype) + data + struct.pack(">I", crc)


def head(
    *,
    width: int,
    height: int,
    digest: bytes,
    name: bytes,
    version: int = 2,
    stages: int = 8,
    block_size: int = 32,
    bits_per_stage: int = 128,
    band_rows: int = 16,
    flags: int = 0,
) -> bytes:
    body = (
        struct.pack(
            ">BHIIHHBBH16sB",
            version,
            flags,
            width,
            height,
            block_size,
            bits_per_stage,
            stages,
            2,
            band_rows,
            digest,
            len(name),
        )
        + name
    )
    return chunk(b"HEAD", body)


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each chunk of a well-formed file, after the signature."""
    out, pos = [], len(SIGNATURE)
    while pos + 12 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        out.append((ctype, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    return SIGNATURE + b"".join(chunk(t, b) for t, b in parts)


def forged_corpus(
    valid: bytes, valid_alpha: bytes, max_pixels: int, cap_bytes: int | None = None
) -> dict[str, bytes]:
    """Files that each stand for one class of attack (issue "Hostile files"), all with
    correct CRCs and naming the model of ``valid`` (so that they pass the model check).
    ``valid_alpha`` is a valid file that carries an alpha chunk; ``cap_bytes``, if given,
    adds a valid file of that size (a huge ancillary chunk): looking at it must stay fast."""
    parts = chunks_of(valid)
    hbody = parts[0][1]
    digest, name = hbody[19:35], hbody[36:]

    def h(**kw) -> bytes:
        return head(digest=digest, name=name, **kw)

    side = int(max_pixels**0.5) // 32 * 32
    raw_map = chunk(b"SMAP", b"\x00" + bytes([2]) * ((side // 32) ** 2))
    zero_code = chunk(b"CODE", b"\x01\x02\x01")  # range coded, no payload word
    iend = chunk(b"IEND", b"")
    files = {
        "zero-word first code at the limit": SIGNATURE
        + h(width=side, height=side, stages=2)
        + raw_map
        + zero_code
        + iend,
        "one pixel high, limit wide": SIGNATURE + h(width=max_pixels, height=1) + iend,
        "one pixel wide, limit high": SIGNATURE + h(width=1, height=max_pixels) + iend,
        "32 wide, limit high, map coded": SIGNATURE
        + h(width=32, height=max_pixels // 32, stages=8)
        + chunk(b"SMAP", b"\x01" + bytes(4))
        + iend,
        "8-pixel blocks of 4096 bits": SIGNATURE
        + h(width=side, height=side, block_size=8, bits_per_stage=4096)
        + iend,
        "4000 tiny ancillary chunks": SIGNATURE
        + h(width=64, height=64)
        + chunk(b"tEXt", b"x") * 4000
        + iend,
        "stage pair 00 00": assemble(
            [
                p
                if p[0] != b"CODE" or p[1][:2] != b"\x01\x02"
                else (b"CODE", b"\x00\x00" + p[1][2:])
                for p in parts
            ]
        ),
        "version 2 labelled 1": assemble([(b"HEAD", b"\x01" + hbody[1:]), *parts[1:]]),
        "newer version": assemble([(b"HEAD", b"\x09" + hbody[1:]), *parts[1:]]),
    }
    # Alpha after the codes (the spec allows ancillary chunks anywhere before IEND).
    alpha_parts = chunks_of(valid_alpha)
    alpha = [p for p in alpha_parts if p[0] == b"aLPH"]
    rest = [p for p in alpha_parts if p[0] not in (b"aLPH", b"IEND")]
    files["alpha after the codes"] = assemble([*rest, *alpha, (b"IEND", b"")])
    # Salvage resync: a damaged first stage chunk, then fake CODE headers that each claim to
    # run to the end of the file.
    first = [i for i, p in enumerate(parts) if p[0] == b"CODE"][0]
    fake = b"".join(struct.pack(">I4s", 10**6, b"CODE") + bytes([3, 1]) for _ in range(20000))
    files["fake chunk headers to resync on"] = (
        assemble(parts[: first + 1]) + b"\x00\x00\x00\x10CODE\x03\x01" + fake
    )
    files["valid"] = valid
    if cap_bytes:
        padding = (b"zZZZ", bytes(max(0, cap_bytes - len(valid) - 12)))
        files["valid, padded to the file cap"] = assemble([parts[0], padding, *parts[1:]])
    return files


def mutations(valid: bytes, count: int, seed: int) -> dict[str, bytes]:
    """Random edits of ``valid``, with every chunk's CRC made right again after the edit
    half of the time (so that the semantic checks, not the CRC, must catch the lie)."""
    rng = random.Random(seed)
    parts = chunks_of(valid)
    out = {}
    for i in range(count):
        ps = [(t, bytearray(b)) for t, b in parts]
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(ps))
            t, b = ps[k]
            action = rng.choice(["set", "flip", "cut", "grow", "drop", "dup", "swap", "int"])
            if action == "set" and b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif action == "flip" and b:
                j = rng.randrange(len(b))
                b[j] ^= 1 << rng.randrange(8)
            elif action == "cut" and b:
                del b[rng.randrange(len(b)) :]
            elif action == "grow":
                b.extend(rng.randbytes(rng.randint(1, 64)))
            elif action == "drop" and len(ps) > 2:
                del ps[k]
            elif action == "dup":
                ps.insert(k, (t, bytearray(b)))
            elif action == "swap" and len(ps) > 2:
                j = rng.randrange(len(ps))
                ps[k], ps[j] = ps[j], ps[k]
            elif action == "int" and len(b) >= 4:  # a large or small 32-bit field
                j = rng.randrange(len(b) - 3)
                b[j : j + 4] = struct.pack(
                    ">I", rng.choice([0, 1, 2**16, 2**24, 2**31 - 1, 2**32 - 1])
                )
        data = assemble([(t, bytes(b)) for t, b in ps])
        if rng.random() < 0.5:  # break a CRC or cut the file as well
            buf = bytearray(data)
            if rng.random() < 0.5:
                buf[rng.randrange(8, len(buf))] ^= 0x40
            else:
                del buf[rng.randrange(8, len(buf)) :]
            data = bytes(buf)
        out[f"mutation {i}"] = data
    return out


# --------------------------------------------------------------------------- the doors


@dataclass
class Outcome:
    file: str
    door: str
    result: str  # "ok", an error class name, or "MISHANDLED ..."
    seconds: float
    allowance: float


def _padded_pixels(data: bytes) -> int:
    """The pixels a file declares, in whole blocks (0 when its header does not parse)."""
    try:
        width, height, block = struct.unpack_from(">IIH", data, 8 + 8 + 3)
    except struct.error:
        return 0
    if block == 0:
        return 0
    return -(-width // block) * -(-height // block) * block * block


def _call(
    door: str, data: bytes, path: Path, work: Path, model, model_dir: str, max_pixels: int
) -> str:
    """Run one door on one file; returns "ok", the error's class name, or "MISHANDLED ..."."""
    from PIL import Image

    import ir2icodec
    from ir2icodec.errors import Ir2iError

    try:
        if door == "api.info":
            ir2icodec.info(data, max_pixels=max_pixels)
        elif door == "api.decode":
            ir2icodec.decode(data, model=model, max_pixels=max_pixels, output="numpy")
        elif door.startswith("pillow."):
            with Image.open(path) as im:
                if door == "pillow.load":
                    im.load()
                elif door == "pillow.seek":
                    im.seek(0)
                    im.load()
        else:
            return _cli(door, path, work, model_dir, max_pixels)
    except (Ir2iError, Image.DecompressionBombError) as e:
        if "\n" in str(e):
            return f"MISHANDLED multi-line {type(e).__name__}"
        return type(e).__name__
    except Exception as e:  # noqa: BLE001 - what the harness is for
        return f"MISHANDLED {type(e).__name__}: {str(e)[:120]}"
    return "ok"


def _cli(door: str, path: Path, work: Path, model_dir: str, max_pixels: int) -> str:
    from click.testing import CliRunner

    from ir2icodec.cli import cli

    args = {
        "cli.info": ["info", str(path)],
        "cli.decode": [
            "decode",
            str(path),
            "-o",
            str(work / "out.png"),
            "--force",
            "--model",
            model_dir,
            "--quiet",
        ],
        "cli.truncate": [
            "truncate",
            str(path),
            "-o",
            str(work / "t.ir2i"),
            "--force",
            "--stages",
            "2",
            "--model",
            model_dir,
        ],
    }[door]
    r = CliRunner().invoke(cli, [*args, "--max-pixels", str(max_pixels)])
    if r.exit_code == 0:
        return "ok"
    errors = [line for line in r.stderr.splitlines() if line.startswith("ir2i: error:")]
    if r.exit_code == 70 or len(errors) != 1 or not isinstance(r.exception, SystemExit):
        return f"MISHANDLED exit {r.exit_code}: {r.stderr.strip()[:160]}"
    return f"exit {r.exit_code}"


def _cap_address_space(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus ``extra_mb``."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    now = pages * os.sysconf("SC_PAGE_SIZE")
    limit = now + extra_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_doors(
    corpus: Path, model_dir: str, max_pixels: int, memory_mb: int, look_s: float
) -> list[Outcome]:
    """Every door on every file of ``corpus`` (a folder of .ir2i files), in this process."""
    from PIL import Image

    import ir2icodec
    from ir2icodec import pillow

    warnings.simplefilter("ignore")
    Image.MAX_IMAGE_PIXELS = max_pixels // 2  # Pillow refuses above twice this
    model = ir2icodec.load_model(model_dir)
    pillow.configure(model=model)
    files = sorted(corpus.glob("*.ir2i"))
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    valid = corpus / "valid.ir2i"
    for door in DOORS:  # warm up every door (sessions, imports) on the valid file
        _call(door, valid.read_bytes(), valid, work, model, model_dir, max_pixels)
    start = time.perf_counter()
    _call("api.decode", valid.read_bytes(), valid, work, model, model_dir, max_pixels)
    per_pixel = (time.perf_counter() - start) / _padded_pixels(valid.read_bytes())
    _cap_address_space(memory_mb)
    outcomes = []
    for path in files:
        data = path.read_bytes()
        for door in DOORS:
            allowance = (
                look_s
                if door in LOOKING_DOORS
                else look_s + 3 * per_pixel * min(_padded_pixels(data), 2 * max_pixels)
            )
            start = time.perf_counter()
            result = _call(door, data, path, work, model, model_dir, max_pixels)
            seconds = time.perf_counter() - start
            if seconds > allowance and not result.startswith("MISHANDLED"):
                result = f"MISHANDLED slow ({result})"
            outcomes.append(
                Outcome(path.stem, door, result, round(seconds, 4), round(allowance, 3))
            )
    return outcomes


def write_corpus(files: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / f"{name}.ir2i").write_bytes(data)


def run_in_child(
    corpus: Path, model_dir: str, max_pixels: int, memory_mb: int, look_s: float, timeout_s: float
) -> tuple[list[Outcome], int]:
    """``run_doors`` in a fresh interpreter (its address space capped); returns the outcomes
    and the child's peak resident memory in MiB."""
    out = corpus / "outcomes.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.hostile",
        "doors",
        "--corpus",
        str(corpus),
        "--model",
        model_dir,
        "--max-pixels",
        str(max_pixels),
        "--memory-mb",
        str(memory_mb),
        "--look-s",
        str(look_s),
        "--out",
        str(out),
    ]
    repo = Path(__file__).resolve().parent.parent
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode:
        raise RuntimeError(f"the harness failed ({r.returncode}): {r.stderr[-2000:]}")
    report = json.loads(out.read_text())
    return [Outcome(**o) for o in report["outcomes"]], report["peak_rss_mb"]


# --------------------------------------------------------------------------- commands


@click.group()
def main() -> None:
    """Hostile .ir2i files through every door (see the module docstring)."""


@main.command("doors")
@click.option("--corpus", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", required=True)
@click.option("--max-pixels", type=int, required=True)
@click.option("--memory-mb", type=int, default=1024, show_default=True)
@click.option("--look-s", type=float, default=0.2, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def doors(
    corpus: str, model_dir: str, max_pixels: int, memory_mb: int, look_s: float, out: str
) -> None:
    """(Child process) run every door on every file of CORPUS; write the outcomes as JSON."""
    outcomes = run_doors(Path(corpus), model_dir, max_pixels, memory_mb, look_s)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    Path(out).write_text(
        json.dumps({"outcomes": [asdict(o) for o in outcomes], "peak_rss_mb": peak})
    )


@main.command("run")
@click.option("--model", "model_dir", default="models/ir2i-compact-3", show_default=True)
@click.option(
    "--image",
    default="examples/kodim23.png",
    show_default=True,
    help="The picture the valid file (and its mutations) is made from.",
)
@click.option("--mutations", "n_mutations", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--max-pixels",
    type=int,
    default=2**22,
    show_default=True,
    help="The limit the doors run with (what a server would set).",
)
@click.option("--memory-mb", type=int, default=1024, show_default=True)
@click.option("--look-s", type=float, default=0.2, show_default=True)
@click.option("--out", default=None, help="Markdown report.")
def run(
    model_dir: str,
    image: str,
    n_mutations: int,
    seed: int,
    max_pixels: int,
    memory_mb: int,
    look_s: float,
    out: str | None,
) -> None:
    """Forge a corpus from IMAGE, run every door on it, report."""
    from PIL import Image

    import ir2icodec

    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB"))[:96, :128]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    valid = ir2icodec.encode(rgb, stages=4, model=model_dir)
    cap = ir2icodec.api.max_file_bytes(max_pixels)
    files = forged_corpus(
        valid, ir2icodec.encode(rgba, stages=3, model=model_dir), max_pixels, cap_bytes=cap
    )
    files.update(mutations(valid, n_mutations, seed))
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(files, Path(tmp))
        outcomes, peak = run_in_child(
            Path(tmp), model_dir, max_pixels, memory_mb, look_s, timeout_s=3600
        )
    report = summary(outcomes, peak, files)
    click.echo(report)
    if out:
        Path(out).write_text(report)


def summary(outcomes: list[Outcome], peak_mb: int, files: dict[str, bytes]) -> str:
    bad = [o for o in outcomes if o.result.startswith("MISHANDLED")]
    lines = [
        f"{len(files)} files (largest {max(map(len, files.values()))} bytes) x "
        f"{len(DOORS)} doors = {len(outcomes)} calls; mishandled: {len(bad)}; "
        f"peak resident memory of the harness {peak_mb} MiB",
        "",
        "| door | calls | ok | refused | slowest s |",
        "|---|---:|---:|---:|---:|",
    ]
    for door in DOORS:
        mine = [o for o in outcomes if o.door == door]
        ok = sum(o.result == "ok" for o in mine)
        lines.append(
            f"| {door} | {len(mine)} | {ok} | {len(mine) - ok} | "
            f"{max(o.seconds for o in mine):.3f} |"
        )
    for o in bad[:50]:
        lines.append(f"- MISHANDLED: {o.file} / {o.door}: {o.result} ({o.seconds} s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
