"""A backend killed with SIGKILL mid-import and started again: nothing committed is lost, redeliveries dedupe, watchers catch up."""

from __future__ import annotations

import signal
import uuid

from backend.tests.support import SocketWatcher, callback_body, completed_data, event_data


async def test_backend_killed_mid_import_recovers_from_its_log(make_backend):
    backend = make_backend("restart")
    importer = await backend.add_host("rs-" + uuid.uuid4().hex[:6])
    job = "job_" + uuid.uuid4().hex[:10]
    signed = []
    for seq in range(1, 9):
        data = event_data(job, importer.name, seq) if seq < 8 else completed_data(job, importer.name, seq)
        body = callback_body("import.progress" if seq < 8 else "import.completed", data)
        signed.append((seq, body, f"msg_{job}_{seq}"))
    watcher = await SocketWatcher(backend).connect()
    await watcher.subscribe(job)  # not found yet: the job appears with its first callback
    for seq, body, msg_id in signed[:4]:
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
    for seq, body, msg_id in signed[2:]:
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
        assert all(meta["replay"] for _, _, meta in again.received)
    finally:
        await again.close()
