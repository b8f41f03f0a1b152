"""Redis going away never costs a callback: it is stored and answered, and this replica's sockets still get it."""

from __future__ import annotations

import time

import pytest

from backend.tests.support import Backend, SocketWatcher, completed_data, event_data
from tests.scale.servers import RedisServer, Unavailable


@pytest.fixture
def redis_backend(tmp_path):
    try:
        redis = RedisServer(tmp_path / "redis").start()
    except Unavailable as exc:
        pytest.fail(str(exc))  # make test installs redis-server: its absence is a broken setup, not a skip
    backend = Backend(tmp_path / "backend", env_extra={"FERRY_REDIS_URL": redis.url})
    try:
        yield backend.start(), redis
    finally:
        backend.stop()
        redis.stop()


async def test_callbacks_are_answered_and_delivered_locally_while_redis_is_down(redis_backend):
    backend, redis = redis_backend
    importer = await backend.add_host("redis-outage")
    job = "job_redis_outage"
    watcher = await SocketWatcher(backend).connect()
    try:
        assert (await importer.send("import.progress", event_data(job, importer.name, 1))).status_code == 200
        await watcher.subscribe(job)
        await watcher.wait_for(lambda: watcher.seqs(job) == [1])
        redis.stop()
        for data, event_type in (
            (event_data(job, importer.name, 2), "import.progress"),
            (completed_data(job, importer.name, 3), "import.completed"),
        ):
            started = time.monotonic()
            response = await importer.send(event_type, data)
            assert response.status_code == 200 and response.json()["verdict"] == "applied", response.text
            assert time.monotonic() - started < 5  # bounded: publishing gives up, it does not hang the importer
        await watcher.wait_for(lambda: watcher.seqs(job) == [1, 2, 3])
    finally:
        await watcher.close()
    async with backend.client(backend.token("viewer")) as http:
        assert (await http.get(f"/api/imports/{job}")).json()["state"] == "succeeded"
        assert (await http.get("/healthz")).status_code == 200
    assert "delivered on this replica only" in backend.log()
