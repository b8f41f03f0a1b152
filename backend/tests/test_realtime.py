"""The per-client ordering rules of the Socket.IO layer, driven directly (the end-to-end tests use real sockets)."""

from __future__ import annotations

import asyncio

from ferry_backend.realtime import ALL, Hub, LiveEvent, Subscriber


def ev(seq: int, job: str = "j1") -> LiveEvent:
    return LiveEvent(job, seq, "import.progress", {"job_id": job, "seq": seq})


async def make() -> tuple[Hub, Subscriber, list]:
    sent: list = []

    async def emit(name, data, meta):
        sent.append((data["job_id"], data["seq"], meta["replay"]))

    hub = Hub()
    sub = Subscriber("sid1", emit, lambda sid: None)
    hub.add(sub)
    return hub, sub, sent


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_live_event_during_subscribe_waits_behind_the_replay():
    hub, sub, sent = await make()
    sub.hold()
    sub.begin("j1")
    hub.deliver(ev(4))  # arrives while the log is being read
    hub.deliver(ev(3))  # committed before the read, so it is also in the replay
    sub.finish_job("j1", [ev(2), ev(3)])
    await settle()
    assert sent == []  # nothing leaves before the ack
    sub.release()
    await settle()
    assert sent == [("j1", 2, True), ("j1", 3, True), ("j1", 4, False)]
    hub.remove("sid1")


async def test_duplicates_and_older_events_are_not_sent_twice():
    hub, sub, sent = await make()
    sub.finish_job("j1", [])
    for seq in (1, 2, 2, 1, 3):
        hub.deliver(ev(seq))
    await settle()
    assert [s for _, s, _ in sent] == [1, 2, 3]
    hub.remove("sid1")


async def test_unwatched_jobs_are_not_sent():
    hub, sub, sent = await make()
    sub.finish_job("j1", [])
    hub.deliver(ev(1, "other"))
    sub.drop_job("j1")
    hub.deliver(ev(2))
    await settle()
    assert sent == []
    hub.remove("sid1")


async def test_all_feed_sends_only_what_is_newer_than_the_listed_snapshots():
    hub, sub, sent = await make()
    sub.begin(ALL)
    hub.deliver(ev(5, "a"))  # the listed snapshot of a is at seq 5 already
    hub.deliver(ev(1, "b"))  # b was created after the list was read
    sub.finish_all({"a": 5})
    hub.deliver(ev(6, "a"))
    await settle()
    assert sent == [("b", 1, False), ("a", 6, False)]
    hub.remove("sid1")


async def test_replay_then_resubscribe_with_last_seq_has_no_gap_and_no_duplicate():
    hub, sub, sent = await make()
    sub.finish_job("j1", [ev(1), ev(2)])
    hub.deliver(ev(3))
    await settle()
    hub.remove("sid1")
    hub2, sub2, sent2 = await make()
    last = sent[-1][1]
    sub2.begin("j1")
    hub2.deliver(ev(5))
    sub2.finish_job("j1", [ev(s) for s in range(last + 1, 5)])
    await settle()
    assert [s for _, s, _ in sent] + [s for _, s, _ in sent2] == [1, 2, 3, 4, 5]
    hub2.remove("sid1")


async def test_all_feed_narrowed_to_one_host():
    hub, sub, sent = await make()
    sub.begin(ALL)
    hub.deliver(LiveEvent("x", 1, "import.progress", {"job_id": "x", "seq": 1, "host": "lab2"}))
    sub.finish_all({}, host="lab1")
    hub.deliver(LiveEvent("y", 1, "import.progress", {"job_id": "y", "seq": 1, "host": "lab1"}))
    hub.deliver(LiveEvent("z", 1, "import.progress", {"job_id": "z", "seq": 1, "host": "lab2"}))
    await settle()
    assert sent == [("y", 1, False)]
    hub.remove("sid1")


async def test_a_client_too_far_behind_is_disconnected_once(monkeypatch):
    import ferry_backend.realtime as realtime

    monkeypatch.setattr(realtime, "MAX_OUTBOX", 3)
    dropped = []

    async def never_done(name, data, meta):
        await asyncio.Event().wait()  # a client that stopped reading

    sub = Subscriber("slow", never_done, dropped.append)
    sub.finish_job("j1", [])
    for seq in range(1, 10):
        sub.offer(ev(seq))
    await settle()
    assert dropped == ["slow"]
    sub.close()
