"""Captured deliveries: the export format (JSON lines), and the pure rules for reading and rewriting them.

One record per arrival, in the order the backend received them (a repeated webhook-id is its own
record, verdict `duplicate`): `{"webhook_id", "host", "job_id", "seq", "type", "received_at", "verdict",
"duplicates", "headers", "body"}` where `body` is the raw request body as received (it still verifies
against `headers` with the host's secret) and `headers` the request headers the backend kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from . import errors
from .formatting import parse_time

FIELDS = ("webhook_id", "host", "job_id", "seq", "type", "received_at", "verdict", "duplicates", "headers", "body")


def from_delivery(delivery: dict) -> dict:
    """A record from one entry of `GET /api/imports/{id}/deliveries`."""
    return {name: delivery.get(name) for name in FIELDS} | {"headers": dict(delivery.get("headers") or {})}


def delays(records: list[dict]) -> list[float | None]:
    """Seconds between each record's receipt and the one before it (None for the first or unknown times)."""
    out: list[float | None] = []
    previous = None
    for record in records:
        at = parse_time(record.get("received_at"))
        out.append((at - previous).total_seconds() if at and previous else None)
        previous = at or previous
    return out


def write_jsonl(records: Iterable[dict], stream: IO[str]) -> int:
    count = 0
    for record in records:
        stream.write(json.dumps({k: record.get(k) for k in FIELDS}, separators=(",", ":")) + "\n")
        count += 1
    return count


def read_jsonl(path: Path) -> list[dict]:
    """Records in file order (the captured order). Any malformed line is a usage error naming the line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise errors.BadInput(f"cannot read {path}: {exc.strerror}", code="unreadable_capture") from None
    records = []
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise errors.BadInput(f"{path}:{number}: not JSON ({exc.msg})", code="invalid_capture") from None
            if not isinstance(record, dict) or not isinstance(record.get("body"), str):
                raise errors.BadInput(f"{path}:{number}: a delivery needs a string 'body'", code="invalid_capture")
            for name in ("host", "webhook_id"):
                if not isinstance(record.get(name), str) or not record[name]:
                    raise errors.BadInput(f"{path}:{number}: a delivery needs its '{name}'", code="invalid_capture")
            records.append(record)
    return records


def derived_webhook_id(original: str, job_id: str) -> str:
    """A fresh webhook-id for a rewritten delivery; the same rewrite twice gives the same id (dedupe holds)."""
    digest = hashlib.sha256(f"{original}\0{job_id}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


def rewrite(record: dict, *, job_id: str | None = None, host: str | None = None) -> tuple[str, str]:
    """The (body, webhook_id) to send: the raw body untouched, or with data.job_id / data.host replaced."""
    webhook_id = record["webhook_id"]
    if job_id is None and host is None:
        return record["body"], webhook_id
    try:
        payload = json.loads(record["body"])
        data = payload["data"]
    except (ValueError, KeyError, TypeError):
        raise errors.BadInput(
            f"delivery {webhook_id} has no JSON body with 'data' to rewrite", code="invalid_capture"
        ) from None
    if job_id is not None:
        data["job_id"] = job_id
    if host is not None:
        data["host"] = host
    body = json.dumps(payload, separators=(",", ":"))
    return body, derived_webhook_id(webhook_id, f"{job_id or ''}\0{host or ''}")
