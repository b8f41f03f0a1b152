"""Operator replays cannot be made to hold a job for good: the speed is bounded and a running replay is canceled."""

from __future__ import annotations

from backend.tests.support import SocketWatcher, event_data
from tests.hostile.support import database, queued, unique


async def test_a_replay_too_slow_to_end_is_refused(hostile_backend):
    importer = await hostile_backend.add_host(unique("slow"))
    job_id = unique("job")
    assert (await queued(importer, job_id)).status_code == 200
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        for speed in ("1e-300", "0.01", "0", "-1", "1e999", '"fast"', "true"):
            response = await http.post(
                f"/api/imports/{job_id}/replay",
                content=f'{{"speed": {speed}}}',
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 422, (speed, response.text)
            assert response.json()["error"]["code"] == "invalid_request"
        assert (await http.post(f"/api/imports/{job_id}/replay", json={"speed": 0.1})).status_code == 202


async def test_a_running_replay_can_be_canceled_and_another_started(hostile_backend):
    importer = await hostile_backend.add_host(unique("cancel"))
    job_id = unique("job")
    assert (await queued(importer, job_id)).status_code == 200
    for seq in (2, 3):
        assert (await importer.send("import.progress", event_data(job_id, importer.name, seq))).status_code == 200
    with database(hostile_backend) as db:  # 30 s between the events: a replay at 1× runs for a minute
        db.execute(
            "UPDATE events SET received_at = datetime(received_at, printf('+%d seconds', (seq - 1) * 30)) "
            "WHERE job_id = ?",
            (job_id,),
        )
    watcher = await SocketWatcher(hostile_backend).connect()
    try:
        await watcher.subscribe(job_id)
        await watcher.wait_for(lambda: len(watcher.received) == 3)
        async with hostile_backend.client(hostile_backend.token("operator")) as http:
            started = await http.post(f"/api/imports/{job_id}/replay", json={"speed": 1})
            assert started.status_code == 202 and started.json()["duration_s"] >= 59
            await watcher.wait_for(lambda: any(meta.get("replay") for _, _, meta in watcher.received))
            busy = await http.post(f"/api/imports/{job_id}/replay", json={"speed": 1})
            assert busy.status_code == 409 and busy.json()["error"]["code"] == "replay_running"
            canceled = await http.delete(f"/api/imports/{job_id}/replay")
            assert canceled.status_code == 200, canceled.text
            assert canceled.json()["replay_id"] == started.json()["replay_id"]
            again = await http.delete(f"/api/imports/{job_id}/replay")
            assert again.status_code == 404 and again.json()["error"]["code"] == "replay_not_running"
            at_once = await http.post(f"/api/imports/{job_id}/replay", json={"speed": "max"})
            assert at_once.status_code == 202
            await watcher.wait_for(
                lambda: sum(1 for _, _, m in watcher.received if m.get("replay_id") == at_once.json()["replay_id"]) == 3
            )
        first_replay = [d["seq"] for _, d, m in watcher.received if m.get("replay_id") == started.json()["replay_id"]]
        assert first_replay == [1]  # the canceled replay sent nothing after its cancel
    finally:
        await watcher.close()
