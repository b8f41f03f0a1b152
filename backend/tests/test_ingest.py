"""Group commit of callbacks on a real SQLite store: one batch decides exactly what one-at-a-time would."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as strat
from sqlalchemy import select, text

from backend.tests.support import completed_data, event_data
from ferry_backend import store as st
from ferry_backend.errors import StoreUnavailable
from ferry_backend.ingest import IngestWriter
from ferry_backend.ingest_batch import Arrival
from ferry_backend.models import Delivery, DeliveryRepeat, Event, Host, Job, utcnow


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A migrated database with two hosts, copied for each store (migrating costs more than the test)."""
    path = tmp_path_factory.mktemp("ingest") / "template.db"

    async def build() -> None:
        store = st.Store.from_url(f"sqlite+aiosqlite:///{path}")
        await store.migrate()
        async with store.write() as session:
            for host in ("lab1", "lab2"):
                session.add(
                    Host(
                        name=host, url="http://127.0.0.1:9", token="t", webhook_secret="whsec_x", running=[], queued=[]
                    )
                )
        await store.close()

    asyncio.run(build())
    return path


async def make_store(tmp_path, template: Path, name: str = "ingest.db") -> st.Store:
    shutil.copyfile(template, tmp_path / name)
    return st.Store.from_url(f"sqlite+aiosqlite:///{tmp_path / name}", "normal")  # no fsync wait: decisions are tested


def arrival(job: str, seq: int, msg: str | None = None, host: str = "lab1", kind: str = "import.progress") -> Arrival:
    data = completed_data(job, host, seq) if kind == "import.completed" else event_data(job, host, seq)
    body = json.dumps({"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data})
    return Arrival(
        host,
        msg or f"msg_{job}_{seq}",
        {"webhook-id": msg or f"msg_{job}_{seq}"},
        body,
        kind,
        datetime.now(UTC),
        data,
        utcnow(),
    )


async def state(store: st.Store) -> dict:
    async with store.read() as session:
        jobs = {j.id: (j.state, j.seq, j.percent) for j in await session.scalars(select(Job))}
        events = [(e.job_id, e.seq) for e in await session.scalars(select(Event).order_by(Event.job_id, Event.seq))]
        deliveries = sorted((d.webhook_id, d.verdict, d.duplicates) for d in await session.scalars(select(Delivery)))
        repeats = len(list(await session.scalars(select(DeliveryRepeat))))
    return {"jobs": jobs, "events": events, "deliveries": deliveries, "repeats": repeats}


async def run(store: st.Store, arrivals: list[Arrival], together: bool) -> list[str]:
    writer = IngestWriter(store)
    writer.start()
    try:
        if together:  # all queued before the writer runs: they share transactions
            outcomes = await asyncio.gather(*(writer.store_and_wait(a) for a in arrivals))
        else:
            outcomes = [await writer.store_and_wait(a) for a in arrivals]
    finally:
        await writer.stop()
    return [o.verdict for o in outcomes]


def story(rng: random.Random) -> list[Arrival]:
    """Two jobs, shuffled, with retries (same webhook-id), late events, a completion and events after it."""
    items = []
    for job in ("job_a", "job_b"):
        last = rng.randint(3, 8)
        items += [arrival(job, seq) for seq in range(1, last)] + [arrival(job, last, kind="import.completed")]
        items.append(arrival(job, last + 1, msg=f"after_{job}"))
    items += [arrival(a.data["job_id"], a.data["seq"], msg=a.webhook_id, kind=a.type) for a in rng.sample(items, 4)]
    rng.shuffle(items)
    return items


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=strat.integers(0, 10_000))
async def test_a_batch_ends_exactly_where_one_at_a_time_ends(tmp_path, template, seed):
    arrivals = story(random.Random(seed))
    run_id = uuid.uuid4().hex[:8]  # hypothesis may run one seed twice in the same tmp_path
    one = await make_store(tmp_path, template, f"one-{run_id}.db")
    batched = await make_store(tmp_path, template, f"batch-{run_id}.db")
    try:
        verdicts_one = await run(one, arrivals, together=False)
        verdicts_batched = await run(batched, arrivals, together=True)
        assert verdicts_batched == verdicts_one
        assert await state(batched) == await state(one)
        final = await state(batched)
        # Every seq up to the job's snapshot logged once; nothing after its end (that stays a delivery).
        last = {job: seq for job, (_, seq, _) in final["jobs"].items()}
        assert final["events"] == sorted(
            {(a.data["job_id"], a.data["seq"]) for a in arrivals if a.data["seq"] <= last[a.data["job_id"]]}
        )
        assert final["repeats"] == 4 and verdicts_batched.count("duplicate") == 4
    finally:
        await one.close()
        await batched.close()


async def test_repeats_inside_one_batch_are_counted_on_the_first_arrival(tmp_path, template):
    store = await make_store(tmp_path, template)
    try:
        verdicts = await run(store, [arrival("j", 1), arrival("j", 1), arrival("j", 2), arrival("j", 1)], together=True)
        assert verdicts == ["applied", "duplicate", "applied", "duplicate"]
        assert (await state(store))["deliveries"] == [("msg_j_1", "applied", 2), ("msg_j_2", "applied", 0)]
        assert await run(store, [arrival("j", 1)], together=True) == ["duplicate"]  # and later ones too
        assert (await state(store))["deliveries"][0] == ("msg_j_1", "applied", 3)
    finally:
        await store.close()


async def test_another_hosts_job_is_refused_inside_a_batch(tmp_path, template):
    store = await make_store(tmp_path, template)
    try:
        verdicts = await run(store, [arrival("j", 1), arrival("j", 2, host="lab2"), arrival("j", 3)], together=True)
        assert verdicts == ["applied", "wrong_host", "applied"]
        assert (await state(store))["jobs"]["j"][1] == 3
    finally:
        await store.close()


async def test_a_failed_transaction_answers_every_waiting_request_and_stores_nothing(tmp_path, template):
    store = await make_store(tmp_path, template)
    try:
        async with store.write() as session:
            await session.execute(text("DROP TABLE events"))  # the next batch cannot log its events
        writer = IngestWriter(store)
        writer.start()
        results = await asyncio.gather(
            *(writer.store_and_wait(arrival("j", seq)) for seq in (1, 2, 3)), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) and r.code == "store_unavailable" for r in results)
        async with store.read() as session:
            assert list(await session.scalars(select(Delivery))) == []  # rolled back as a whole
            assert list(await session.scalars(select(Job))) == []
        await writer.stop()
    finally:
        await store.close()


@pytest.mark.parametrize("size", [1, 300])
async def test_the_writer_keeps_serving_after_any_batch_size(tmp_path, template, size):
    store = await make_store(tmp_path, template)
    try:
        verdicts = await run(store, [arrival(f"job_{i % 7}", i // 7 + 1) for i in range(size)], together=True)
        assert verdicts == ["applied"] * size
        assert len((await state(store))["events"]) == size
    finally:
        await store.close()


async def test_host_secrets_are_read_once_for_many_concurrent_callbacks(tmp_path, template):
    from ferry_backend.receiver import HostSecrets

    store = await make_store(tmp_path, template)
    reads = 0
    original = store.read

    def counting_read():
        nonlocal reads
        reads += 1
        return original()

    store.read = counting_read
    try:
        secrets = HostSecrets(store)
        assert await asyncio.gather(*(secrets.get("lab1") for _ in range(50))) == ["whsec_x"] * 50
        assert reads == 1
        secrets.MAX_ENTRIES = 10
        for index in range(30):  # names nobody registered are remembered, but only so many
            assert await secrets.get(f"nobody-{index}") is None
        assert len(secrets._cache) <= 10
    finally:
        await store.close()


async def test_a_retry_of_a_logged_event_is_announced_again_but_not_one_never_logged(tmp_path, template):
    """The first announcement can die with a replica after the commit; the importer's retry brings it back."""
    store = await make_store(tmp_path, template)
    writer = IngestWriter(store)
    writer.start()
    try:
        first = await writer.store_and_wait(arrival("job_r", 2))
        late = await writer.store_and_wait(arrival("job_r", 1))  # stale for the snapshot, but new to the log
        again = await writer.store_and_wait(arrival("job_r", 2))
        late_again = await writer.store_and_wait(arrival("job_r", 1))
        foreign = await writer.store_and_wait(arrival("job_r", 3, msg="msg_foreign", host="lab2"))
        foreign_again = await writer.store_and_wait(arrival("job_r", 3, msg="msg_foreign", host="lab2"))
    finally:
        await writer.stop()
        await store.close()
    assert (first.verdict, first.event.seq) == ("applied", 2)
    assert late.verdict == "stale" and late.event.seq == 1
    assert again.verdict == "duplicate" and (again.event.job_id, again.event.seq) == ("job_r", 2)
    assert again.event.data == first.event.data and again.event.received_at == first.event.received_at
    assert late_again.verdict == "duplicate" and late_again.event.received_at == late.event.received_at
    assert foreign.verdict == "wrong_host" and foreign.event is None
    assert foreign_again.verdict == "duplicate" and foreign_again.event is None
