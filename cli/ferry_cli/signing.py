"""Signed callbacks from the CLI: secrets, Standard Webhooks signatures (the `standardwebhooks` package),
and a sender that POSTs one delivery to `{to}/api/callbacks/{host}` and says what the receiver made of it."""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from standardwebhooks import Webhook

from . import errors
from .api import error_of, transport_error

SECRET_PATTERN = re.compile(r"whsec_[A-Za-z0-9+/=]+")
MIN_SECRET_BYTES = 16
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # a transport error or a 5xx is retried with the same webhook-id
SIGNATURE_REFUSALS = frozenset({"unknown_host", "missing_signature", "bad_signature", "stale_timestamp"})


def check_secret(secret: str) -> str:
    """A `whsec_` + base64 secret of at least 16 bytes, as the backend registers them."""
    secret = secret.strip()
    if not secret.startswith("whsec_"):
        raise errors.BadInput("the webhook secret must start with whsec_", code="invalid_secret")
    try:
        raw = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise errors.BadInput("the webhook secret is not whsec_ followed by base64", code="invalid_secret") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise errors.BadInput(f"the webhook secret is shorter than {MIN_SECRET_BYTES} bytes", code="invalid_secret")
    return secret


def secret_from_text(text: str, origin: str) -> str:
    """The one `whsec_…` secret in a file: a bare secret, an env file or JSON holding one all work."""
    found = sorted(set(SECRET_PATTERN.findall(text)))
    if not found:
        raise errors.BadInput(f"no whsec_ secret in {origin}", code="invalid_secret")
    if len(found) > 1:
        raise errors.BadInput(
            f"{origin} holds {len(found)} different whsec_ secrets; pass --secret instead", code="invalid_secret"
        )
    return check_secret(found[0])


def load_secret(secret: str | None, secret_file: Path | None) -> str:
    if (secret is None) == (secret_file is None):
        raise errors.BadInput("give exactly one of --secret and --host-secret-from", code="invalid_secret")
    if secret is not None:
        return check_secret(secret)
    assert secret_file is not None
    try:
        text = secret_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.BadInput(f"cannot read {secret_file}: {exc.strerror}", code="invalid_secret") from None
    return secret_from_text(text, str(secret_file))


def sign_headers(secret: str, webhook_id: str, body: str, now: float | None = None) -> dict[str, str]:
    """The headers of one attempt: its own timestamp, a fresh signature over id.timestamp.body."""
    seconds = int(time.time() if now is None else now)
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(seconds, tz=UTC), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "ferry-cli",
    }


@dataclass(frozen=True)
class Result:
    """What the receiver answered for one delivery."""

    status: int
    verdict: str | None = None  # applied, stale, after_terminal, duplicate, heartbeat
    code: str | None = None  # the refusal's error code
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class Sender:
    """POSTs signed callbacks; retries transport errors and 5xx, raises Unreachable when they persist."""

    def __init__(self, to: str, secret: str, *, timeout: float = 30.0, retry_delays=RETRY_DELAYS_S, sleep=time.sleep):
        self.to = to
        self.secret = secret
        self.retry_delays = tuple(retry_delays)
        self.sleep = sleep
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def url_for(self, host: str) -> str:
        return f"{self.to}/api/callbacks/{quote(host, safe='')}"

    def send(self, host: str, webhook_id: str, body: str) -> Result:
        url = self.url_for(host)
        for delay in (*self.retry_delays, None):
            try:
                response = self._http.post(
                    url, content=body.encode(), headers=sign_headers(self.secret, webhook_id, body)
                )
            except httpx.TransportError as exc:
                if delay is None:
                    raise transport_error(exc, self.to) from None
                self.sleep(delay)
                continue
            if response.status_code >= 500 and delay is not None:
                self.sleep(delay)
                continue
            if response.is_success:
                try:
                    verdict = response.json().get("verdict")
                except (ValueError, AttributeError):
                    verdict = None
                return Result(response.status_code, verdict=verdict)
            code, message = error_of(response)
            return Result(response.status_code, code=code or f"http_{response.status_code}", message=message)
        raise AssertionError("unreachable")


def summarize(results: list[Result]) -> tuple[Counter, Counter, dict[str, str]]:
    """(accepted by verdict, refused by code, one message per refusal code)."""
    accepted: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    messages: dict[str, str] = {}
    for result in results:
        if result.accepted:
            accepted[result.verdict or "accepted"] += 1
        else:
            code = result.code or "refused"
            refused[code] += 1
            messages.setdefault(code, result.message or "")
    return accepted, refused, messages


def refusal_line(refused: Counter, messages: dict[str, str], total: int) -> str:
    parts = [f"{count} {code} ({messages.get(code) or 'no message'})" for code, count in refused.most_common()]
    return f"{sum(refused.values())} of {total} deliveries refused: " + "; ".join(parts)
