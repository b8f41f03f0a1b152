"""Where a job's bytes may come from and where its callbacks may go: allow-list decisions.

The decisions are pure functions over already-parsed values; the only I/O (resolving a path's
symlinks) is in `resolve_path_source`, kept next to them so the rules read in one place.
A URL prefix matches on scheme, host and port exactly and on the path at a segment boundary, so
`http://h/uploads` allows `http://h/uploads/x` but never `http://h/uploads-evil` or `http://h.evil`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from ferry_contract import ErrorCode

from .errors import ImporterError

DEFAULT_PORTS = {"http": 80, "https": 443}


class SourceRejected(ImporterError):
    """A source or callback URL refused before any work starts (the API answers 4xx with its code)."""

    code = ErrorCode.SOURCE_NOT_ALLOWED


@dataclass(frozen=True)
class UrlPrefix:
    scheme: str
    host: str
    port: int
    path: str
    text: str


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> ParsedUrl:
    """Split an absolute http(s) URL, refusing the tricks that make prefix checks lie; ValueError says why."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        raise ValueError("URL contains whitespace, control characters or backslashes")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("URL must be http:// or https://")
    if "@" in parts.netloc:
        raise ValueError("URL must not carry user information")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if parts.fragment:
        raise ValueError("URL must not have a fragment")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("URL has an invalid port") from None
    path = parts.path or "/"
    segments = unquote(path).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError("URL path must not contain . or .. segments")
    return ParsedUrl(scheme=scheme, host=parts.hostname.lower(), port=port, path=path)


def parse_prefix(text: str) -> UrlPrefix:
    """A configured prefix; raises ValueError for prefixes that could never be matched safely."""
    if "?" in text or "#" in text:
        raise ValueError(f"URL prefix {text!r} must not have a query or fragment")
    try:
        parsed = parse_url(text)
    except ValueError as exc:
        raise ValueError(f"URL prefix {text!r}: {exc}") from None
    return UrlPrefix(parsed.scheme, parsed.host, parsed.port, parsed.path, text)


def prefix_matches(url: ParsedUrl, prefix: UrlPrefix) -> bool:
    if (url.scheme, url.host, url.port) != (prefix.scheme, prefix.host, prefix.port):
        return False
    if prefix.path.endswith("/"):
        return url.path.startswith(prefix.path)
    return url.path == prefix.path or url.path.startswith(prefix.path + "/")


def check_url(url: str, prefixes: list[UrlPrefix], *, what: str = "source URL") -> str:
    """Return the URL when it starts with an allowed prefix; otherwise raise SourceRejected."""
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise SourceRejected(f"{what} refused: {exc}") from None
    if not prefixes:
        raise SourceRejected(f"{what} refused: this importer allows no URL sources (ALLOWED_URL_PREFIXES)")
    if not any(prefix_matches(parsed, prefix) for prefix in prefixes):
        raise SourceRejected(f"{what} refused: it does not start with an allowed prefix")
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
        raise SourceRejected(
            f"source path {text!r} is not readable by the importer", code=ErrorCode.SOURCE_UNAVAILABLE
        )
    return real
