"""Standard Webhooks signing of callbacks, through the `standardwebhooks` package (no hand-rolled HMAC).

The message id is minted once per event and stored with it, so every retry of one event carries
the same `webhook-id` (receivers dedupe on it); the timestamp and signature are the attempt's own.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from standardwebhooks import Webhook

CONTENT_TYPE = "application/json"


def new_message_id() -> str:
    """`msg_` + a time-ordered, unguessable suffix (sortable in logs, unique across restarts)."""
    return f"msg_{time.time_ns():x}{secrets.token_hex(8)}"


class Signer:
    def __init__(self, secret: str):
        self._webhook = Webhook(secret)

    def headers(self, message_id: str, body: str, now: float | None = None) -> dict[str, str]:
        """Headers for one attempt: id, this attempt's timestamp, `v1,<base64 HMAC-SHA256>`."""
        seconds = int(time.time() if now is None else now)
        at = datetime.fromtimestamp(seconds, tz=UTC)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(seconds),
            "webhook-signature": self._webhook.sign(message_id, at, body),
            "content-type": CONTENT_TYPE,
        }

    def verify(self, body: bytes | str, headers: dict[str, str]) -> None:
        """Raise standardwebhooks.WebhookVerificationError unless the headers sign this body."""
        self._webhook.verify(body, headers, json_parse=False)
