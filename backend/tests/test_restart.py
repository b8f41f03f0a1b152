"""A backend killed with SIGKILL mid-import and started again: nothing committed is lost, redeliveries dedupe, watchers catch up."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC

import pytest

from backend.tests.support import (
    SocketWatcher,
    callback_body,
    completed_data,
    event_data,
    job_state,
    register,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def restartable(backend):
    """The shared backend: its state is durable, so other tests do not notice it was restarted."""
    yield backend
    if backend.proc is None:
        backend.start()


async def test_backend_killed_mid_import_recovers_from_its_log(restartable):
    backend = restartable
    importer = await backend.add_host("rs-" + uuid.uuid4().hex[:6])
    job = "job_" + uuid.uuid4().hex[:10]
    signed = []
    for seq in range(1, 9):
        data = event_data(job, importer.name, seq) if seq < 8 else completed_data(job, importer.name, seq)
        body = callback_body("import.progress" if seq < 8 else "import.completed", data)
        signed.append((seq, body, f"msg_{job}_{seq}"))
    watcher = await SocketWatcher(backend).connect()
    await watcher.subscribe(job)  # not found yet: the job appears with its first callback
    for _seq, body, msg_id in signed[:4]:
        assert (await importer.post(body, importer.sign(body, msg_id))).status_code == 200
    watcher2 = await SocketWatcher(backend).connect()
    ack = await watcher2.subscribe(job)
    await watcher2.wait_for(lambda: watcher2.seqs()[-1:] == [4])
    last_seen = watcher2.seqs()[-1]
    await watcher.close()

    backend.stop(signal.SIGKILL)  # no graceful shutdown
    backend.start()
    await watcher2.close()

    # An importer's outbox redelivers from where it was unsure (seq 3 and 4 again, same webhook ids), then goes on.
    verdicts = []
    for _seq, body, msg_id in signed[2:]:
        response = await importer.post(body, importer.sign(body, msg_id))
        assert response.status_code == 200
        verdicts.append(response.json()["verdict"])
    assert verdicts == ["duplicate", "duplicate", "applied", "applied", "applied", "applied"]

    again = await SocketWatcher(backend).connect()
    try:
        resumed = await again.subscribe(job, after_seq=last_seen)
        assert resumed["ok"] and resumed["snapshot"]["state"] == "succeeded" and ack["ok"]
        await again.wait_for(lambda: again.seqs()[-1:] == [8])
        assert watcher2.seqs() + again.seqs() == list(range(1, 9))
        assert all(meta["catchup"] and not meta["replay"] for _, _, meta in again.received)
    finally:
        await again.close()


async def test_jobs_never_confirmed_are_dispatched_again_after_a_restart(restartable, fake):
    backend = restartable
    host = await register(backend, fake)
    fake.submit_status = 503  # the importer is busy restarting: the first dispatch fails
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post("/api/imports", json={"source_url": "http://x/a.tar", "hosts": [host.name], "image": "a:1"})
        ).json()["jobs"][0]
    await wait_until(lambda: asyncio.sleep(0, len(fake.submitted) == 1))
    assert (await job_state(backend, job["id"]))["error"]["code"] == "dispatch_failed"
    # The state a backend killed between creating a job and POSTing it leaves behind: queued at seq 0.
    stuck = insert_undispatched_job(backend, host.name)
    fake.submit_status = 202
    backend.stop()
    backend.start()
    await wait_until(lambda: asyncio.sleep(0, any(s["job_id"] == stuck for s in fake.submitted)))
    assert [s["job_id"] for s in fake.submitted].count(job["id"]) == 1  # failed jobs are not sent again


def insert_undispatched_job(backend, host: str) -> str:
    import json
    import sqlite3
    from datetime import datetime

    job_id = "job_" + uuid.uuid4().hex[:10]
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(backend.data_dir / "ferry.db") as db:
        db.execute(
            "INSERT INTO jobs (id, host, image, source_url, format, changes, force, state, phase, seq, percent, bytes_done,"
            " created_at, updated_at, last_contact_at) VALUES (?, ?, 'a:1', 'http://x/a.tar', 'auto', ?, 0, 'queued', 'queued',"
            " 0, 0, 0, ?, ?, ?)",
            (job_id, host, json.dumps([]), now, now, now),
        )
    return job_id
