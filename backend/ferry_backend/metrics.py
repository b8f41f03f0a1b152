"""Prometheus metrics of one backend process (prometheus-client), served at /metrics to viewers.

Counters and histograms count what this replica did (sum them over replicas). The job totals
(`ferry_imports`, `ferry_imported_bytes_total`) are read from the shared database at each scrape, so
every replica reports the same, complete numbers: take them from any one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

CALLBACKS = Counter("ferry_callbacks_total", "Verified callbacks by verdict.", ["verdict"], registry=REGISTRY)
CALLBACKS_REFUSED = Counter(
    "ferry_callbacks_refused_total", "Callbacks refused before storing, by code.", ["code"], registry=REGISTRY
)
UPLOAD_BYTES = Counter("ferry_upload_bytes_total", "Bytes received by tus PATCH requests.", registry=REGISTRY)
DISPATCHES = Counter("ferry_dispatches_total", "Jobs sent to importers, by outcome.", ["outcome"], registry=REGISTRY)
BACKEND_FAILURES = Counter(
    "ferry_backend_failed_jobs_total", "Jobs the backend failed itself, by code.", ["code"], registry=REGISTRY
)
INGEST_BATCH = Histogram(
    "ferry_callback_batch_size",
    "Callbacks stored per transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
EMIT_LATENCY = Histogram(
    "ferry_callback_to_emit_seconds",
    "From a callback's arrival to its live event handed to a subscribed socket.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    registry=REGISTRY,
)
SOCKETS = Gauge("ferry_socket_clients", "Connected Socket.IO clients of this process.", registry=REGISTRY)
IMPORT_SECONDS = Histogram(
    "ferry_import_duration_seconds",
    "From a job's creation to its final state, by final state and host.",
    ["state", "host"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    registry=REGISTRY,
)


class JobTotals(Collector):
    """Jobs by state and host, and the archive bytes of succeeded imports, as last read from the database."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], int] = {}
        self.imported_bytes: dict[str, int] = {}

    def update(self, jobs: dict[tuple[str, str], int], imported_bytes: dict[str, int]) -> None:
        self.jobs, self.imported_bytes = jobs, imported_bytes

    def collect(self):
        imports = GaugeMetricFamily(
            "ferry_imports", "Jobs in the database by state and host.", labels=["state", "host"]
        )
        for (state, host), count in sorted(self.jobs.items()):
            imports.add_metric([state, host], count)
        imported = CounterMetricFamily(
            "ferry_imported_bytes", "Archive bytes of succeeded imports, by host.", labels=["host"]
        )
        for host, total in sorted(self.imported_bytes.items()):
            imported.add_metric([host], total)
        yield imports
        yield imported


JOB_TOTALS = JobTotals()
REGISTRY.register(JOB_TOTALS)


def observe_finished(finished: tuple[str, str, float] | None) -> None:
    """(final state, host, seconds since the job was created) of a job that just ended here."""
    if finished is not None:
        state, host, seconds = finished
        IMPORT_SECONDS.labels(state, host).observe(max(seconds, 0.0))


def render() -> bytes:
    return generate_latest(REGISTRY)
