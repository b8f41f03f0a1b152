"""Imports end to end on a real backend: dispatch to importer endpoints over HTTP, failures, staleness, cancel, images."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import httpx

from backend.tests.support import (
    TUS,
    FakeImporter,
    SocketWatcher,
    callback_body,
    completed_data,
    event_data,
    free_port,
    job_state,
    register,
    upload,
    wait_until,
)


async def test_upload_is_dispatched_to_every_host_and_pulled_with_the_signed_link(backend, fake):
    second = await FakeImporter().start()
    try:
        hosts = [await register(backend, fake), await register(backend, second)]
        data = os.urandom(400_000)
        upload_id = await upload(backend, data, filename="ceos-lab-4.35.1F.tar")
        async with backend.client(backend.token("operator")) as http:
            response = await http.post(
                "/api/imports",
                json={
                    "upload_id": upload_id,
                    "hosts": [h.name for h in hosts],
                    "image": "ceos:4.35.1F",
                    "format": "load",
                },
            )
        assert response.status_code == 202
        jobs = response.json()["jobs"]
        assert [j["host"] for j in jobs] == [h.name for h in hosts]
        assert all(j["state"] == "queued" and j["seq"] == 0 and j["upload_id"] == upload_id for j in jobs)
        # Who started it and from which file: kept on the job, so the page can say so after the upload is gone.
        assert {(j["created_by"], j["source_name"]) for j in jobs} == {("test-operator", "ceos-lab-4.35.1F.tar")}
        await wait_until(lambda: asyncio.sleep(0, len(fake.submitted) == 1 and len(second.submitted) == 1))
        sent = fake.submitted[0]
        assert sent["job_id"] == jobs[0]["id"] and sent["image"] == "ceos:4.35.1F" and sent["format"] == "load"
        assert sent["callback_url"] == f"{backend.url}/api/callbacks/{hosts[0].name}"
        assert sent["source"]["sha256"] == hashlib.sha256(data).hexdigest() and sent["source"]["size"] == len(data)
        assert sent["source"]["url"].startswith(f"{backend.url}/api/uploads/{upload_id}/content?token=")
        assert second.submitted[0]["job_id"] == jobs[1]["id"]
        async with httpx.AsyncClient() as anonymous:  # the importer pulls without a bearer token, resuming by Range
            whole = await anonymous.get(sent["source"]["url"])
            tail = await anonymous.get(sent["source"]["url"], headers={"Range": "bytes=100000-"})
            other = await anonymous.get(sent["source"]["url"].replace(upload_id, "0" * 24))
        assert whole.content == data and tail.status_code == 206 and tail.content == data[100000:]
        assert other.status_code == 401
        async with backend.client(backend.token("operator")) as http:  # removing it cancels the jobs pulling it
            removed = await http.delete(f"/api/uploads/{upload_id}", headers=TUS)
        assert removed.status_code == 204 and fake.canceled == [jobs[0]["id"]] and second.canceled == [jobs[1]["id"]]
    finally:
        await second.stop()


async def test_a_dispatched_job_runs_to_completion_through_callbacks(backend, fake):
    host = await register(backend, fake)
    upload_id = await upload(backend, b"x" * 1000)
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post("/api/imports", json={"upload_id": upload_id, "hosts": [host.name], "image": "lab/test:1"})
        ).json()["jobs"][0]
    watcher = await SocketWatcher(backend).connect()
    try:
        assert (await watcher.subscribe(job["id"]))["snapshot"]["state"] == "queued"
        await host.progress_run(job["id"], 6)
        await watcher.wait_for(lambda: watcher.seqs()[-1:] == [6])
        assert watcher.seqs() == [1, 2, 3, 4, 5, 6]
        percents = [d["percent"] for _, d, _ in watcher.received]
        assert percents == sorted(percents)
    finally:
        await watcher.close()
    final = await job_state(backend, job["id"])
    assert final["state"] == "succeeded" and final["result"]["ref"] == "lab/test:1" and final["upload_id"] == upload_id
    async with backend.client(backend.token("operator")) as http:  # done with it: the upload may go now
        assert (await http.delete(f"/api/uploads/{upload_id}", headers=TUS)).status_code == 204


async def test_refused_dispatch_fails_the_job_with_the_importers_reason(backend, fake):
    host = await register(backend, fake)
    fake.submit_status = 422
    fake.submit_body = {
        "error": {"code": "source_not_allowed", "message": "url is outside FERRY_IMPORTER_ALLOWED_URL_PREFIXES"}
    }
    watcher = await SocketWatcher(backend).connect()
    try:
        await watcher.sio.call("subscribe_all", {}, timeout=10)
        async with backend.client(backend.token("operator")) as http:
            job = (
                await http.post(
                    "/api/imports", json={"source_url": "http://files.lab/x.tar", "hosts": [host.name], "image": "x:1"}
                )
            ).json()["jobs"][0]
        await watcher.wait_for(lambda: any(d["job_id"] == job["id"] for _, d, _ in watcher.received))
    finally:
        await watcher.close()
    assert job["source_name"] == "x.tar"  # a URL's file is its last path segment
    name, data, _ = next(e for e in watcher.received if e[1]["job_id"] == job["id"])
    assert name == "import.failed" and data["seq"] == 1 and data["error"]["code"] == "dispatch_failed"
    assert "FERRY_IMPORTER_ALLOWED_URL_PREFIXES" in data["error"]["message"]
    snapshot = await job_state(backend, job["id"])
    assert snapshot["state"] == "failed" and snapshot["error"]["code"] == "dispatch_failed"


async def test_unreachable_host_fails_the_job_host_unreachable(backend):
    host = await backend.add_host(f"down-{uuid.uuid4().hex[:6]}", url=f"http://127.0.0.1:{free_port()}")
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post(
                "/api/imports", json={"source_url": "http://files.lab/x.tar", "hosts": [host.name], "image": "x:1"}
            )
        ).json()["jobs"][0]

    async def failed():
        return (await job_state(backend, job["id"]))["state"] == "failed"

    await wait_until(failed)
    snapshot = await job_state(backend, job["id"])
    assert snapshot["error"]["code"] == "host_unreachable" and host.name in snapshot["error"]["message"]
    async with backend.client() as http:
        events = (await http.get(f"/api/imports/{job['id']}/events")).json()
    assert [(e["seq"], e["type"], e["webhook_id"]) for e in events] == [(1, "import.failed", None)]


async def test_a_docker_save_needs_no_name_and_the_job_takes_the_name_of_what_it_loaded(backend, fake):
    host = await register(backend, fake)
    upload_id = await upload(backend, os.urandom(1000))
    async with backend.client(backend.token("operator")) as http:
        response = await http.post("/api/imports", json={"upload_id": upload_id, "hosts": [host.name]})
    assert response.status_code == 202, response.text
    job = response.json()["jobs"][0]
    await wait_until(lambda: asyncio.sleep(0, len(fake.submitted) == 1))
    assert fake.submitted[0]["image"] is None  # the importer keeps the archive's own tags
    loaded = {
        "ref": "lab/a:1",
        "id": "sha256:" + "a" * 64,
        "size": 10,
        "tags": ["lab/a:1"],
        "images": [
            {"id": "sha256:" + "a" * 64, "tags": ["lab/a:1"]},
            {"id": "sha256:" + "b" * 64, "tags": ["lab/b:1"]},
        ],
    }
    done = dict(event_data(job["id"], host.name, 1, state="succeeded", phase="done", percent=100.0), image=loaded)
    assert (await host.send("import.completed", done)).status_code == 200
    final = await job_state(backend, job["id"])
    assert final["state"] == "succeeded" and final["image"] == "lab/a:1"
    assert [i["tags"] for i in final["result"]["images"]] == [["lab/a:1"], ["lab/b:1"]]


async def test_bad_import_requests_create_nothing(backend, fake):
    host = await register(backend, fake)
    incomplete = None
    async with backend.client(backend.token("operator")) as http:
        incomplete = (
            (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "10"}))
            .headers["location"]
            .rsplit("/", 1)[-1]
        )
        cases = [
            ({"upload_id": "0" * 24, "hosts": [host.name], "image": "a:1"}, 404, "upload_not_found"),
            ({"source_url": "http://x/a.tar", "hosts": ["nope"], "image": "a:1"}, 404, "unknown_host"),
            ({"source_url": "http://x/a.tar", "hosts": [host.name], "image": "Bad:Ref"}, 422, "invalid_reference"),
            ({"source_url": "file:///etc/passwd", "hosts": [host.name], "image": "a:1"}, 422, "source_not_allowed"),
            (
                {"source_url": "http://x/a.tar", "upload_id": incomplete, "hosts": [host.name], "image": "a:1"},
                422,
                "invalid_request",
            ),
            ({"source_url": "http://x/a.tar", "hosts": [], "image": "a:1"}, 422, "invalid_request"),
            ({"source_url": "http://x/a.tar", "hosts": [host.name], "format": "import"}, 422, "invalid_reference"),
        ]
        for body, status, code in cases:
            response = await http.post("/api/imports", json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
        listed = (await http.get("/api/imports", params={"host": host.name})).json()["jobs"]
    assert listed == [] and fake.submitted == []


async def test_source_urls_must_start_with_an_allowed_prefix_without_tricks(quick_backend, fake):
    host = await register(quick_backend, fake)
    refused = [
        "http://files.lab/imagesX/a.tar",  # not at a segment boundary
        "http://files.lab.evil/images/a.tar",  # another host that starts with the same letters
        "http://files.lab@evil.example/images/a.tar",  # user information hiding the real host
        "http://files.lab/images/../secret/a.tar",
        "http://files.lab/images/%2e%2e/secret/a.tar",  # climbing out
        "https://files.lab/images/a.tar",
        "http://files.lab:8080/images/a.tar",  # other scheme or port
        "http://files.lab/images/a.tar#x",
        "ftp://files.lab/images/a.tar",
    ]
    async with quick_backend.client(quick_backend.token("operator")) as http:
        for url in refused:
            response = await http.post("/api/imports", json={"source_url": url, "hosts": [host.name], "image": "a:1"})
            assert (response.status_code, response.json()["error"]["code"]) == (422, "source_not_allowed"), url
        accepted = await http.post(
            "/api/imports",
            json={"source_url": "http://files.lab/images/ceos/a.tar.xz", "hosts": [host.name], "image": "a:1"},
        )
        assert accepted.status_code == 202
        listed = (await http.get("/api/imports", params={"host": host.name})).json()["jobs"]
    assert [j["id"] for j in listed] == [accepted.json()["jobs"][0]["id"]]


def test_a_source_prefix_that_cannot_match_safely_stops_the_start_with_its_name(tmp_path):
    from backend.tests.support import Backend

    result = Backend(tmp_path, env_extra={"FERRY_SOURCE_URL_PREFIXES": "http://files.lab/images?x=1"}).cli(
        "token", "create", "--role", "viewer"
    )
    assert result.returncode == 2
    assert "FERRY_SOURCE_URL_PREFIXES" in result.stderr and "must not have a query" in result.stderr


async def test_cancel_asks_the_importer_and_ends_jobs_it_never_had(backend, fake):
    host = await register(backend, fake)
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post("/api/imports", json={"source_url": "http://x/a.tar", "hosts": [host.name], "image": "a:1"})
        ).json()["jobs"][0]
        await wait_until(lambda: asyncio.sleep(0, bool(fake.submitted)))
        await host.send("import.progress", event_data(job["id"], host.name, 1))
        accepted = await http.delete(f"/api/imports/{job['id']}")
        assert accepted.status_code == 202 and accepted.json()["state"] == "running"
        assert fake.canceled == [job["id"]]
        await host.send("import.canceled", event_data(job["id"], host.name, 2, state="canceled", phase="importing"))
        assert (await http.get(f"/api/imports/{job['id']}")).json()["state"] == "canceled"
        again = await http.delete(f"/api/imports/{job['id']}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"

        fake.cancel_status = 404  # an importer that lost (or never got) the job
        orphan = (
            await http.post("/api/imports", json={"source_url": "http://x/a.tar", "hosts": [host.name], "image": "a:1"})
        ).json()["jobs"][0]
        ended = await http.delete(f"/api/imports/{orphan['id']}")
        assert ended.status_code == 202 and ended.json()["state"] == "canceled"
        viewer = await http.delete(
            f"/api/imports/{orphan['id']}", headers={"Authorization": f"Bearer {backend.token('viewer')}"}
        )
        assert viewer.status_code == 403


async def _silent_job(backend, fake):
    host = await register(backend, fake)
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post("/api/imports", json={"source_url": "http://x/a.tar", "hosts": [host.name], "image": "a:1"})
        ).json()["jobs"][0]
    watcher = await SocketWatcher(backend).connect()
    await watcher.subscribe(job["id"])
    await host.send("import.progress", event_data(job["id"], host.name, 1, percent=10.0))
    return host, job, watcher


async def test_a_silent_host_leaves_its_job_unfinished_with_a_doubt_that_its_next_word_ends(quick_backend, fake):
    backend = quick_backend
    host, job, watcher = await _silent_job(backend, fake)
    try:
        heartbeat_until = asyncio.get_running_loop().time() + 3
        while asyncio.get_running_loop().time() < heartbeat_until:  # a live host keeps its job free of doubt
            body = callback_body("importer.heartbeat", {"host": host.name, "seq": 1, "running": [job["id"]]})
            await host.post(body, host.sign(body))
            await asyncio.sleep(0.5)
        assert (await job_state(backend, job["id"]))["doubt"] is None and not watcher.notices
        await watcher.wait_for(lambda: any(d["doubt"] for d, _ in watcher.notices))  # then it goes silent
        data, meta = watcher.notices[-1]
        assert data["state"] == "running" and data["seq"] == 1 and meta["notice"] and not meta["replay"]
        assert (
            data["doubt"]["code"] == "host_silent"
            and data["doubt"]["host"] == host.name
            and data["doubt"]["silent_s"] >= 2  # found past the 2 s limit; the view rounds to 0.1 s
        )
        assert data["doubt"]["message"].startswith(f"no word from {host.name} for ")
        snapshot = await job_state(backend, job["id"])
        assert (
            snapshot["state"] == "running" and snapshot["doubt"]["code"] == "host_silent" and not snapshot["presumed"]
        )
        body = callback_body("importer.heartbeat", {"host": host.name, "seq": 2, "running": [job["id"]]})
        await host.post(body, host.sign(body))  # a word from the host ends the doubt, and the watchers hear so
        await watcher.wait_for(lambda: watcher.notices[-1][0]["doubt"] is None)
        await host.send("import.progress", event_data(job["id"], host.name, 2, percent=50.0))
        done = await host.send("import.completed", completed_data(job["id"], host.name, 3))
        assert done.json()["verdict"] == "applied"
        await watcher.wait_for(lambda: watcher.seqs()[-1:] == [3])
    finally:
        await watcher.close()
    assert [name for name, _, _ in watcher.received] == ["import.progress", "import.progress", "import.completed"]
    final = await job_state(backend, job["id"])
    assert final["state"] == "succeeded" and final["doubt"] is None and final["error"] is None


async def test_a_host_silent_past_the_limit_is_presumed_failed_until_its_own_report_ends_the_job(quick_backend, fake):
    backend = quick_backend
    host, job, watcher = await _silent_job(backend, fake)
    try:
        await watcher.wait_for(lambda: any(d["state"] == "failed" for d, _ in watcher.notices), timeout=20)
        presumed = await job_state(backend, job["id"])
        assert (
            presumed["state"] == "failed" and presumed["presumed"] and presumed["seq"] == 1 and presumed["finished_at"]
        )
        assert presumed["error"]["code"] == "host_unreachable" and "no word from host" in presumed["error"]["message"]
        assert watcher.seqs() == [1]  # no event took a seq: the importer's next one is still its own
        later = await host.send("import.progress", event_data(job["id"], host.name, 2, percent=60.0))
        assert later.json()["verdict"] == "applied"  # the host's word wins over the presumption
        resumed = await job_state(backend, job["id"])
        assert resumed["state"] == "running" and not resumed["presumed"] and resumed["error"] is None
        assert resumed["finished_at"] is None and resumed["doubt"] is None
        assert (await host.send("import.completed", completed_data(job["id"], host.name, 3))).json()[
            "verdict"
        ] == "applied"
        await watcher.wait_for(lambda: watcher.seqs()[-1:] == [3])
    finally:
        await watcher.close()
    final = await job_state(backend, job["id"])
    assert final["state"] == "succeeded" and not final["presumed"] and final["result"]["ref"] == "lab/test:1"
    fresh = await SocketWatcher(backend).connect()  # a subscriber from seq 0 sees one story with one end
    try:
        await fresh.subscribe(job["id"])
        await fresh.wait_for(lambda: fresh.seqs()[-1:] == [3])
    finally:
        await fresh.close()
    assert [(name, d["seq"]) for name, d, _ in fresh.received] == [
        ("import.progress", 1),
        ("import.progress", 2),
        ("import.completed", 3),
    ]
    async with backend.client() as http:
        events = (await http.get(f"/api/imports/{job['id']}/events")).json()
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "import.progress"),
        (2, "import.progress"),
        (3, "import.completed"),
    ]


async def test_a_heartbeat_without_the_job_proves_the_host_lost_it(backend, fake):
    host, job, watcher = await _silent_job(backend, fake)
    try:
        body = callback_body("importer.heartbeat", {"host": host.name, "seq": 1, "running": [job["id"]]})
        await host.post(body, host.sign(body))
        assert (await job_state(backend, job["id"]))["state"] == "running"
        body = callback_body("importer.heartbeat", {"host": host.name, "seq": 2, "running": [], "queued": []})
        await host.post(body, host.sign(body))
        await watcher.wait_for(lambda: any(d["state"] == "failed" for d, _ in watcher.notices))
    finally:
        await watcher.close()
    lost = await job_state(backend, job["id"])
    assert lost["state"] == "failed" and lost["error"]["code"] == "host_unreachable" and lost["seq"] == 1
    assert host.name in lost["error"]["message"] and "no longer has this job" in lost["error"]["message"]
    assert [name for name, _, _ in watcher.received] == ["import.progress"]


async def test_nothing_after_a_jobs_end_enters_the_log_or_the_wire(backend, fake):
    host, job, watcher = await _silent_job(backend, fake)
    try:
        await host.send("import.completed", completed_data(job["id"], host.name, 2))
        late = await host.send("import.progress", event_data(job["id"], host.name, 3, percent=90.0))
        assert late.json()["verdict"] == "after_terminal"
        again = await host.send("import.completed", completed_data(job["id"], host.name, 4))
        assert again.json()["verdict"] == "after_terminal"
        await watcher.wait_for(lambda: watcher.seqs()[-1:] == [2])
        await asyncio.sleep(0.3)
    finally:
        await watcher.close()
    assert watcher.seqs() == [1, 2]
    async with backend.client() as http:
        events = (await http.get(f"/api/imports/{job['id']}/events")).json()
        deliveries = (await http.get(f"/api/imports/{job['id']}/deliveries")).json()
    assert [e["seq"] for e in events] == [1, 2]
    assert [d["verdict"] for d in deliveries] == ["applied", "applied", "after_terminal", "after_terminal"]


async def test_images_come_from_importers_or_from_completed_jobs(backend, fake):
    up = await register(backend, fake, "img")
    fake.images = [
        {
            "tags": ["ceos:4.35.1F"],
            "id": "sha256:" + "b" * 64,
            "size": 10,
            "created": "2026-01-01T00:00:00Z",
            "archive_sha256": "c" * 64,
        }
    ]
    down = await backend.add_host(f"img-down-{uuid.uuid4().hex[:6]}", url=f"http://127.0.0.1:{free_port()}")
    await down.send("import.completed", completed_data("job_" + uuid.uuid4().hex[:10], down.name, 3))
    async with backend.client(backend.token("viewer")) as http:
        catalog = {entry["host"]: entry for entry in (await http.get("/api/images")).json()}
    assert catalog[up.name] == {"host": up.name, "reachable": True, "images": fake.images}
    assert catalog[down.name]["reachable"] is False
    assert [i["tags"] for i in catalog[down.name]["images"]] == [["lab/test:1"]]


async def test_an_operator_removes_an_image_through_its_hosts_importer_which_may_refuse(backend, fake):
    host = await register(backend, fake, "rm")
    image_id = "sha256:" + "d" * 64
    fake.images = [{"tags": ["ceos:1"], "id": image_id, "size": 1, "created": None, "archive_sha256": None}]
    async with backend.client(backend.token("viewer")) as http:
        assert (await http.delete(f"/api/images/{host.name}/{image_id}")).status_code == 403
    async with backend.client(backend.token("operator")) as http:
        fake.remove_answer = (409, {"error": {"code": "image_in_use", "message": "job j1 is importing to ceos:1"}})
        busy = await http.delete(f"/api/images/{host.name}/{image_id}")
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "image_in_use"
        assert "job j1 is importing to ceos:1" in busy.json()["error"]["message"]
        fake.remove_answer = None
        done = await http.delete(f"/api/images/{host.name}/{image_id}")
        assert done.status_code == 200, done.text
        assert done.json() == {"host": host.name, "id": image_id, "removed": ["ceos:1", image_id]}
        assert fake.removed == [image_id] and fake.images == []
        gone = await http.delete(f"/api/images/{host.name}/{image_id}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "image_not_found"
        nohost = await http.delete(f"/api/images/nope/{image_id}")
        assert nohost.status_code == 404 and nohost.json()["error"]["code"] == "unknown_host"
        spec = (await http.get("/openapi.json")).json()
    documented = spec["paths"]["/api/images/{host}/{image_id}"]["delete"]["responses"]
    assert {"200", "401", "403", "404", "409", "422", "502"} <= set(documented)
