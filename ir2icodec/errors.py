"""The codec's own error types.

Every failure a user can cause is raised as an ``Ir2iError`` whose message is one
line fit for stderr; the CLI prints it and exits non-zero, never a traceback.
"""


class Ir2iError(Exception):
    """Base class: ``str(err)`` is a single human-readable line."""

    exit_code = 1


class UsageError(Ir2iError):
    """Options that do not fit together or are out of range (e.g. stage counts)."""

    exit_code = 2


class FormatError(Ir2iError):
    """The input is not a readable .ir2i file (bad magic, malformed header or chunk)."""


class UnsupportedVersionError(FormatError):
    """The file was written by a newer format version or uses a critical feature we lack."""


class CorruptDataError(FormatError):
    """A CRC does not match: the bytes were damaged in storage or transit."""


class TruncatedError(FormatError):
    """The file ends before even the first code is complete."""


class ModelMismatchError(Ir2iError):
    """The file was made by another model than the one asked to decode it."""


class TablesNeededError(ModelMismatchError):
    """A format-version-3 file's codes were read without the bit tables of the model that
    made them (``read_container(tables=...)``; the codec passes the model's)."""


class ModelError(Ir2iError):
    """A model bundle is missing, incomplete or unreadable."""


class ImageInputError(Ir2iError):
    """The input image cannot be read (missing, not an image, truncated, unsupported)."""


class LimitError(Ir2iError):
    """A size limit (e.g. maximum pixels) would be exceeded; a flag can raise it."""


class OutputError(Ir2iError):
    """The output cannot be written (exists without --force, disk full, closed pipe)."""


class Ir2iWarning(UserWarning):
    """A note the CLI prints as ``ir2i: warning: ...`` (e.g. a truncated file was decoded),
    issued with ``warnings.warn`` by the Python API and the Pillow plugin."""
