"""Where a job's bytes may come from and where its callbacks may go: allow-list decisions.

The decisions are pure functions over already-parsed values; the only I/O (resolving a path's
symlinks) is in `resolve_path_source`, kept next to them so the rules read in one place.
The URL prefix rules themselves are the contract's (`ferry_contract.urls`), shared with the backend.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ferry_contract import ErrorCode
from ferry_contract.urls import UrlPrefix, allowed_by, parse_url
from ferry_importer.errors import ImporterError


class SourceRejected(ImporterError):
    """A source or callback URL refused before any work starts (the API answers 4xx with its code)."""

    code = ErrorCode.SOURCE_NOT_ALLOWED


def check_url(url: str, prefixes: list[UrlPrefix], *, what: str = "source URL") -> str:
    """Return the URL when it starts with an allowed prefix; otherwise raise SourceRejected."""
    try:
        if prefixes:
            allowed_by(url, prefixes)  # the contract's rule, the same the backend applies
        else:
            parse_url(url)
    except ValueError as exc:
        raise SourceRejected(f"{what} refused: {exc}") from None
    if not prefixes:
        raise SourceRejected(f"{what} refused: this importer allows no URL sources (ALLOWED_URL_PREFIXES)")
    return url


def check_callback_url(url: str, prefixes: list[UrlPrefix]) -> str:
    """Callback URLs: any http(s) URL when no prefixes are configured, else the same rule as sources."""
    if prefixes:
        return check_url(url, prefixes, what="callback URL")
    try:
        parse_url(url)
    except ValueError as exc:
        raise SourceRejected(f"callback URL refused: {exc}") from None
    return url


def redact_url(url: str) -> str:
    """The URL without query and user info: queries carry download tokens and must not reach logs or events."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def is_within(path: Path, root: Path) -> bool:
    """True when the (already resolved) path is the root or below it."""
    return path == root or root in path.parents


def lexically_inside(path: PurePosixPath, roots: list[Path]) -> bool:
    """Inside a root before following symlinks, with `..` collapsed: catches traversal without touching disk."""
    normal = Path(os.path.normpath(path))
    return any(is_within(normal, root) for root in roots)


def resolve_path_source(text: str, roots: list[Path]) -> Path:
    """The real path of a `path` source, or SourceRejected.

    Traversal is refused before the file system is asked (so callers learn nothing about paths
    outside the roots); symlinks are then resolved and the target must still be inside a root.
    """
    if "\x00" in text:
        raise SourceRejected("source path contains a NUL byte")
    requested = PurePosixPath(text)
    if not requested.is_absolute():
        raise SourceRejected(f"source path {text!r} must be absolute")
    if not roots:
        raise SourceRejected("this importer allows no path sources (ALLOWED_ROOTS is empty)")
    if not lexically_inside(requested, roots):
        raise SourceRejected(f"source path {text!r} is outside the allowed roots")
    try:
        real = Path(os.path.realpath(text, strict=True))
    except FileNotFoundError:
        raise SourceRejected(f"source path {text!r} does not exist", code=ErrorCode.SOURCE_NOT_FOUND) from None
    except OSError as exc:
        raise SourceRejected(
            f"source path {text!r} cannot be read", exc.strerror, code=ErrorCode.SOURCE_UNAVAILABLE
        ) from None
    if not any(is_within(real, root) for root in roots):
        raise SourceRejected(f"source path {text!r} resolves outside the allowed roots (symlink)")
    if not real.is_file():
        raise SourceRejected(f"source path {text!r} is not a regular file", code=ErrorCode.SOURCE_NOT_FOUND)
    if not os.access(real, os.R_OK):
        raise SourceRejected(f"source path {text!r} is not readable by the importer", code=ErrorCode.SOURCE_UNAVAILABLE)
    return real
