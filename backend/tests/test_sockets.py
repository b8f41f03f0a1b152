"""Socket.IO end to end: real backend process, real python-socketio clients, callbacks signed as an importer signs them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from backend.tests.support import SocketWatcher, completed_data, event_data


def job_id() -> str:
    return "job_" + uuid.uuid4().hex[:12]


@pytest.fixture
async def importer(backend):
    return await backend.add_host("sock-" + uuid.uuid4().hex[:8])


@pytest.fixture
async def watchers(backend):
    made: list[SocketWatcher] = []

    async def make(token: str | None = None) -> SocketWatcher:
        watcher = await SocketWatcher(backend, token).connect()
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        await watcher.close()


async def test_subscriber_gets_snapshot_then_replay_then_live_in_seq_order(backend, importer, watchers):
    job = job_id()
    for seq in (1, 2, 3):
        await importer.send("import.progress", event_data(job, importer.name, seq))
    watcher = await watchers(backend.token("viewer"))
    ack = await watcher.subscribe(job, after_seq=1)
    assert ack["ok"] and ack["snapshot"]["id"] == job and ack["snapshot"]["seq"] == 3
    await watcher.wait_for(lambda: len(watcher.received) >= 2)
    for seq in range(4, 8):
        await importer.send("import.progress", event_data(job, importer.name, seq))
    await importer.send("import.completed", completed_data(job, importer.name, 8))
    await watcher.wait_for(lambda: watcher.seqs()[-1:] == [8])
    assert watcher.seqs() == [2, 3, 4, 5, 6, 7, 8]
    assert [m["catchup"] for _, _, m in watcher.received] == [True, True, False, False, False, False, False]
    assert not any(m["replay"] for _, _, m in watcher.received)  # catch-up is not an operator replay
    assert all(m["timestamp"].endswith("Z") for _, _, m in watcher.received)
    assert watcher.order[0] == "ack"  # the ack arrived before any event
    name, data, _ = watcher.received[-1]
    assert name == "import.completed" and data["state"] == "succeeded" and data["image"]["ref"] == "lab/test:1"


async def test_events_sent_while_subscribing_are_neither_lost_nor_duplicated(backend, importer, watchers):
    """Callbacks race the subscribe: whatever the interleaving, the client sees 1..N exactly once, in order."""
    for _ in range(2):
        job = job_id()
        watcher = await watchers()

        async def send_all(job: str):
            for seq in range(1, 21):
                await importer.send("import.progress", event_data(job, importer.name, seq))

        async def subscribe_midway(job: str, watcher):
            while True:  # subscribe as soon as the job exists, while callbacks keep arriving
                ack = await watcher.subscribe(job)
                if ack["ok"]:
                    return ack
                await asyncio.sleep(0.01)

        await asyncio.gather(send_all(job), subscribe_midway(job, watcher))
        await watcher.wait_for(lambda watcher=watcher, job=job: 20 in watcher.seqs(job))
        await asyncio.sleep(0.3)
        assert watcher.seqs(job) == list(range(1, 21))
        successful_ack = len(watcher.order) - 1 - watcher.order[::-1].index("ack")
        events_before_ack = [name for name in watcher.order[:successful_ack] if name != "ack"]
        assert events_before_ack == []  # no live event overtook the snapshot and the replay


async def test_client_that_disconnects_mid_stream_resubscribes_without_gaps_or_duplicates(backend, importer, watchers):
    job = job_id()
    await importer.send("import.queued", event_data(job, importer.name, 1, state="queued", phase="queued", percent=0.0))
    first = await watchers()
    await first.subscribe(job)
    for seq in range(2, 6):
        await importer.send("import.progress", event_data(job, importer.name, seq))
    await first.wait_for(lambda: first.seqs()[-1:] == [5])
    last_seq = first.seqs()[-1]
    await first.close()  # the browser tab loses its network
    for seq in range(6, 12):  # the import goes on while nobody watches
        await importer.send("import.progress", event_data(job, importer.name, seq))
    second = await watchers()
    ack = await second.subscribe(job, after_seq=last_seq)
    assert ack["snapshot"]["seq"] == 11
    await importer.send("import.completed", completed_data(job, importer.name, 12))
    await second.wait_for(lambda: second.seqs()[-1:] == [12])
    combined = first.seqs() + second.seqs()
    assert combined == list(range(1, 13))  # nothing missed, nothing twice
    assert second.received[-1][0] == "import.completed"


async def test_unsubscribe_stops_events_for_that_job(backend, importer, watchers):
    job = job_id()
    await importer.send("import.progress", event_data(job, importer.name, 1))
    watcher = await watchers()
    await watcher.subscribe(job)
    await watcher.wait_for(lambda: watcher.seqs() == [1])
    assert await watcher.sio.call("unsubscribe", {"job_id": job}, timeout=10) == {"ok": True}
    await importer.send("import.progress", event_data(job, importer.name, 2))
    await asyncio.sleep(0.5)
    assert watcher.seqs() == [1]


async def test_subscribe_all_streams_every_job_for_list_views(backend, importer, watchers):
    known = job_id()
    await importer.send("import.progress", event_data(known, importer.name, 1))
    watcher = await watchers(backend.token("viewer"))
    ack = await watcher.sio.call("subscribe_all", {}, timeout=10)
    assert ack["ok"] and known in [j["id"] for j in ack["jobs"]]
    fresh = job_id()
    await importer.send("import.progress", event_data(known, importer.name, 2))
    await importer.send(
        "import.queued", event_data(fresh, importer.name, 1, state="queued", phase="queued", percent=0.0)
    )
    await watcher.wait_for(lambda: fresh in {d["job_id"] for _, d, _ in watcher.received})
    await asyncio.sleep(0.2)
    assert [(d["job_id"], d["seq"]) for _, d, _ in watcher.received if d["job_id"] in (known, fresh)] == [
        (known, 2),
        (fresh, 1),
    ]
    assert await watcher.sio.call("unsubscribe_all", {}, timeout=10) == {"ok": True}
    await importer.send("import.progress", event_data(known, importer.name, 3))
    await asyncio.sleep(0.5)
    assert (known, 3) not in [(d["job_id"], d["seq"]) for _, d, _ in watcher.received]


async def test_subscribe_all_can_follow_one_host(backend, importer, watchers):
    other = await backend.add_host("sock-other-" + uuid.uuid4().hex[:6])
    mine, theirs = job_id(), job_id()
    await importer.send("import.progress", event_data(mine, importer.name, 1))
    await other.send("import.progress", event_data(theirs, other.name, 1))
    watcher = await watchers()
    ack = await watcher.sio.call("subscribe_all", {"host": importer.name}, timeout=10)
    assert [j["host"] for j in ack["jobs"]] == [importer.name]
    await other.send("import.progress", event_data(theirs, other.name, 2))
    await importer.send("import.progress", event_data(mine, importer.name, 2))
    await watcher.wait_for(lambda: watcher.seqs(mine) == [2])
    assert watcher.seqs(theirs) == []
    bad = await watcher.sio.call("subscribe_all", {"state": "exploded"}, timeout=10)
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_request"


async def test_bad_subscribe_payloads_get_error_acks(backend, watchers):
    watcher = await watchers()
    for payload in (None, {}, {"job_id": 5}, {"job_id": "x", "after_seq": -1}, {"job_id": "x", "after_seq": "3"}):
        ack = await watcher.sio.call("subscribe", payload, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_request", payload
