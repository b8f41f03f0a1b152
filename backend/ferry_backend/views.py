"""The JSON shapes of API.md, built from rows. One place, used by HTTP routes and Socket.IO alike."""

from __future__ import annotations

from datetime import datetime

from .jobs import host_alive
from .models import Event, Host, Job, Upload


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def job_view(job: Job) -> dict:
    return {
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
        "result": job.result,
        "error": job.error,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "finished_at": iso(job.finished_at),
    }


def event_view(event: Event) -> dict:
    return {
        "seq": event.seq,
        "type": event.type,
        "timestamp": iso(event.timestamp),
        "data": event.data,
        "webhook_id": event.webhook_id,
        "received_at": iso(event.received_at),
    }


def host_view(host: Host, now: datetime, stale_s: float) -> dict:
    return {
        "name": host.name,
        "url": host.url,
        "alive": host_alive(host.last_seen, now, stale_s),
        "last_seen": iso(host.last_seen),
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
        "expires_at": iso(upload.expires_at),
    }
