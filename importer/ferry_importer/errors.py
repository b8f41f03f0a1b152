"""The importer's own error tree: every failure a user can see has a stable code and one line to act on.

Foreign exceptions (httpx, lzma, zlib, zstd, OSError, tarfile) are translated into these at the
boundary where they happen, so callers only ever catch `ImporterError` and read `.code`.
"""

from __future__ import annotations

from ferry_contract import ErrorCode, ErrorInfo
from ferry_contract.events import ERROR_DETAIL_MAX, ERROR_MESSAGE_MAX


class ImporterError(Exception):
    """Base of every importer failure. `message` is one line for a person, `detail` the cause for operators."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, detail: str | None = None, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    def info(self) -> ErrorInfo:
        """As the contract carries it: an engine's long answer is cut to the contract's bounds, never refused."""
        detail = self.detail[:ERROR_DETAIL_MAX] if self.detail is not None else None
        return ErrorInfo(code=ErrorCode(self.code).value, message=self.message[:ERROR_MESSAGE_MAX], detail=detail)

    def __str__(self) -> str:
        return f"{ErrorCode(self.code).value}: {self.message}"


class InvalidReference(ImporterError):
    code = ErrorCode.INVALID_REFERENCE


class InvalidChange(ImporterError):
    code = ErrorCode.INVALID_CHANGE


class SourceNotFound(ImporterError):
    code = ErrorCode.SOURCE_NOT_FOUND


class SourceUnavailable(ImporterError):
    code = ErrorCode.SOURCE_UNAVAILABLE


class SourceMismatch(ImporterError):
    code = ErrorCode.SOURCE_MISMATCH


class UploadAbandoned(ImporterError):
    """The upload being imported while it arrives stopped for the backend's idle limit."""

    code = ErrorCode.UPLOAD_ABANDONED


class ArchiveError(ImporterError):
    """Something is wrong with the archive's bytes; the subclasses say what."""


class EmptyArchive(ArchiveError):
    code = ErrorCode.EMPTY_ARCHIVE


class NotAnArchive(ArchiveError):
    code = ErrorCode.NOT_AN_ARCHIVE


class CorruptCompression(ArchiveError):
    code = ErrorCode.CORRUPT_COMPRESSION


class CompressionMemoryLimit(ArchiveError):
    """The archive's own headers ask for more decoder memory than the importer grants (an xz bomb)."""

    code = ErrorCode.COMPRESSION_MEMORY_LIMIT


class TruncatedCompression(ArchiveError):
    code = ErrorCode.TRUNCATED_COMPRESSION


class TruncatedTar(ArchiveError):
    code = ErrorCode.TRUNCATED_TAR


class CorruptTar(ArchiveError):
    code = ErrorCode.CORRUPT_TAR


class MissingManifest(ArchiveError):
    code = ErrorCode.MISSING_MANIFEST


class UnsupportedLayout(ArchiveError):
    code = ErrorCode.UNSUPPORTED_LAYOUT


class EngineUnreachable(ImporterError):
    code = ErrorCode.ENGINE_UNREACHABLE


class EngineError(ImporterError):
    code = ErrorCode.ENGINE_ERROR


class EngineStalled(ImporterError):
    code = ErrorCode.ENGINE_STALLED


class InsufficientDisk(ImporterError):
    code = ErrorCode.INSUFFICIENT_DISK


class VerificationFailed(ImporterError):
    code = ErrorCode.VERIFICATION_FAILED


class Interrupted(ImporterError):
    code = ErrorCode.INTERRUPTED
