"""Prometheus metrics of one backend process (prometheus-client), served at /metrics to viewers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

CALLBACKS = Counter("ferry_callbacks_total", "Verified callbacks by verdict.", ["verdict"], registry=REGISTRY)
CALLBACKS_REFUSED = Counter("ferry_callbacks_refused_total", "Callbacks refused before storing, by code.", ["code"], registry=REGISTRY)
UPLOAD_BYTES = Counter("ferry_upload_bytes_total", "Bytes received by tus PATCH requests.", registry=REGISTRY)
DISPATCHES = Counter("ferry_dispatches_total", "Jobs sent to importers, by outcome.", ["outcome"], registry=REGISTRY)
BACKEND_FAILURES = Counter("ferry_backend_failed_jobs_total", "Jobs the backend failed itself, by code.", ["code"], registry=REGISTRY)
INGEST_BATCH = Histogram("ferry_callback_batch_size", "Callbacks stored per transaction (group commit).",
                         buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=REGISTRY)
EMIT_LATENCY = Histogram(
    "ferry_callback_to_emit_seconds", "From a callback's arrival to its live event handed to a subscribed socket.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0), registry=REGISTRY)
SOCKETS = Gauge("ferry_socket_clients", "Connected Socket.IO clients of this process.", registry=REGISTRY)


def render() -> bytes:
    return generate_latest(REGISTRY)
