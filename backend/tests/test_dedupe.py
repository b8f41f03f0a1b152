"""webhook-id dedupes, one rule for the refusal path and the callback writer, on a real SQLite store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.tests.support import event_data
from ferry_backend import store as st
from ferry_backend.dedupe import DeliveryRow, keep_refused
from ferry_backend.ingest import IngestWriter
from ferry_backend.ingest_batch import Arrival
from ferry_backend.models import Delivery, DeliveryRepeat, Host, utcnow


@pytest.fixture
async def store(tmp_path):
    store = st.Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'dedupe.db'}", "normal")
    await store.migrate()
    async with store.write() as session:
        session.add(
            Host(name="lab1", url="http://127.0.0.1:9", token="t", webhook_secret="whsec_x", running=[], queued=[])
        )
    yield store
    await store.close()


def refused(msg: str, body: str = "not json") -> DeliveryRow:
    return DeliveryRow("lab1", msg, None, None, None, {"webhook-id": msg}, body, "invalid", utcnow())


async def stored(store, msg: str) -> tuple[list[tuple], list[str]]:
    async with store.read() as session:
        firsts = [
            (d.verdict, d.duplicates, d.last_received_at)
            for d in await session.scalars(select(Delivery).where(Delivery.webhook_id == msg))
        ]
        repeats = [
            r.body for r in await session.scalars(select(DeliveryRepeat).where(DeliveryRepeat.webhook_id == msg))
        ]
    return firsts, repeats


async def test_a_refused_delivery_is_kept_once_and_its_retries_are_counted_on_it(store):
    row = refused("msg_refused")
    assert await store.write_sync(keep_refused, row) is None  # kept now: the caller refuses it
    later = row.received_at + timedelta(seconds=5)
    first = await store.write_sync(keep_refused, replace(row, body="again", received_at=later))
    assert first is not None and (first.job_id, first.seq) == (None, None)
    assert await stored(store, "msg_refused") == ([("invalid", 1, later)], ["again"])


async def test_the_writer_answers_a_refused_webhook_id_as_a_duplicate_and_counts_it_on_the_same_row(store):
    writer = IngestWriter(store)
    writer.start()
    try:
        await store.write_sync(keep_refused, refused("msg_twice"))
        data = event_data("job_dedupe", "lab1", 1)  # the same webhook-id, now with a valid body
        body = json.dumps({"type": "import.progress", "timestamp": utcnow().isoformat(), "data": data})
        valid = Arrival("lab1", "msg_twice", {}, body, "import.progress", utcnow(), data, utcnow())
        outcome = await writer.store_and_wait(valid)
        assert (outcome.verdict, outcome.job_id, outcome.seq, outcome.event) == ("duplicate", None, None, None)
        firsts, repeats = await stored(store, "msg_twice")
        assert [(verdict, duplicates) for verdict, duplicates, _ in firsts] == [("invalid", 1)]
        assert repeats == [valid.body]
    finally:
        await writer.stop()
