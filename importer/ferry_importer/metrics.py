"""Prometheus metrics of the importer service (prometheus-client), served at `GET /metrics` with the token.

Counters are bumped where things happen; the gauges (jobs running/queued, outbox by status) are read
fresh at every scrape so they can never drift from the job manager and the database.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS_FINISHED = Counter(
    "ferry_importer_jobs_finished", "Jobs that reached a final state.", ["state"], registry=REGISTRY
)
CALLBACK_ATTEMPTS = Counter(
    "ferry_importer_callback_attempts", "Callback delivery attempts by outcome.", ["outcome"], registry=REGISTRY
)
CALLBACK_SECONDS = Histogram(
    "ferry_importer_callback_attempt_seconds",
    "Duration of one callback attempt.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
IMPORT_SECONDS = Histogram(
    "ferry_importer_import_duration_seconds",
    "From a job's arrival to its final state.",
    ["state"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    registry=REGISTRY,
)
IMPORTED_BYTES = Counter("ferry_importer_imported_bytes", "Archive bytes of succeeded imports.", registry=REGISTRY)
JOBS_ACTIVE = Gauge("ferry_importer_jobs", "Jobs running or waiting now.", ["state"], registry=REGISTRY)
OUTBOX = Gauge("ferry_importer_outbox_messages", "Callbacks in the outbox by status.", ["status"], registry=REGISTRY)


def observe_finished(state: str, seconds: float, bytes_done: int) -> None:
    IMPORT_SECONDS.labels(state).observe(max(seconds, 0.0))
    if state == "succeeded":
        IMPORTED_BYTES.inc(bytes_done)


def render(running: int, queued: int, outbox_counts: dict[str, int]) -> bytes:
    """The exposition text, with the gauges set from the caller's fresh numbers."""
    JOBS_ACTIVE.labels("running").set(running)
    JOBS_ACTIVE.labels("queued").set(queued)
    for status, count in outbox_counts.items():
        OUTBOX.labels(status).set(count)
    return generate_latest(REGISTRY)
