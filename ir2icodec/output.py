"""Writing results safely: atomic files, no accidental overwrites, clean pipe errors.

A regular file is never left half-written: the data goes to a temporary file in the
target's directory, is flushed and fsync'ed, and only then renamed over the target.
On any failure the temporary file is removed and the target is untouched.

Closed pipes: when ``write_output("-", ...)`` finds stdout closed (``... | head``) it
raises ``OutputError`` *and* points file descriptor 1 at /dev/null (see
``discard_stdout``).  Without that, Python would try to flush the still-buffered bytes
again at exit and print "Exception ignored ... BrokenPipeError" after our one-line
message.  The caller only has to print the error and exit non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Sequence

from .errors import OutputError

_TEMP_ATTEMPTS = 100
# link() is not supported everywhere (FAT, some network/FUSE file systems).
_NO_LINK_ERRNOS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)


def write_output(
    path: str, data: bytes, *, force: bool = False, protect: Sequence[str] = ()
) -> None:
    """Write ``data`` to ``path`` ("-" = stdout) without ever leaving a partial file.

    ``force`` allows replacing an existing file; files named in ``protect`` (the
    inputs) are never replaced, even with ``force``.  Existing character devices and
    FIFOs (``/dev/null``, a named pipe) are written to directly, since they cannot be
    replaced atomically and writing to them destroys nothing.
    """
    if path == "-":
        _write_stdout(data)
        return
    for other in protect:
        if other != "-" and _same_file(path, other):
            raise OutputError(f"refusing to overwrite the input file {path}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None  # also a dangling symlink: the rename below replaces the link itself
    except OSError as e:
        raise OutputError(_describe(e, path)) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path} is a directory")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            _write_in_place(path, data)
            return
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} exists and is not a regular file")
        if not force:
            raise OutputError(f"{path} exists; pass --force to overwrite")
    if st is None and os.path.islink(path) and not force:
        raise OutputError(f"{path} exists; pass --force to overwrite")
    _write_atomic(path, data, force=force, mode=None if st is None else stat.S_IMODE(st.st_mode))


def discard_stdout() -> None:
    """Point fd 1 at /dev/null so Python's exit-time flush of stdout cannot fail noisily.

    Called by ``write_output`` after a failed stdout write; a caller that writes to
    stdout by other means can call it after catching ``BrokenPipeError`` itself.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # stdout is not backed by a descriptor (e.g. captured): nothing to flush
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def _write_stdout(data: bytes) -> None:
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        raise OutputError("stdout is not available for writing")
    try:
        sys.stdout.flush()  # keep any earlier text output ahead of our bytes
        out.write(data)
        out.flush()
    except OSError as e:
        # The bytes stay in the buffer; make the exit-time flush harmless.
        discard_stdout()
        if isinstance(e, BrokenPipeError) or e.errno == errno.EPIPE:
            raise OutputError("stdout closed before the output was written") from None
        raise OutputError(_describe(e, "stdout")) from None


def _same_file(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        # At least one does not exist (yet): compare the resolved names instead.
        return os.path.realpath(a) == os.path.realpath(b)


def _write_in_place(path: str, data: bytes) -> None:
    """Write straight into a device or FIFO (no temp file possible)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        raise OutputError(_describe(e, path)) from None
    try:
        _write_all(fd, data)
    except OSError as e:
        raise OutputError(_describe(e, path)) from None
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes, *, force: bool, mode: int | None) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmp: str | None = None
    fd = -1
    try:
        fd, tmp = _create_temp(directory, base)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # replacing a file keeps its permission bits
        _write_all(fd, data)
        os.fsync(fd)  # the data must be on disk before the rename makes it visible
        os.close(fd)
        fd = -1
        _publish(tmp, path, force=force)
        tmp = None
        _fsync_dir(directory)
    except OSError as e:
        raise OutputError(_describe(e, path)) from None
    finally:
        # Runs for OutputError, KeyboardInterrupt, anything: never leave the temp file.
        if fd >= 0:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _create_temp(directory: str, base: str) -> tuple[int, str]:
    """Like ``tempfile.mkstemp(dir=directory, prefix=f".{base}.", suffix=".tmp")``.

    mkstemp creates files with mode 0600; creating with 0666 lets the kernel apply the
    user's umask, so the output gets the permissions any new file would get, without
    the process-global umask() dance that reading the umask would need.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_ATTEMPTS):
        name = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "could not create a unique temporary file")


def _publish(tmp: str, path: str, *, force: bool) -> None:
    """Move the finished temp file to ``path``.

    Without ``force`` a hard link is made instead of a rename: link() fails if the
    target appeared since the existence check, so a file created meanwhile is still
    not overwritten.
    """
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"{path} exists; pass --force to overwrite") from None
    except OSError as e:
        if e.errno not in _NO_LINK_ERRNOS:
            raise
        os.replace(tmp, path)  # no hard links here: fall back to a plain rename
        return
    os.unlink(tmp)


def _fsync_dir(directory: str) -> None:
    """Persist the rename itself; best effort (not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises instead on real errors
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _describe(e: OSError, path: str) -> str:
    """One-line, user-facing reason for an OSError while writing ``path``."""
    code = e.errno
    if code == errno.ENOSPC:
        return f"no space left on device writing {path}"
    if code == errno.EDQUOT:
        return f"disk quota exceeded writing {path}"
    if code in (errno.EACCES, errno.EPERM):
        return f"cannot write {path}: permission denied"
    if code == errno.ENOENT:
        return f"cannot write {path}: directory {os.path.dirname(path) or '.'} does not exist"
    if code == errno.ENOTDIR:
        return f"cannot write {path}: a parent of it is not a directory"
    if code == errno.EROFS:
        return f"cannot write {path}: read-only file system"
    if code == errno.EISDIR:
        return f"{path} is a directory"
    reason = e.strerror or str(e) or type(e).__name__
    return f"cannot write {path}: {reason}"
