"""Bearer tokens, roles and the short-lived signed links importers pull uploads from."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import IntEnum
from typing import TypeGuard


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    viewer = 1
    operator = 2
    admin = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown role {name!r}: use viewer, operator or admin") from None


def new_token() -> str:
    """A fresh bearer token (256 bits of randomness)."""
    return "fy_" + secrets.token_urlsafe(32)


def new_id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(12)


def hash_token(token: str) -> str:
    """Tokens are random, not passwords: a plain SHA-256 is enough to never store them readable."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_decimal(text: str | None) -> TypeGuard[str]:
    """ASCII digits only: str.isdigit() also says yes to "²" or "٣", which int() then refuses."""
    return text is not None and text != "" and text.isascii() and text.isdigit()


def sign_content_link(key: bytes, upload_id: str, ttl_s: int, now: float | None = None) -> str:
    """`<expires>.<hmac>`: lets one importer read one upload until `expires`, nothing else."""
    expires = int((now or time.time()) + ttl_s)
    mac = hmac.new(key, f"{upload_id}.{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def check_content_link(key: bytes, upload_id: str, token: str, now: float | None = None) -> str | None:
    """None if the link is valid for this upload now, else the reason it is not."""
    expires_text, _, mac = token.partition(".")
    if not is_decimal(expires_text) or not mac or not mac.isascii():  # compare_digest takes ASCII text only
        return "malformed content token"
    expected = hmac.new(key, f"{upload_id}.{expires_text}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        return "content token does not match this upload"
    if int(expires_text) < (now or time.time()):
        return "content token expired"
    return None
