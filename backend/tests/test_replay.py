"""Operator replays on a real backend: subscribed sockets get the stored events again, marked replay; nothing changes."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.tests.support import SocketWatcher, event_data
from ferry_backend.replays import MAX_GAP_S, replay_offsets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_replay_keeps_the_original_gaps_scaled_by_speed():
    assert replay_offsets(at(0, 1, 3), speed=1) == [0, 1, 3]
    assert replay_offsets(at(0, 1, 3), speed=10) == pytest.approx([0, 0.1, 0.3])
    assert replay_offsets(at(0, 1, 3), speed=None) == [0, 0, 0]
    assert replay_offsets([], speed=1) == []


def test_replay_never_waits_backwards_nor_for_hours():
    assert replay_offsets(at(5, 2, 3), speed=1) == [0, 0, 1]  # a late stale event: no negative wait
    assert replay_offsets(at(0, 7200), speed=2) == [0, MAX_GAP_S / 2]


@pytest.fixture
async def story(backend):
    """A running job with three stored events received 0.4 s and 0.8 s apart, and its state before any replay."""
    importer = await backend.add_host("rp-" + uuid.uuid4().hex[:8])
    job = "job_" + uuid.uuid4().hex[:12]
    for seq, pause in ((1, 0.4), (2, 0.8), (3, 0)):
        assert (await importer.send("import.progress", event_data(job, importer.name, seq))).status_code == 200
        await asyncio.sleep(pause)
    async with backend.client() as http:
        before = {
            "job": (await http.get(f"/api/imports/{job}")).json(),
            "events": (await http.get(f"/api/imports/{job}/events")).json(),
            "deliveries": (await http.get(f"/api/imports/{job}/deliveries")).json(),
        }
    return importer, job, before


async def test_replay_reaches_subscribed_sockets_marked_replay_and_changes_nothing(backend, story):
    importer, job, before = story
    watcher = await SocketWatcher(backend, backend.token("viewer")).connect()
    feed = await SocketWatcher(backend, backend.token("viewer")).connect()
    try:
        await watcher.subscribe(job)
        assert (await feed.sio.call("subscribe_all", {"host": importer.name}, timeout=10))["ok"]
        await watcher.wait_for(lambda: len(watcher.received) == 3)  # the catch-up
        async with backend.client(backend.token("operator")) as http:
            started = time.monotonic()
            response = await http.post(f"/api/imports/{job}/replay", json={"speed": 1})
            answered = time.monotonic() - started
        assert response.status_code == 202
        body = response.json()
        assert body["job_id"] == job and body["events"] == 3 and body["speed"] == 1
        assert body["duration_s"] >= 1.1 and answered < body["duration_s"]  # 202 at once, replay in the background
        arrived: dict[int, float] = {}

        def replayed(w):
            for _, data, meta in w.received:
                if meta["replay"]:
                    arrived.setdefault(data["seq"], time.monotonic())
            return [d["seq"] for _, d, m in w.received if m["replay"]]

        await watcher.wait_for(lambda: replayed(watcher) == [1, 2, 3])
        await feed.wait_for(lambda: replayed(feed) == [1, 2, 3])
        assert arrived[3] - arrived[1] >= 1.1  # the original 1.2 s, not squeezed together
        stored = {e["seq"]: e for e in before["events"]}
        for w in (watcher, feed):
            for _, data, meta in (e for e in w.received if e[2]["replay"]):
                assert meta == {
                    "replay": True,
                    "catchup": False,
                    "timestamp": stored[data["seq"]]["received_at"],
                    "replay_id": body["replay_id"],
                }
                assert data == stored[data["seq"]]["data"]
        async with backend.client() as http:
            assert (await http.get(f"/api/imports/{job}")).json() == before["job"]
            assert (await http.get(f"/api/imports/{job}/events")).json() == before["events"]
            assert (await http.get(f"/api/imports/{job}/deliveries")).json() == before["deliveries"]
        # The replay did not count as seen: the next live event still reaches both, once.
        await importer.send("import.progress", event_data(job, importer.name, 4))
        await watcher.wait_for(lambda: [d["seq"] for _, d, m in watcher.received if not m["replay"]][-1:] == [4])
        await feed.wait_for(lambda: [d["seq"] for _, d, m in feed.received if not m["replay"]] == [4])
        assert [d["seq"] for _, d, m in watcher.received if not m["replay"]] == [1, 2, 3, 4]
    finally:
        await watcher.close()
        await feed.close()


async def test_replay_at_max_speed_sends_everything_at_once(backend, story):
    _, job, before = story
    watcher = await SocketWatcher(backend).connect()
    try:
        await watcher.subscribe(job, after_seq=3)  # caught up already: only the replay comes
        async with backend.client(backend.token("operator")) as http:
            response = await http.post(f"/api/imports/{job}/replay", json={"speed": "max"})
        assert response.status_code == 202 and response.json()["duration_s"] == 0
        await watcher.wait_for(lambda: watcher.seqs() == [1, 2, 3], timeout=5)
        assert all(meta["replay"] for _, _, meta in watcher.received)
    finally:
        await watcher.close()


async def test_replay_needs_an_operator_a_known_job_and_a_valid_speed(backend, story):
    _, job, _ = story
    async with backend.client(backend.token("viewer")) as http:
        assert (await http.post(f"/api/imports/{job}/replay", json={})).status_code == 403
    async with backend.client(backend.token("operator")) as http:
        missing = await http.post("/api/imports/job_nope/replay", json={"speed": 1})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
        for speed in (0, -1, "fast", True):
            bad = await http.post(f"/api/imports/{job}/replay", json={"speed": speed})
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request", speed
            assert bad.json()["error"]["message"].startswith("speed:")
        first = await http.post(f"/api/imports/{job}/replay")  # no body: speed 1
        assert first.status_code == 202 and first.json()["speed"] == 1
        second = await http.post(f"/api/imports/{job}/replay", json={"speed": 10})
        assert second.status_code == 409 and second.json()["error"]["code"] == "replay_running"
