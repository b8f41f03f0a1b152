"""The webhook receiver of a real backend, fed by the test acting as a signed importer."""

from __future__ import annotations

import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.tests.support import callback_body, completed_data, event_data, new_secret


def job_id() -> str:
    return "job_" + uuid.uuid4().hex[:12]


def deliveries(backend, job: str) -> list[tuple]:
    with sqlite3.connect(backend.data_dir / "ferry.db") as db:
        return db.execute(
            "SELECT webhook_id, seq, verdict, duplicates FROM deliveries WHERE job_id = ? ORDER BY id", (job,)
        ).fetchall()


async def events(backend, job: str) -> list[dict]:
    async with backend.client(backend.token("viewer")) as http:
        response = await http.get(f"/api/imports/{job}/events")
    return response.json() if response.status_code == 200 else []


@pytest.fixture
async def importer(backend):
    return await backend.add_host("cb-" + uuid.uuid4().hex[:8])


async def test_unknown_job_is_recorded_from_a_signed_callback(backend, importer):
    job = job_id()
    await importer.progress_run(job, 5)
    async with backend.client(backend.token("viewer")) as http:
        snapshot = (await http.get(f"/api/imports/{job}")).json()
    assert snapshot["state"] == "succeeded" and snapshot["seq"] == 5 and snapshot["host"] == importer.name
    assert snapshot["image"] == "lab/test:1" and snapshot["result"]["id"].startswith("sha256:")
    assert [e["seq"] for e in await events(backend, job)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "attack", ["unsigned", "forged", "other_secret", "stale", "future", "unknown_host", "tampered"]
)
async def test_bad_callbacks_are_refused_and_not_stored(backend, importer, attack):
    job = job_id()
    body = callback_body("import.progress", event_data(job, importer.name, 1))
    headers = importer.sign(body)
    host = None
    if attack == "unsigned":
        headers = {"content-type": "application/json"}
    elif attack == "forged":
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
    elif attack == "other_secret":
        headers = importer.sign(body, secret=new_secret())
    elif attack == "stale":
        headers = importer.sign(body, when=datetime.now(UTC) - timedelta(minutes=6))
    elif attack == "future":
        headers = importer.sign(body, when=datetime.now(UTC) + timedelta(minutes=6))
    elif attack == "unknown_host":
        host = "no-such-host"
    elif attack == "tampered":
        body = body.replace(b'"seq": 1', b'"seq": 2')
    response = await importer.post(body, headers, host=host)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"missing_signature", "bad_signature", "stale_timestamp", "unknown_host"}
    assert deliveries(backend, job) == []
    async with backend.client() as http:
        assert (await http.get(f"/api/imports/{job}")).status_code == 404


async def test_replayed_delivery_has_no_effect(backend, importer):
    job = job_id()
    first = callback_body("import.progress", event_data(job, importer.name, 2, percent=20.0))
    captured = importer.sign(first)
    assert (await importer.post(first, captured)).json()["verdict"] == "applied"
    later = callback_body("import.progress", event_data(job, importer.name, 3, percent=30.0))
    assert (await importer.post(later, importer.sign(later))).status_code == 200
    # The same bytes and headers again (an attacker or a retry): 2xx, nothing changes.
    again = await importer.post(first, captured)
    assert again.status_code == 200 and again.json()["verdict"] == "duplicate"
    async with backend.client() as http:
        assert (await http.get(f"/api/imports/{job}")).json()["percent"] == 30.0
    rows = deliveries(backend, job)
    assert [(r[1], r[2], r[3]) for r in rows] == [(2, "applied", 1), (3, "applied", 0)]
    assert [e["seq"] for e in await events(backend, job)] == [2, 3]


async def test_stale_progress_is_logged_but_never_moves_the_snapshot_back(backend, importer):
    job = job_id()
    await importer.send("import.progress", event_data(job, importer.name, 5, percent=50.0))
    late = await importer.send("import.progress", event_data(job, importer.name, 4, percent=40.0))
    assert late.json()["verdict"] == "stale"
    await importer.send("import.completed", completed_data(job, importer.name, 6))
    after = await importer.send(
        "import.failed", event_data(job, importer.name, 7, state="failed", error={"code": "x", "message": "y"})
    )
    assert after.json()["verdict"] == "after_terminal"
    async with backend.client() as http:
        snapshot = (await http.get(f"/api/imports/{job}")).json()
    assert snapshot["state"] == "succeeded" and snapshot["seq"] == 6 and snapshot["finished_at"]
    assert [(r[1], r[2]) for r in deliveries(backend, job)] == [
        (5, "applied"),
        (4, "stale"),
        (6, "applied"),
        (7, "after_terminal"),
    ]


async def test_shuffled_and_duplicated_deliveries_end_in_the_in_order_snapshot(backend, importer):
    """The property test of test_jobs, once through the real receiver (real signatures, real retries)."""
    job = job_id()
    story = [("import.queued", event_data(job, importer.name, 1, state="queued", phase="queued", percent=0.0))]
    story += [("import.progress", event_data(job, importer.name, seq)) for seq in range(2, 12)]
    story.append(("import.completed", completed_data(job, importer.name, 12)))
    signed = []
    for event_type, data in story:
        body = callback_body(event_type, data)
        signed.append((body, importer.sign(body)))
    rng = random.Random(7)
    deliveries_sent = signed + rng.sample(signed, 6)
    rng.shuffle(deliveries_sent)
    for body, headers in deliveries_sent:
        assert (await importer.post(body, headers)).status_code == 200
    async with backend.client() as http:
        snapshot = (await http.get(f"/api/imports/{job}")).json()
    assert snapshot["seq"] == 12 and snapshot["state"] == "succeeded" and snapshot["percent"] == 100.0
    assert [e["seq"] for e in await events(backend, job)] == list(range(1, 13))
    assert len(deliveries(backend, job)) == 12


async def test_callback_that_breaks_the_contract_is_refused_with_a_reason(backend, importer):
    job = job_id()
    bad = event_data(job, importer.name, 1)
    bad["percent"] = 140
    response = await importer.send("import.progress", bad, msg_id="msg_bad_" + job)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_callback"
    assert "percent" in response.json()["error"]["message"]
    with sqlite3.connect(backend.data_dir / "ferry.db") as db:
        kept = db.execute("SELECT verdict, body FROM deliveries WHERE webhook_id = ?", ("msg_bad_" + job,)).fetchall()
    assert len(kept) == 1 and kept[0][0] == "invalid" and '"percent": 140' in kept[0][1]
    # The importer's retry of the same delivery is a duplicate: it stops retrying, nothing is applied.
    retry = await importer.send("import.progress", bad, msg_id="msg_bad_" + job)
    assert retry.status_code == 200 and retry.json()["verdict"] == "duplicate"
    async with backend.client() as http:
        assert (await http.get(f"/api/imports/{job}")).status_code == 404


async def test_a_host_cannot_post_for_another_hosts_job(backend, importer):
    other = await backend.add_host("cb-other-" + uuid.uuid4().hex[:6])
    job = job_id()
    await importer.send("import.progress", event_data(job, importer.name, 1))
    response = await other.send("import.progress", event_data(job, other.name, 2, percent=99.0))
    assert response.status_code == 409 and response.json()["error"]["code"] == "wrong_host"
    async with backend.client() as http:
        assert (await http.get(f"/api/imports/{job}")).json()["seq"] == 1


async def test_heartbeats_make_a_host_alive_with_its_capacity(backend, importer):
    body = callback_body(
        "importer.heartbeat",
        {
            "host": importer.name,
            "seq": 1,
            "running": ["j1"],
            "queued": ["j2", "j3"],
            "disk_free_bytes": 123456789,
            "engine_version": "20.10.24",
        },
    )
    assert (await importer.post(body, importer.sign(body))).json()["verdict"] == "heartbeat"
    async with backend.client(backend.token("viewer")) as http:
        hosts = {h["name"]: h for h in (await http.get("/api/hosts")).json()}
    mine = hosts[importer.name]
    assert mine["alive"] and mine["last_seen"] and mine["disk_free_bytes"] == 123456789
    assert mine["running"] == ["j1"] and mine["queued"] == ["j2", "j3"] and mine["engine_version"] == "20.10.24"


async def test_concurrent_callbacks_share_transactions_and_each_gets_its_own_verdict(backend):
    """Group commit through the real receiver: many at once, each answered after its batch committed."""
    import asyncio
    import re

    import httpx

    async def batches() -> tuple[float, float]:
        async with backend.client(backend.token("viewer")) as http:
            text = (await http.get("/metrics")).text
        count = float(re.search(r"^ferry_callback_batch_size_count (\S+)$", text, re.M).group(1))
        total = float(re.search(r"^ferry_callback_batch_size_sum (\S+)$", text, re.M).group(1))
        return count, total

    importer = await backend.add_host("cb-many-" + uuid.uuid4().hex[:6])
    jobs = [job_id() for _ in range(10)]
    before = await batches()
    signed = []
    for seq in range(1, 9):
        for job in jobs:
            body = callback_body("import.progress", event_data(job, importer.name, seq))
            signed.append((body, importer.sign(body)))
    duplicate = signed[5]
    async with httpx.AsyncClient(base_url=backend.url, timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        answers = await asyncio.gather(
            *(
                http.post(f"/api/callbacks/{importer.name}", content=body, headers=headers)
                for body, headers in signed + [duplicate]
            )
        )
    assert all(a.status_code == 200 for a in answers)
    verdicts = [a.json()["verdict"] for a in answers]
    assert verdicts.count("duplicate") == 1 and set(verdicts) <= {"applied", "stale", "duplicate"}
    after = await batches()
    assert after[1] - before[1] == len(signed) + 1  # every callback went through the writer once
    assert after[0] - before[0] < len(signed)  # and they shared transactions
    for job in jobs:
        assert sorted(e["seq"] for e in await events(backend, job)) == list(range(1, 9))
        assert len(deliveries(backend, job)) == 8


async def test_the_receiver_answers_misuse_with_the_apis_error_shape(backend, importer):
    import httpx

    async with httpx.AsyncClient(base_url=backend.url, timeout=30) as http:
        wrong_method = await http.get(f"/api/callbacks/{importer.name}")
        assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
        huge = b'{"type": "import.progress", "pad": "' + b"x" * (300 * 1024) + b'"}'
        too_large = await http.post(f"/api/callbacks/{importer.name}", content=huge, headers=importer.sign(huge))
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "callback_too_large"
        nested = await http.post(f"/api/callbacks/{importer.name}/extra", content=b"{}")
        assert nested.status_code in (404, 405) and "error" in nested.json()  # not a callback URL: FastAPI's answer
    still = await importer.send("import.progress", event_data(job_id(), importer.name, 1))
    assert still.status_code == 200  # the service keeps serving
