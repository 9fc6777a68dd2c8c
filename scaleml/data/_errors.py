"""Typed errors of bad data: each names the file (and the column and row where known).

They are raised where the data is read, usually inside a task on a Dask worker, and reach the
caller as themselves (they pickle with their attributes), so the CLI prints one line and exits
with code 2, MLflow runs end FAILED and coordinator jobs FAILED with the same message.
Messages never quote the data itself: they name columns, rows and counts.
"""

from __future__ import annotations

from typing import Any

from scaleml.errors import DatasetError

# Cloud filesystems are extras: the protocol -> (the fsspec package, the scaleml extra).
_FILESYSTEM_EXTRAS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "adl": ("adlfs", "azure"),
}


class DataFileError(DatasetError):
    """A file of a dataset cannot be used as it is; ``path``, ``column`` and ``row`` (the row
    number within the file, from 0) say where, when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.column = column
        self.row = row

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.path, self.column, self.row))


class CorruptFileError(DataFileError):
    """A file is not readable in the dataset's format (truncated, corrupt, another format)."""


class SchemaMismatchError(DataFileError):
    """A file lacks a column the dataset reads (its other files have it)."""


class NonFiniteValueError(DataFileError):
    """A feature or the target holds NaN, infinity or a null where a number is needed."""


class MissingFilesystemError(DatasetError):
    """A URL needs an fsspec filesystem package that is not installed (``s3fs`` ...)."""

    def __init__(self, message: str, *, protocol: str = "", extra: str | None = None) -> None:
        super().__init__(message)
        self.protocol = protocol
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_filesystem, (str(self), self.protocol, self.extra))


def missing_filesystem(url: str, exc: ImportError) -> MissingFilesystemError:
    """The error for a URL whose filesystem package is missing, saying what to install."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else ""
    package, extra = _FILESYSTEM_EXTRAS.get(protocol, (None, None))
    if package is None:
        return MissingFilesystemError(
            f"{protocol}:// URLs need a filesystem package that is not installed "
            f"({type(exc).__name__}: {exc})",
            protocol=protocol,
        )
    return MissingFilesystemError(
        f"{protocol}:// URLs need {package}, which is not installed: "
        f"pip install 'scaleml[{extra}]' (on the client and on every Dask worker)",
        protocol=protocol,
        extra=extra,
    )


def reason(exc: BaseException) -> str:
    """A short reason for a reading error that never quotes the file's contents: Arrow's and
    the OS's messages about the file's structure are kept, others reduced to their type."""
    text = str(exc)
    for known in ("magic bytes not found", "Couldn't deserialize thrift", "file size"):
        if known.lower() in text.lower():
            return f"{type(exc).__name__}: {known}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _rebuild(
    cls: type[DataFileError], message: str, path: str | None, column: str | None, row: int | None
) -> DataFileError:
    return cls(message, path=path, column=column, row=row)


def _rebuild_filesystem(message: str, protocol: str, extra: str | None) -> MissingFilesystemError:
    return MissingFilesystemError(message, protocol=protocol, extra=extra)
