"""Slow senders before authentication: a body that stalls is answered 408 and closed, and only so many bodies may
be open at once (the hostile backend runs with FERRY_BODY_IDLE_S=1 and FERRY_MAX_OPEN_BODIES=100)."""

from __future__ import annotations

import asyncio

from tests.hostile.support import queued, unique

SLOW = 120


async def _stall(port: int, path: str) -> bytes:
    """Headers and 10 of the 100 promised body bytes, then nothing; returns what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f'Content-Length: 100\r\n\r\n{{"type": 1'.encode()
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)  # until the server closes the connection
    finally:
        writer.close()


async def test_stalled_bodies_are_answered_and_closed_and_bounded(hostile_backend):
    importer = await hostile_backend.add_host(unique("slowbody"))
    answers = await asyncio.gather(
        *(_stall(hostile_backend.port, f"/api/callbacks/{importer.name}") for _ in range(SLOW))
    )
    statuses = [answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else answer[:40] for answer in answers]
    assert set(statuses) <= {b"408", b"503"}, statuses
    assert statuses.count(b"503") >= SLOW - 100  # over the bound: refused at once
    assert statuses.count(b"408") >= 1
    assert all(b'"error"' in answer for answer in answers)
    assert (await queued(importer, unique("after"))).status_code == 200  # and everybody else is served


async def test_a_stalled_json_body_on_the_api_is_answered_408(hostile_backend):
    answer = await _stall(hostile_backend.port, "/api/imports")
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer


def test_a_stalled_body_on_the_importer_is_answered_408(tmp_path, docker_host):
    from importer.tests.service_process import ImporterProcess

    importer = ImporterProcess(tmp_path / "data", docker_host, body_idle_s=1).start()
    try:
        answer = asyncio.run(_stall(importer.port, "/v1/imports"))  # no token yet: the body comes first
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
        assert importer.client.get("/v1/imports").status_code == 200
    finally:
        importer.close()
