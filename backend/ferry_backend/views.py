"""The JSON shapes of API.md, built from rows. One place, used by HTTP routes and Socket.IO alike."""

from __future__ import annotations

import json
import math
from datetime import datetime

from .job_rules import host_alive
from .models import Delivery, DeliveryRepeat, Event, Host, Job, Upload, utcnow


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def finite(value):
    """`value` with every Infinity or NaN replaced by None: JSON has no such numbers, and a browser refuses a
    message that carries one. The contract refuses them; this keeps rows stored before it did from going out."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class FiniteJSON:
    """The json module of the Socket.IO server: encodes as usual, and never writes Infinity or NaN."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj, **kwargs) -> str:
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # only when a non-finite number is in there: the common path pays nothing
            return json.dumps(finite(obj), allow_nan=False, **kwargs)


def job_view(job: Job) -> dict:
    return finite(
        {
            "id": job.id,
            "host": job.host,
            "image": job.image,
            "upload_id": job.upload_id,
            "source_url": job.source_url,
            "state": job.state,
            "phase": job.phase,
            "seq": job.seq,
            "percent": job.percent,
            "bytes_done": job.bytes_done,
            "bytes_total": job.bytes_total,
            "rate_bps": job.rate_bps,
            "eta_s": job.eta_s,
            "phase_elapsed_s": job.phase_elapsed_s,
            "queue_position": job.queue_position,
            "layers_done": job.layers_done,
            "layers_total": job.layers_total,
            "layer_bytes_done": job.layer_bytes_done,
            "layer_bytes_total": job.layer_bytes_total,
            "bytes_available": job.bytes_available,
            "result": job.result,
            "error": job.error,
            "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at),
            "finished_at": iso(job.finished_at),
            "doubt": doubt_view(job),
            "presumed": job.presumed_at is not None,
            "created_by": job.created_by,
            "source_name": job.source_name,
        }
    )


def doubt_view(job: Job, now: datetime | None = None) -> dict | None:
    """What the backend doubts about a job: its host has been silent since `since` (null while it speaks)."""
    if job.silent_since is None or (job.state in ("succeeded", "failed", "canceled") and job.presumed_at is None):
        return None
    silent_s = max(0.0, ((now or utcnow()) - job.silent_since).total_seconds())
    return {
        "code": "host_silent",
        "host": job.host,
        "since": iso(job.silent_since),
        "silent_s": round(silent_s, 1),
        "message": f"no word from {job.host} for {silent_s:.0f} s",
    }


def event_view(event: Event) -> dict:
    return {
        "seq": event.seq,
        "type": event.type,
        "timestamp": iso(event.timestamp),
        "data": finite(event.data),
        "webhook_id": event.webhook_id,
        "received_at": iso(event.received_at),
    }


def host_view(host: Host, now: datetime, stale_s: float) -> dict:
    return {
        "name": host.name,
        "url": host.url,
        "alive": host_alive(host.last_seen, now, stale_s),
        "last_seen": iso(host.last_seen),
        "silent_s": None if host.last_seen is None else round(max(0.0, (now - host.last_seen).total_seconds()), 1),
        "disk_free_bytes": host.disk_free_bytes,
        "engine_version": host.engine_version,
        "running": list(host.running or []),
        "queued": list(host.queued or []),
    }


def upload_view(upload: Upload) -> dict:
    return {
        "id": upload.id,
        "size": upload.size,
        "offset": upload.offset,
        "complete": upload.complete,
        "sha256": upload.sha256,
        "filename": upload.filename,
        "created_at": iso(upload.created_at),
        "completed_at": iso(upload.completed_at) if upload.completed_at else None,
        "expires_at": iso(upload.expires_at),
    }


def _delivery(row: Delivery | DeliveryRepeat, first: Delivery | None, verdict: str, duplicates: int) -> dict:
    return {
        "webhook_id": row.webhook_id,
        "host": row.host,
        "job_id": row.job_id,
        "seq": first.seq if first else None,
        "type": first.event_type if first else None,
        "received_at": iso(row.received_at),
        "verdict": verdict,
        "duplicates": duplicates,
        "headers": dict(row.headers or {}),
        "body": row.body,
        "answer": answer_view(row.answer_status, row.answer),
    }


def answer_view(status: int | None, body: str | None) -> dict | None:
    """What the backend answered the delivery: {status, body} (body as sent); None when it was not kept."""
    return None if status is None else {"status": status, "body": body}


def deliveries_view(firsts: list[Delivery], repeats: list[DeliveryRepeat]) -> list[dict]:
    """One entry per arrival, in arrival order: first arrivals with their verdict, repeats as `duplicate`."""
    by_key = {(d.host, d.webhook_id): d for d in firsts}
    rows = [(d.received_at, 0, d.id, _delivery(d, d, d.verdict, d.duplicates)) for d in firsts]
    rows += [
        (r.received_at, 1, r.id, _delivery(r, by_key.get((r.host, r.webhook_id)), "duplicate", 0)) for r in repeats
    ]
    rows.sort(key=lambda row: row[:3])
    return [row[3] for row in rows]
