"""URL allow-list rules shared by both services: where a job's bytes may come from.

A URL prefix matches on scheme, host and port exactly and on the path at a segment boundary, so
`http://h/uploads` allows `http://h/uploads/x` but never `http://h/uploads-evil`, `http://h.evil`,
`http://h@evil` or `http://h/uploads/../admin`. Pure functions; ValueError says why a URL is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


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


def allowed_by(url: str, prefixes: list[UrlPrefix]) -> None:
    """None when `url` is well-formed and starts with one of `prefixes`; else ValueError saying why."""
    parsed = parse_url(url)
    if not any(prefix_matches(parsed, prefix) for prefix in prefixes):
        raise ValueError("it does not start with an allowed prefix")
