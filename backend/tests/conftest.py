"""Backend test fixtures: real `ferry-backend serve` processes on free ports, each with its own DATA_DIR.

Starting one costs seconds on a busy 2-core machine, so most tests share one backend per session and
keep apart by unique host names and job ids; tests that restart or reconfigure a backend get their own.
"""

from __future__ import annotations

import pytest

from backend.tests.support import Backend, FakeImporter


@pytest.fixture
def make_backend(tmp_path):
    started: list[Backend] = []

    def make(name: str = "backend", **env) -> Backend:
        backend = Backend(tmp_path / name, env_extra={k: str(v) for k, v in env.items()})
        started.append(backend)
        return backend.start()

    yield make
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def backend(tmp_path_factory) -> Backend:
    backend = Backend(tmp_path_factory.mktemp("backend"), env_extra={"FERRY_HOST_STALE_S": "3600"})
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def quick_backend(tmp_path_factory) -> Backend:
    """Short timers and limits: 1000-byte uploads expiring after 1 s idle, PATCH idle 1 s, hosts stale after 2 s; a web page."""
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>ferry</title><p>ferry operator page</p>")
    (web / "app.js").write_text("console.log('ferry');")
    backend = Backend(tmp_path_factory.mktemp("quick"), env_extra={
        "FERRY_WEB_DIR": str(web),
        "FERRY_MAX_UPLOAD_BYTES": "1000", "FERRY_UPLOAD_EXPIRY_S": "1", "FERRY_HOST_STALE_S": "2",
        "FERRY_LIVENESS_INTERVAL_S": "0.5", "FERRY_UPLOAD_IDLE_S": "1",
    })
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
async def fake():
    """A real HTTP server playing an importer's job API for dispatch tests."""
    importer = await FakeImporter().start()
    yield importer
    await importer.stop()
