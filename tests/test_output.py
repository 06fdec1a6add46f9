"""Tests for ir2icodec.output: atomic writes, overwrite rules, full disks, closed pipes."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ir2icodec import output
from ir2icodec.errors import OutputError
from ir2icodec.output import write_output

REPO = Path(__file__).resolve().parents[1]
DATA = bytes(range(256)) * 40


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so messages show the short relative name, as a user would type it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- files


def test_writes_new_file_atomically(in_tmp: Path) -> None:
    write_output("out.png", DATA)
    assert (in_tmp / "out.png").read_bytes() == DATA
    assert _leftovers(in_tmp) == []


def test_new_file_gets_umask_permissions_not_0600(in_tmp: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output("out.png", DATA)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat("out.png").st_mode) == 0o644


def test_existing_file_needs_force(in_tmp: Path) -> None:
    (in_tmp / "out.png").write_bytes(b"old")
    with pytest.raises(OutputError) as e:
        write_output("out.png", DATA)
    assert str(e.value) == "out.png exists; pass --force to overwrite"
    assert (in_tmp / "out.png").read_bytes() == b"old"
    assert _leftovers(in_tmp) == []


def test_force_replaces_and_keeps_permissions(in_tmp: Path) -> None:
    target = in_tmp / "out.png"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_output("out.png", DATA, force=True)
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(in_tmp) == []


def test_dangling_symlink_counts_as_existing(in_tmp: Path) -> None:
    os.symlink("nowhere", "out.png")
    with pytest.raises(OutputError, match="exists; pass --force"):
        write_output("out.png", DATA)
    write_output("out.png", DATA, force=True)
    assert not os.path.islink("out.png")
    assert (in_tmp / "out.png").read_bytes() == DATA


def test_short_writes_are_completed(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(output.os, "write", lambda fd, b: real_write(fd, bytes(b[:7])))
    write_output("out.png", DATA)
    assert (in_tmp / "out.png").read_bytes() == DATA


# --- input protection


def test_refuses_to_overwrite_input_even_with_force(in_tmp: Path) -> None:
    src = in_tmp / "photo.png"
    src.write_bytes(b"input")
    for path in ("photo.png", str(src), "./sub/../photo.png"):
        (in_tmp / "sub").mkdir(exist_ok=True)
        with pytest.raises(OutputError) as e:
            write_output(path, DATA, force=True, protect=["photo.png"])
        assert str(e.value).startswith("refusing to overwrite the input file")
    assert src.read_bytes() == b"input"


def test_protects_input_through_symlink_and_hard_link(in_tmp: Path) -> None:
    src = in_tmp / "photo.png"
    src.write_bytes(b"input")
    os.symlink("photo.png", "sym.png")
    os.link("photo.png", "hard.png")
    for path in ("sym.png", "hard.png"):
        with pytest.raises(OutputError, match="refusing to overwrite the input file"):
            write_output(path, DATA, force=True, protect=[str(src)])
    assert src.read_bytes() == b"input"


def test_protect_ignores_stdin_and_other_files(in_tmp: Path) -> None:
    (in_tmp / "photo.png").write_bytes(b"input")
    write_output("out.png", DATA, protect=["-", "photo.png", "missing.png"])
    assert (in_tmp / "out.png").read_bytes() == DATA


# --- failures


def test_failing_write_leaves_no_temp_and_target_untouched(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "out.png").write_bytes(b"old")
    real_write = os.write
    calls = []

    def flaky_write(fd: int, b: bytes) -> int:
        calls.append(len(b))
        if len(calls) > 1:
            raise OSError(errno.EIO, "Input/output error")
        return real_write(fd, bytes(b[:100]))  # half-written temp file

    monkeypatch.setattr(output.os, "write", flaky_write)
    with pytest.raises(OutputError) as e:
        write_output("out.png", DATA, force=True)
    assert str(e.value) == "cannot write out.png: Input/output error"
    assert (in_tmp / "out.png").read_bytes() == b"old"
    assert _leftovers(in_tmp) == []


@pytest.mark.parametrize(
    "code,message",
    [
        (errno.ENOSPC, "no space left on device writing out.png"),
        (errno.EDQUOT, "disk quota exceeded writing out.png"),
    ],
)
def test_disk_full(in_tmp: Path, monkeypatch: pytest.MonkeyPatch, code: int, message: str) -> None:
    def full(fd: int, b: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(output.os, "write", full)
    with pytest.raises(OutputError) as e:
        write_output("out.png", DATA)
    assert str(e.value) == message
    assert not (in_tmp / "out.png").exists()
    assert _leftovers(in_tmp) == []


def test_fsync_failure_cleans_up(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output.os, "fsync", bad_fsync)
    with pytest.raises(OutputError, match="no space left on device writing out.png"):
        write_output("out.png", DATA)
    assert list(in_tmp.iterdir()) == []


def test_interrupt_cleans_up(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int, b: bytes) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output("out.png", DATA)
    assert list(in_tmp.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_real_full_device() -> None:
    # /dev/full is a character device: written in place, and every write fails ENOSPC.
    with pytest.raises(OutputError) as e:
        write_output("/dev/full", DATA)
    assert str(e.value) == "no space left on device writing /dev/full"


def test_dev_null_is_written_in_place_without_force() -> None:
    write_output(os.devnull, DATA)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # not replaced by a regular file


def test_missing_directory(in_tmp: Path) -> None:
    with pytest.raises(OutputError) as e:
        write_output("nodir/out.png", DATA)
    assert str(e.value) == "cannot write nodir/out.png: directory nodir does not exist"


def test_permission_denied(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, so chmod cannot make a directory unwritable: simulate it.
    def denied(*args: object, **kw: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(output.os, "open", denied)
    with pytest.raises(OutputError) as e:
        write_output("out.png", DATA)
    assert str(e.value) == "cannot write out.png: permission denied"


def test_target_is_directory(in_tmp: Path) -> None:
    (in_tmp / "out.png").mkdir()
    with pytest.raises(OutputError, match="out.png is a directory"):
        write_output("out.png", DATA, force=True)


def test_file_appearing_meanwhile_is_not_clobbered(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def racing_fsync(fd: int) -> None:
        real_fsync(fd)
        if not (in_tmp / "out.png").exists():
            (in_tmp / "out.png").write_bytes(b"someone else")

    monkeypatch.setattr(output.os, "fsync", racing_fsync)
    with pytest.raises(OutputError, match="exists; pass --force"):
        write_output("out.png", DATA)
    assert (in_tmp / "out.png").read_bytes() == b"someone else"
    assert _leftovers(in_tmp) == []


def test_without_hard_links_falls_back_to_rename(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(output.os, "link", no_link)
    write_output("out.png", DATA)
    assert (in_tmp / "out.png").read_bytes() == DATA
    assert _leftovers(in_tmp) == []


# --- stdout


def test_stdout_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=buf, flush=lambda: None))
    write_output("-", DATA)
    assert buf.getvalue() == DATA


# The child waits until the reader has gone (POLLERR on the pipe's write end), so the
# write deterministically hits a closed pipe.  A small payload sits in Python's stdout
# buffer, which is the case that used to print "Exception ignored ... BrokenPipeError"
# at exit; a large one bypasses the buffer.
_CHILD = """
import select, sys
from ir2icodec.errors import OutputError
from ir2icodec.output import write_output
if sys.argv[1] == "wait":
    poller = select.poll()
    poller.register(1, select.POLLERR)
    poller.poll(10000)
try:
    write_output("-", b"x" * int(sys.argv[2]))
except OutputError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONUNBUFFERED", None)  # buffered stdout, as for a normal user
    return env


@pytest.mark.parametrize("size", [10, 1 << 20])
def test_closed_pipe_gives_one_line_and_no_exit_noise(size: int) -> None:
    cmd = f"{sys.executable} -c '{_CHILD}' wait {size} | head -c 0"
    proc = subprocess.run(
        ["bash", "-c", cmd], cwd=REPO, env=_child_env(), capture_output=True, timeout=30
    )
    assert proc.stderr.decode() == "stdout closed before the output was written\n"


def test_closed_pipe_exit_status() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "wait", "10"],
        cwd=REPO,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # nobody reads: the child's write fails with EPIPE
    with child.stderr:
        err = child.stderr.read()
    assert child.wait(timeout=30) == 1
    assert err.decode() == "stdout closed before the output was written\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_full_device() -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, "nowait", "10"],
            cwd=REPO,
            env=_child_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=30,
        )
    assert proc.returncode == 1
    assert proc.stderr.decode() == "no space left on device writing stdout\n"
