"""Signed callbacks that a broken or hostile importer could send: refused alone, never harming other senders."""

from __future__ import annotations

import asyncio
import json
import math

import httpx

from backend.tests.support import SocketWatcher, completed_data, event_data
from tests.hostile.support import (
    body_text,
    database,
    post_signed,
    queued,
    strict_socket_json,
    subscribe_all_reply,
    unique,
)


async def test_non_finite_numbers_are_refused_and_every_socket_keeps_working(hostile_backend):
    importer = await hostile_backend.add_host(unique("inf"))
    job_id = unique("job")
    assert (await queued(importer, job_id)).status_code == 200
    for field in ("rate_bps", "eta_s", "phase_elapsed_s", "percent"):
        for raw in ("1e999", "-1e999", "NaN", "Infinity"):
            text = body_text("import.progress", event_data(job_id, importer.name, 2), **{field: raw})
            response = await post_signed(importer, text)
            assert response.status_code == 422, (field, raw, response.text)
            assert response.json()["error"]["code"] == "invalid_callback"
    good = await importer.send("import.progress", event_data(job_id, importer.name, 2))
    assert good.json()["verdict"] == "applied"
    with strict_socket_json():
        reply = await subscribe_all_reply(hostile_backend)
    assert reply["ok"] is True
    assert any(job["id"] == job_id and job["seq"] == 2 for job in reply["jobs"])


async def test_a_stored_infinity_from_an_older_version_never_reaches_a_client(hostile_backend):
    """A log written before the contract refused Infinity: sockets and REST carry null instead."""
    importer = await hostile_backend.add_host(unique("legacy"))
    job_id = unique("job")
    assert (await queued(importer, job_id)).status_code == 200
    assert (await importer.send("import.progress", event_data(job_id, importer.name, 2))).status_code == 200
    with database(hostile_backend) as db:
        db.execute("UPDATE jobs SET rate_bps = 9e999, eta_s = 9e999 WHERE id = ?", (job_id,))
        (stored,) = db.execute("SELECT data FROM events WHERE job_id = ? AND seq = 2", (job_id,)).fetchone()
        legacy = json.dumps(dict(json.loads(stored), rate_bps=math.inf))  # as the backend's json.dumps wrote it
        assert "Infinity" in legacy
        db.execute("UPDATE events SET data = ? WHERE job_id = ? AND seq = 2", (legacy, job_id))
    with strict_socket_json():
        reply = await subscribe_all_reply(hostile_backend)
        watcher = await SocketWatcher(hostile_backend).connect()
        try:
            ack = await watcher.subscribe(job_id)
            await watcher.wait_for(lambda: watcher.seqs(job_id) == [1, 2])
        finally:
            await watcher.close()
    snapshot = next(job for job in reply["jobs"] if job["id"] == job_id)
    assert snapshot["rate_bps"] is None and snapshot["eta_s"] is None
    assert ack["snapshot"]["rate_bps"] is None
    assert watcher.received[-1][1]["rate_bps"] is None
    async with hostile_backend.client() as http:
        events = await http.get(f"/api/imports/{job_id}/events")
        job = await http.get(f"/api/imports/{job_id}")
    assert events.status_code == 200 and events.json()[-1]["data"]["rate_bps"] is None
    assert job.status_code == 200 and job.json()["rate_bps"] is None


async def importer_retry(importer, text: str, sent_headers) -> httpx.Response:
    """The same delivery again, as an outbox retries it: same webhook-id, a fresh signature."""
    return await post_signed(importer, text, msg_id=sent_headers["webhook-id"])


def _bad_deliveries(host: str) -> list[tuple[str, str, dict]]:
    """(what, body text, headers' webhook-id override) of callbacks outside the columns' range."""
    too_long_ref = "lab/" + "a" * 300 + ":" + "t" * 96
    return [
        (
            "seq 2**63",
            body_text(
                "import.queued", event_data(unique("j"), host, 1, state="queued", phase="queued"), seq=str(2**63)
            ),
            {},
        ),
        (
            "seq 2**31",
            body_text(
                "import.queued", event_data(unique("j"), host, 1, state="queued", phase="queued"), seq=str(2**31)
            ),
            {},
        ),
        ("bytes_done 2**64", body_text("import.progress", event_data(unique("j"), host, 1), bytes_done=str(2**64)), {}),
        (
            "ref of 401",
            body_text(
                "import.completed",
                dict(
                    completed_data(unique("j"), host, 1),
                    image={"ref": too_long_ref, "id": "sha256:" + "a" * 64, "size": 1, "tags": []},
                ),
            ),
            {},
        ),
        (
            "ref with NUL",
            body_text(
                "import.completed",
                dict(
                    completed_data(unique("j"), host, 1),
                    image={"ref": "lab/x:1\u0000", "id": "sha256:" + "a" * 64, "size": 1, "tags": []},
                ),
            ),
            {},
        ),
        (
            "webhook-id of 201",
            body_text("import.queued", event_data(unique("j"), host, 1, state="queued", phase="queued")),
            {"msg_id": "m" * 201},
        ),
    ]


async def test_out_of_range_callbacks_are_refused_and_concurrent_good_ones_are_stored(hostile_backend):
    importer = await hostile_backend.add_host(unique("range"))
    bad = _bad_deliveries(importer.name)
    good_jobs = [unique("good") for _ in range(30)]

    async def send_bad(text, extra):
        return await post_signed(importer, text, msg_id=extra.get("msg_id"))

    answers = await asyncio.gather(
        *(queued(importer, job) for job in good_jobs), *(send_bad(text, extra) for _, text, extra in bad)
    )
    good, refused = answers[: len(good_jobs)], answers[len(good_jobs) :]
    assert [r.status_code for r in good] == [200] * len(good_jobs), [r.text for r in good if r.status_code != 200]
    for (what, _, _), response in zip(bad, refused):
        assert response.status_code == 422, (what, response.text)
        assert response.json()["error"]["code"] in ("invalid_callback", "invalid_webhook_id"), what
    async with hostile_backend.client() as http:
        listed = (await http.get("/api/imports", params={"host": importer.name, "limit": 500})).json()
    jobs = listed["jobs"] if isinstance(listed, dict) else listed
    assert sorted(job["id"] for job in jobs) == sorted(good_jobs)


async def test_the_largest_values_the_contract_allows_are_stored(hostile_backend):
    importer = await hostile_backend.add_host(unique("max"))
    job_id = "j" * 200
    ref = "lab/" + "a" * 251 + ":" + "t" * 128
    assert len(ref) == 384
    data = completed_data(job_id, importer.name, 2**31 - 1)
    data.update(
        bytes_done=2**63 - 1,
        bytes_total=2**63 - 1,
        image={"ref": ref, "id": "sha256:" + "a" * 64, "size": 2**63 - 1, "tags": [ref]},
    )
    response = await importer.send("import.completed", data, msg_id="m" * 200)
    assert response.status_code == 200, response.text
    async with hostile_backend.client() as http:
        job = (await http.get(f"/api/imports/{job_id}")).json()
    assert (job["seq"], job["image"], job["bytes_done"]) == (2**31 - 1, ref, 2**63 - 1)


async def test_a_batch_the_database_refuses_fails_only_the_delivery_it_refuses(hostile_backend):
    """The database refuses one event row (a trigger standing in for a full disk or a too-big value): the
    deliveries committed with it in the same batch are written one by one and stored."""
    importer = await hostile_backend.add_host(unique("batch"))
    poison = unique("poison")
    with database(hostile_backend) as db:
        db.execute(
            f"CREATE TRIGGER refuse_{poison.replace('-', '_')} BEFORE INSERT ON events "
            f"WHEN NEW.job_id = '{poison}' BEGIN SELECT zeroblob(2147483647); END"
        )
    try:
        good_jobs = [unique("good") for _ in range(30)]
        answers = await asyncio.gather(
            *(queued(importer, job) for job in good_jobs[:15]),
            queued(importer, poison),
            *(queued(importer, job) for job in good_jobs[15:]),
        )
        statuses = [r.status_code for r in answers]
        assert statuses[15] >= 500
        assert statuses[:15] + statuses[16:] == [200] * 30, [r.text for r in answers]
    finally:
        with database(hostile_backend) as db:
            db.execute(f"DROP TRIGGER refuse_{poison.replace('-', '_')}")
    retry = await queued(importer, poison)  # nothing of the refused delivery was kept: its retry is new
    assert retry.status_code == 200 and retry.json()["verdict"] == "applied"


async def test_an_event_claiming_another_host_is_refused(hostile_backend):
    signer = await hostile_backend.add_host(unique("signer"))
    victim = await hostile_backend.add_host(unique("victim"))
    job_id = unique("job")
    text = body_text("import.queued", event_data(job_id, victim.name, 1, state="queued", phase="queued"))
    response = await post_signed(signer, text)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "host_mismatch"
    again = await importer_retry(signer, text, response.request.headers)  # stored as refused: its retry ends
    assert again.status_code == 200 and again.json()["verdict"] == "duplicate"
    beat = body_text("importer.heartbeat", {"host": victim.name, "seq": 1})
    assert (await post_signed(signer, beat)).json()["error"]["code"] == "host_mismatch"
    async with hostile_backend.client() as http:
        assert (await http.get(f"/api/imports/{job_id}")).status_code == 404
        hosts = {h["name"]: h for h in (await http.get("/api/hosts")).json()}
    assert hosts[victim.name]["last_seen"] is None


async def test_a_replayed_heartbeat_changes_nothing(hostile_backend):
    importer = await hostile_backend.add_host(unique("beat"))
    text = body_text("importer.heartbeat", {"host": importer.name, "seq": 1, "engine_version": "27.0"})
    first = await post_signed(importer, text, msg_id="msg_beat")
    assert first.json()["verdict"] == "heartbeat"
    async with hostile_backend.client() as http:
        seen = {h["name"]: h for h in (await http.get("/api/hosts")).json()}[importer.name]["last_seen"]
        await asyncio.sleep(0.05)
        again = await post_signed(importer, text, msg_id="msg_beat")
        later = {h["name"]: h for h in (await http.get("/api/hosts")).json()}[importer.name]["last_seen"]
    assert again.status_code == 200 and again.json()["verdict"] == "duplicate"
    assert later == seen


async def test_heartbeat_fields_are_bounded(hostile_backend):
    importer = await hostile_backend.add_host(unique("beatlen"))
    for data in (
        {"host": importer.name, "seq": 1, "engine_version": "v" * 101},
        {"host": importer.name, "seq": 1, "running": ["j"] * 1001},
        {"host": importer.name, "seq": 1, "queued": ["q" * 201]},
        {"host": importer.name, "seq": 1, "disk_free_bytes": 2**63},
    ):
        response = await post_signed(importer, body_text("importer.heartbeat", data))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_callback"


async def test_a_deeply_nested_signed_body_is_refused_with_the_error_body(hostile_backend):
    importer = await hostile_backend.add_host(unique("nest"))
    for text in ("[" * 50_000, '{"type": "import.queued", "data": ' + "[" * 50_000 + "]" * 50_000 + "}"):
        response = await post_signed(importer, text)
        assert response.status_code == 422, response.text[:200]
        assert response.json()["error"]["code"] == "invalid_callback"
    assert (await queued(importer, unique("after"))).status_code == 200


def test_strict_json_refuses_what_browsers_refuse():
    """The strict decoder the socket tests rely on: it must fail on Infinity, or those tests prove nothing."""
    from tests.hostile.support import StrictJSON

    for text in ("[Infinity]", "[NaN]", "[-Infinity]"):
        try:
            StrictJSON.loads(text)
        except ValueError:
            continue
        raise AssertionError(f"{text} was accepted")
    assert StrictJSON.loads("[1e308]") == [1e308] and not math.isinf(StrictJSON.loads("[1e308]")[0])


async def test_numbers_in_disguise_are_refused_not_coerced(hostile_backend):
    """The backend keeps the importer's data as signed: a seq of "2", 2.0 or true must not pass as 2."""
    importer = await hostile_backend.add_host(unique("coerce"))
    job_id = unique("job")
    assert (await queued(importer, job_id)).status_code == 200
    for field, raw in (("seq", '"2"'), ("seq", "2.0"), ("seq", "true"), ("bytes_done", '"10"'), ("percent", '"5"')):
        text = body_text("import.progress", event_data(job_id, importer.name, 2), **{field: raw})
        response = await post_signed(importer, text)
        assert response.status_code == 422, (field, raw, response.text)
        assert response.json()["error"]["code"] == "invalid_callback"
    assert (await importer.send("import.progress", event_data(job_id, importer.name, 2))).json()["verdict"] == "applied"


async def test_job_ids_with_control_characters_are_refused(hostile_backend):
    importer = await hostile_backend.add_host(unique("jobid"))
    for job_id in ("job\u0000nul", "job\x1b[2J", "job\nline", " job"):
        response = await importer.send(
            "import.queued", event_data(job_id, importer.name, 1, state="queued", phase="queued", percent=0.0)
        )
        assert response.status_code == 422, (job_id, response.text)
        assert response.json()["error"]["code"] == "invalid_callback"
