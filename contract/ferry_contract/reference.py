"""Image reference validation (the distribution/reference grammar), shared by every ferry component.

Checked before a single byte of an archive is read, so a typo fails in milliseconds rather than
after minutes of decompression. The same patterns are exported in the JSON Schema so the browser
validates with identical rules while the user types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = rf"(?:{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
NAME_MAX = 255

# A reference is [domain/]path[:tag]. The first component counts as a domain only when it
# contains "." or ":" or is "localhost", otherwise it is part of the path (docker's own rule).
REFERENCE_PATTERN = rf"^(?:(?:{DOMAIN})/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*(?::{TAG})?$"
_TAG_RE = re.compile(TAG)
_PATH_RE = re.compile(rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(DOMAIN)


class InvalidReference(ValueError):
    """The image name does not follow the reference grammar; the message says which part is wrong."""


@dataclass(frozen=True)
class ImageReference:
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


def parse_reference(text: str, default_tag: str = "latest") -> ImageReference:
    """Split and validate `[registry[:port]/]repo[:tag]`; raise InvalidReference with a readable reason."""
    if not text or not text.strip():
        raise InvalidReference("image name is empty")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise InvalidReference(f"image name {text!r} contains whitespace")
    if "@" in text:
        raise InvalidReference(f"image name {text!r} has a digest; give a tag instead")
    repository, tag = _split_tag(text)
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise InvalidReference(
            f"tag {tag!r} is invalid: use letters, digits, '_', '.', '-' (not first), at most 128 characters"
        )
    domain, path = _split_domain(repository)
    if domain is not None and not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReference(f"registry {domain!r} is not a valid host[:port]")
    if not _PATH_RE.fullmatch(path):
        if path.lower() != path:
            raise InvalidReference(f"repository {path!r} must be lowercase")
        raise InvalidReference(
            f"repository {path!r} is invalid: use lowercase letters, digits and single separators (. _ __ -) between them"
        )
    if len(repository) > NAME_MAX:
        raise InvalidReference(f"repository name is longer than {NAME_MAX} characters")
    return ImageReference(repository=repository, tag=tag or default_tag)


def _split_tag(text: str) -> tuple[str, str | None]:
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1 :]
    return text, None


def _split_domain(repository: str) -> tuple[str | None, str]:
    first, sep, rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return None, repository
