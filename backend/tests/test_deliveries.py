"""GET /api/imports/{id}/deliveries on a real backend: every verified arrival, raw, in order, with its verdict."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from backend.tests.support import callback_body, completed_data, event_data


async def test_deliveries_list_every_verified_arrival_raw_and_in_order(backend):
    importer = await backend.add_host("dl-" + uuid.uuid4().hex[:8])
    job = "job_" + uuid.uuid4().hex[:12]
    sent: list[tuple[bytes, dict, str]] = []
    answered_with: list[tuple[int, dict]] = []

    async def post(body: bytes, msg_id: str | None = None, expect: int = 200, later_s: int = 0) -> None:
        headers = importer.sign(body, msg_id, when=datetime.now(UTC) + timedelta(seconds=later_s))
        response = await importer.post(body, headers)
        assert response.status_code == expect, response.text
        answered_with.append((response.status_code, response.json()))
        sent.append((body, headers, response.json().get("verdict", response.json().get("error", {}).get("code"))))

    first = callback_body("import.progress", event_data(job, importer.name, 2))
    await post(first, msg_id="msg_first_" + job)
    await post(callback_body("import.progress", event_data(job, importer.name, 3)))
    await post(callback_body("import.progress", event_data(job, importer.name, 1)))  # late: stale
    await post(first, msg_id="msg_first_" + job, later_s=2)  # the importer's retry: same id, a later timestamp
    broken = event_data(job, importer.name, 4)
    broken["percent"] = 140
    await post(callback_body("import.progress", broken), expect=422)
    await post(callback_body("import.completed", completed_data(job, importer.name, 5)))
    await post(callback_body("import.progress", event_data(job, importer.name, 6)))  # after the end
    forged = callback_body("import.progress", event_data(job, importer.name, 7))
    bad = await importer.post(forged, {**importer.sign(forged), "webhook-signature": "v1," + "A" * 43 + "="})
    assert bad.status_code == 401
    other_job = "job_" + uuid.uuid4().hex[:12]
    await importer.send("import.progress", event_data(other_job, importer.name, 1))

    async with backend.client(backend.token("operator")) as http:
        response = await http.get(f"/api/imports/{job}/deliveries")
    assert response.status_code == 200
    listed = response.json()
    assert [d["verdict"] for d in listed] == [
        "applied",
        "applied",
        "stale",
        "duplicate",
        "invalid",
        "applied",
        "after_terminal",
    ]
    answered = [verdict.replace("invalid_callback", "invalid") for _, _, verdict in sent]
    assert [d["verdict"] for d in listed] == answered  # what the importer was told is what operators see
    assert [d["seq"] for d in listed] == [2, 3, 1, 2, 4, 5, 6]
    assert [d["type"] for d in listed][-2:] == ["import.completed", "import.progress"]
    assert listed[0]["duplicates"] == 1 and listed[3]["duplicates"] == 0
    assert {d["job_id"] for d in listed} == {job} and {d["host"] for d in listed} == {importer.name}
    times = [d["received_at"] for d in listed]
    assert times == sorted(times)
    for delivery, (body, headers, _) in zip(listed, sent):
        assert delivery["body"] == body.decode()  # the bytes as received, not re-serialised
        assert delivery["webhook_id"] == headers["webhook-id"]
        assert {k: delivery["headers"][k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")} == {
            k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        Webhook(importer.secret).verify(delivery["body"], delivery["headers"])  # still verifies: nothing was altered
    assert listed[3]["headers"]["webhook-signature"] != listed[0]["headers"]["webhook-signature"]
    # Each delivery keeps the answer the importer got, word for word: status and body.
    assert [(d["answer"]["status"], json.loads(d["answer"]["body"])) for d in listed] == answered_with
    assert listed[4]["answer"]["status"] == 422 and "invalid_callback" in listed[4]["answer"]["body"]
    assert json.loads(listed[4]["body"])["data"]["percent"] == 140


async def test_deliveries_are_for_operators_and_known_jobs(backend):
    importer = await backend.add_host("dl-" + uuid.uuid4().hex[:8])
    job = "job_" + uuid.uuid4().hex[:12]
    await importer.send("import.progress", event_data(job, importer.name, 1))
    async with backend.client(backend.token("viewer")) as http:
        assert (await http.get(f"/api/imports/{job}/deliveries")).status_code == 403
    async with backend.client(backend.token("operator")) as http:
        missing = await http.get("/api/imports/job_never/deliveries")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
        assert [d["seq"] for d in (await http.get(f"/api/imports/{job}/deliveries")).json()] == [1]


async def test_a_job_known_only_from_refused_deliveries_still_shows_them(backend):
    importer = await backend.add_host("dl-" + uuid.uuid4().hex[:8])
    job = "job_" + uuid.uuid4().hex[:12]
    broken = event_data(job, importer.name, 1, state="exploded")
    assert (await importer.send("import.progress", broken)).status_code == 422
    async with backend.client(backend.token("operator")) as http:
        assert (await http.get(f"/api/imports/{job}")).status_code == 404
        listed = (await http.get(f"/api/imports/{job}/deliveries")).json()
    assert [(d["seq"], d["verdict"], d["type"]) for d in listed] == [(1, "invalid", "import.progress")]
