"""Whatever order and however often an importer's outbox delivers a job's callbacks, the backend ends in the
same state: a shuffled stream with every delivery sent three times gives the same snapshot, log and socket
catch-up as the ordered stream (property test against the real backend)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.tests.support import SocketWatcher, callback_body, completed_data, event_data
from tests.hostile.support import unique

SEQS = 8
VOLATILE = {"id", "created_at", "updated_at", "finished_at"}


def _deliveries(job_id: str, host: str) -> list[tuple[str, dict]]:
    """(type, data) of one job: queued, progress, completed, as the importer's outbox holds them."""
    events = [("import.queued", event_data(job_id, host, 1, state="queued", phase="queued", percent=0.0))]
    events += [("import.progress", event_data(job_id, host, seq)) for seq in range(2, SEQS)]
    return events + [("import.completed", completed_data(job_id, host, SEQS))]


async def _send_all(importer, job_id: str, order: list[int]) -> None:
    signed = []
    for index, (event_type, data) in enumerate(_deliveries(job_id, importer.name)):
        body = callback_body(event_type, data)
        signed.append((body, importer.sign(body, msg_id=f"msg_{job_id}_{index}")))  # a retry is the same message
    for index in order:
        response = await importer.post(*signed[index])
        assert response.status_code == 200, response.text


async def _outcome(backend, job_id: str) -> tuple:
    async with backend.client() as http:
        snapshot = (await http.get(f"/api/imports/{job_id}")).json()
        log = (await http.get(f"/api/imports/{job_id}/events")).json()
    watcher = await SocketWatcher(backend).connect()
    try:
        await watcher.subscribe(job_id)
        await watcher.wait_for(lambda: len(watcher.received) >= SEQS)
    finally:
        await watcher.close()
    strip = lambda data: {k: v for k, v in data.items() if k != "job_id"}  # noqa: E731
    return (
        {k: v for k, v in snapshot.items() if k not in VOLATILE},
        [(e["seq"], e["type"], strip(e["data"])) for e in log],
        [(name, strip(data)) for name, data, _ in watcher.received],
    )


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(SEQS)) * 3))
def test_a_shuffled_and_repeated_stream_ends_like_the_ordered_one(hostile_backend, order):
    async def run() -> None:
        importer = await hostile_backend.add_host(unique("order"))
        ordered, shuffled = unique("ordered"), unique("shuffled")
        await _send_all(importer, ordered, list(range(SEQS)))
        await _send_all(importer, shuffled, order)
        assert await _outcome(hostile_backend, shuffled) == await _outcome(hostile_backend, ordered)

    asyncio.run(run())
