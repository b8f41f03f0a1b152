"""Backend test fixtures: real `ferry-backend serve` processes on free ports, each with its own DATA_DIR.

Starting one costs seconds on a busy 2-core machine, so the tests share two per session (one with
production timers, one with short ones) and keep apart by unique host names and job ids. The restart
tests restart the shared one: its state is durable, so the others do not notice.
"""

from __future__ import annotations

import pytest

from backend.tests.support import Backend, FakeImporter


@pytest.fixture(scope="session")
def _session_backends(tmp_path_factory):
    """The two shared backends, launched side by side (each start is mostly CPU-bound imports)."""
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>ferry</title><p>ferry operator page</p>")
    (web / "app.js").write_text("console.log('ferry');")
    shared = Backend(tmp_path_factory.mktemp("backend"), env_extra={"FERRY_HOST_STALE_S": "3600"})
    # Short timers and limits: 1000-byte uploads expiring after 1 s idle, PATCH idle 1 s, hosts silent after 2 s and presumed
    # lost after 6 s; a web page; source URLs only from two prefixes.
    quick = Backend(
        tmp_path_factory.mktemp("quick"),
        env_extra={
            "FERRY_WEB_DIR": str(web),
            "FERRY_MAX_UPLOAD_BYTES": "1000",
            "FERRY_UPLOAD_EXPIRY_S": "1",
            "FERRY_HOST_STALE_S": "2",
            "FERRY_HOST_LOST_S": "6",
            "FERRY_LIVENESS_INTERVAL_S": "0.5",
            "FERRY_UPLOAD_IDLE_S": "1",
            "FERRY_SOURCE_URL_PREFIXES": "http://x/,http://files.lab/images",
        },
    )
    started = {"backend": shared.launch(), "quick": quick.launch()}
    yield started
    for backend in started.values():
        backend.stop()


@pytest.fixture(scope="session")
def backend(_session_backends) -> Backend:
    """The backend most tests share (tests keep apart by unique host names and job ids)."""
    return _session_backends["backend"].wait_ready()


@pytest.fixture(scope="session")
def quick_backend(_session_backends) -> Backend:
    """Short timers and limits: 1000-byte uploads expiring after 1 s idle, PATCH idle 1 s, hosts silent after 2 s (lost after 6 s); a web page."""
    return _session_backends["quick"].wait_ready()


@pytest.fixture
async def fake():
    """A real HTTP server playing an importer's job API for dispatch tests."""
    importer = await FakeImporter().start()
    yield importer
    await importer.stop()
