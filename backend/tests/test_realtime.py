"""The per-client ordering rules of the Socket.IO layer, driven directly (the end-to-end tests use real sockets)."""

from __future__ import annotations

import asyncio

from ferry_backend.hub import Hub
from ferry_backend.realtime import ALL, LiveEvent, Subscriber


def ev(seq: int, job: str = "j1", replay_id: str | None = None) -> LiveEvent:
    return LiveEvent(
        job, seq, "import.progress", {"job_id": job, "seq": seq}, f"2026-01-01T00:00:{seq:02d}Z", replay_id
    )


def kind(meta: dict) -> str:
    assert set(meta) >= {"replay", "catchup", "timestamp"}
    return "replay" if meta["replay"] else "catchup" if meta["catchup"] else "live"


async def make() -> tuple[Hub, Subscriber, list]:
    sent: list = []

    async def emit(name, data, meta):
        sent.append((data["job_id"], data["seq"], kind(meta)))

    hub = Hub()
    sub = hub.connect("sid1", emit, lambda sid: None)
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
    assert sent == [("j1", 2, "catchup"), ("j1", 3, "catchup"), ("j1", 4, "live")]
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
    assert sent == [("b", 1, "live"), ("a", 6, "live")]
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
    assert sent == [("y", 1, "live")]
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


async def test_meta_carries_the_backend_receipt_time_of_each_event():
    metas = []

    async def emit(name, data, meta):
        metas.append(meta)

    sub = Subscriber("m", emit, lambda sid: None)
    sub.finish_job("j1", [ev(1)])
    sub.offer(ev(2))
    sub.offer(ev(1, replay_id="r1"))
    await settle()
    assert metas == [
        {"replay": False, "catchup": True, "timestamp": "2026-01-01T00:00:01Z"},
        {"replay": False, "catchup": False, "timestamp": "2026-01-01T00:00:02Z"},
        {"replay": True, "catchup": False, "timestamp": "2026-01-01T00:00:01Z", "replay_id": "r1"},
    ]
    sub.close()


async def test_operator_replay_reaches_job_and_feed_watchers_without_counting_as_seen():
    hub, sub, sent = await make()
    feed = hub.connect("feed", sub._emit, lambda sid: None)
    feed.finish_all({}, host=None)
    sub.finish_job("j1", [ev(1), ev(2)])
    for seq in (1, 2):
        hub.deliver(ev(seq, replay_id="r1"))
    hub.deliver(ev(3))  # a live event after the replay is still new for both
    await settle()
    mine = [(j, s, k) for j, s, k in sent]
    assert mine.count(("j1", 1, "replay")) == 2 and mine.count(("j1", 2, "replay")) == 2
    assert mine.count(("j1", 3, "live")) == 2
    assert [s for _, s, k in mine if k != "replay"] == [1, 2, 3, 3]
    hub.remove("sid1")
    hub.remove("feed")


async def test_a_replay_skips_a_client_that_is_still_being_caught_up():
    hub, sub, sent = await make()
    sub.begin("j1")
    hub.deliver(ev(1, replay_id="r1"))
    sub.finish_job("j1", [ev(1)])
    await settle()
    assert sent == [("j1", 1, "catchup")]
    hub.remove("sid1")


async def test_deliveries_reach_only_the_watchers_of_that_job():
    hub = Hub()
    offered: dict[str, int] = {}

    def counting(sid):
        sub = hub.connect(sid, lambda n, d, m: asyncio.sleep(0), lambda s: None)
        original = sub.offer
        sub.offer = lambda event, direct=None: (
            offered.__setitem__(sid, offered.get(sid, 0) + 1),
            original(event, direct),
        )
        return sub

    subs = [counting(f"s{i}") for i in range(50)]
    subs[7].finish_job("j7", [])
    subs[8].begin("j7")
    hub.deliver(ev(1, "j7"))
    hub.deliver(ev(1, "nobody"))
    assert offered == {"s7": 1, "s8": 1}
    assert hub.watchers("j7") == 2
    subs[7].drop_job("j7")
    subs[8].abort("j7")
    assert hub.watchers("j7") == 0
    subs[9].finish_all({})
    hub.remove("s9")
    hub.deliver(ev(2, "j7"))
    assert offered == {"s7": 1, "s8": 1}
    for sub in subs:
        hub.remove(sub.sid)


async def test_nothing_at_or_below_the_clients_after_seq_is_sent_again():
    hub, sub, sent = await make()
    sub.begin("j1")
    hub.deliver(ev(3))  # a late copy of a seq the client already holds
    sub.finish_job("j1", [ev(6)], after_seq=5)
    hub.deliver(ev(4))
    hub.deliver(ev(7))
    await settle()
    assert sent == [("j1", 6, "catchup"), ("j1", 7, "live")]
    hub.remove("sid1")


async def test_live_emits_are_timed_from_the_callbacks_arrival():
    import time

    from ferry_backend.metrics import EMIT_LATENCY

    def count() -> float:
        return next(s.value for m in EMIT_LATENCY.collect() for s in m.samples if s.name.endswith("_count"))

    before = count()

    async def emit(name, data, meta):
        pass

    sub = Subscriber("t", emit, lambda sid: None)
    sub.finish_job("j1", [ev(1)])  # catch-up: not timed
    sub.offer(LiveEvent("j1", 2, "import.progress", {"job_id": "j1", "seq": 2}, "x", received_ts=time.time() - 0.05))
    sub.offer(ev(3, replay_id="r"))  # replay: not timed
    await settle()
    assert count() - before == 1
    sub.close()


async def test_idle_clients_share_one_emit_and_busy_ones_keep_their_order():
    log: list = []  # (via, sid, seq) in the order the transport got them

    async def emit_many(name, data, meta, sids):
        log.extend(("many", sid, data["seq"]) for sid in sids)

    def client(sid):
        async def emit(name, data, meta):
            log.append(("own", sid, data["seq"]))

        sub = hub.connect(sid, emit, lambda s: None)
        sub.finish_job("j1", [])
        return sub

    hub = Hub(emit_many)
    a, b, c = client("a"), client("b"), client("c")
    c.hold()  # c is answering a subscribe: its live events wait in its outbox behind the ack
    hub.deliver(ev(1))
    await settle()
    assert sorted(log) == [("many", "a", 1), ("many", "b", 1)]
    hub.deliver(ev(2))
    c.release()
    hub.deliver(ev(3))  # c still has 1 and 2 in its outbox: 3 must follow them there
    await settle()
    per_client = {sid: [seq for _, s, seq in log if s == sid] for sid in "abc"}
    assert per_client == {"a": [1, 2, 3], "b": [1, 2, 3], "c": [1, 2, 3]}
    assert all(via == "own" for via, sid, _ in log if sid == "c")
    hub.deliver(ev(4))  # c's outbox is empty again: it joins the shared emit
    await settle()
    assert [entry for entry in log if entry[2] == 4] and all(via == "many" for via, _, seq in log if seq == 4)
    for sub in (a, b, c):
        hub.remove(sub.sid)


async def test_a_client_removed_from_the_hub_no_longer_changes_who_watches_a_job():
    hub, sub, sent = await make()
    sub.finish_job("j1", [])
    assert hub.watchers("j1") == 1
    hub.remove("sid1")
    assert hub.watchers("j1") == 0
    sub.finish_job("j2", [])  # a subscribe that finishes after its client went away
    again = hub.connect("sid1", sub._emit, lambda sid: None)  # the same sid, a new client
    sub.drop_job("j2")
    again.finish_job("j2", [])
    sub.drop_job("j2")  # the old client's change does not unindex the new one
    assert hub.watchers("j1") == 0 and hub.watchers("j2") == 1
    hub.remove("sid1")
