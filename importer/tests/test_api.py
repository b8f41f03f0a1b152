"""The service's HTTP API on a real `ferry-importer serve` process: auth, refusals, idempotency."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from archives import rootfs_files, tar_bytes, write
from importer.tests.service_process import ImporterProcess, remove_images
from importer.tests.service_support import TOKEN, RangeFileServer, WebhookReceiver, wait_until
from tests.support.images import image_present

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def world(tmp_path_factory, docker_host):
    base = tmp_path_factory.mktemp("api")
    roots = base / "roots"
    (roots / "sub").mkdir(parents=True)
    outside = base / "outside"
    outside.mkdir()
    write(roots / "ok.tar", tar_bytes(rootfs_files(50_000)))
    write(outside / "secret.tar", tar_bytes(rootfs_files(10_000)))
    os.symlink(outside / "secret.tar", roots / "escape.tar")
    files = RangeFileServer(base / "roots").start()
    files.redirects["/files/away.tar"] = "http://127.0.0.1:9/elsewhere/ok.tar"
    receiver = WebhookReceiver().start()
    importer = ImporterProcess(
        base / "data",
        docker_host,
        allowed_roots=roots,
        allowed_url_prefixes=files.url(""),
        callback_url_prefixes=receiver.url("/api/callbacks/"),
    ).start()
    yield {"roots": roots, "outside": outside, "files": files, "receiver": receiver, "importer": importer}
    importer.close()
    files.stop()
    receiver.stop()


ROUTES = [
    ("GET", "/v1/imports"),
    ("GET", "/v1/imports/x"),
    ("DELETE", "/v1/imports/x"),
    ("POST", "/v1/imports"),
    ("GET", "/v1/images"),
    ("DELETE", "/v1/images/" + "a" * 64),
    ("GET", "/v1/host"),
    ("GET", "/v1/outbox"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/outbox/resend"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token-0123456789"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": "Bearer"},
        {"authorization": TOKEN},
    ],
)
def test_every_route_but_healthz_needs_the_token(world, headers):
    base = world["importer"].base_url
    assert httpx.get(f"{base}/healthz").status_code == 200
    for method, path in ROUTES:
        response = httpx.request(method, f"{base}{path}", headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": {"code": "unauthorized", "message": "missing or wrong bearer token"}}
        assert response.headers["www-authenticate"] == "Bearer"


def test_openapi_is_published_to_token_holders(world):
    doc = world["importer"].client.get("/v1/openapi.json").json()
    assert {"/v1/imports", "/v1/imports/{job_id}", "/v1/images", "/v1/host", "/healthz"} <= set(doc["paths"])


def test_metrics_are_prometheus_text(world):
    response = world["importer"].client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'ferry_importer_jobs{state="running"}' in response.text
    assert 'ferry_importer_outbox_messages{status="pending"}' in response.text


def test_host_reports_engine_disk_and_jobs(world):
    host = world["importer"].client.get("/v1/host").json()
    assert host["name"] == "lab1"
    assert host["engine"]["engine_reachable"] is True
    assert host["engine"]["storage_driver"] and host["engine"]["engine_version"]
    assert host["spool_free_bytes"] > 0
    assert host["running"] == [] and host["queued"] == []


def refused(world, source: dict, **extra) -> httpx.Response:
    body = {
        "image": f"ferry-test/api-{uuid.uuid4().hex[:8]}:1",
        "source": source,
        "callback_url": world["receiver"].url("/api/callbacks/lab1"),
        **extra,
    }
    return world["importer"].submit(**body)


@pytest.mark.parametrize(
    "make_source, status, code",
    [
        (lambda w: {"path": f"{w['roots']}/../outside/secret.tar"}, 403, "source_not_allowed"),
        (lambda w: {"path": f"{w['roots']}/sub/../../outside/secret.tar"}, 403, "source_not_allowed"),
        (lambda w: {"path": f"{w['roots']}/escape.tar"}, 403, "source_not_allowed"),
        (lambda w: {"path": f"{w['outside']}/secret.tar"}, 403, "source_not_allowed"),
        (lambda w: {"path": "relative/ok.tar"}, 403, "source_not_allowed"),
        (lambda w: {"path": f"{w['roots']}/missing.tar"}, 422, "source_not_found"),
        (lambda w: {"path": f"{w['roots']}/sub"}, 422, "source_not_found"),
        (lambda w: {"url": "http://127.0.0.1:9/files/ok.tar"}, 403, "source_not_allowed"),
        (lambda w: {"url": w["files"].url("../roots/ok.tar")}, 403, "source_not_allowed"),
        (lambda w: {"url": "file:///etc/passwd"}, 403, "source_not_allowed"),
        (lambda w: {"url": w["files"].url("away.tar")}, 403, "source_not_allowed"),
        (lambda w: {"url": w["files"].url("missing.tar")}, 422, "source_not_found"),
        (lambda w: {"url": w["files"].url("ok.tar"), "size": 1}, 422, "source_mismatch"),
    ],
)
def test_sources_outside_the_allow_lists_are_refused_with_a_clear_code(world, make_source, status, code):
    response = refused(world, make_source(world))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_a_callback_url_outside_its_prefixes_is_refused(world):
    response = refused(world, {"path": f"{world['roots']}/ok.tar"}, callback_url="http://127.0.0.1:9/steal")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "source_not_allowed"


@pytest.mark.parametrize(
    "extra, code",
    [
        ({"image": "Bad/Name"}, "invalid_reference"),
        ({"changes": ["RUN rm -rf /"]}, "invalid_change"),
        ({"job_id": "no spaces allowed"}, "invalid_request"),
        ({"unknown": 1}, "invalid_request"),
    ],
)
def test_invalid_requests_get_422_with_a_stable_code(world, extra, code):
    response = refused(world, {"path": f"{world['roots']}/ok.tar"}, **extra)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


def test_a_refused_job_is_not_stored(world):
    assert refused(world, {"path": f"{world['roots']}/escape.tar"}, job_id="never-stored").status_code == 403
    assert world["importer"].client.get("/v1/imports/never-stored").status_code == 404
    assert world["receiver"].events("never-stored") == []


def test_unknown_jobs_are_404(world):
    client = world["importer"].client
    for response in (client.get("/v1/imports/nope"), client.delete("/v1/imports/nope")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_posting_the_same_job_id_twice_returns_the_same_job_and_imports_once(world, docker_client):
    importer, receiver = world["importer"], world["receiver"]
    job_id = f"idem-{uuid.uuid4().hex[:8]}"
    image = f"ferry-test/idem-{uuid.uuid4().hex[:8]}:1"
    body = {
        "job_id": job_id,
        "image": image,
        "source": {"path": f"{world['roots']}/ok.tar"},
        "callback_url": receiver.url("/api/callbacks/lab1"),
    }
    try:
        first = importer.client.post("/v1/imports", json=body)
        second = importer.client.post("/v1/imports", json=body)
        assert first.status_code == second.status_code == 202
        assert first.json()["job_id"] == second.json()["job_id"] == job_id
        assert first.json()["created_at"] == second.json()["created_at"]
        importer.wait_state(job_id, {"succeeded"})
        third = importer.client.post("/v1/imports", json=body)
        assert third.status_code == 202 and third.json()["state"] == "succeeded"
        conflict = importer.client.post("/v1/imports", json={**body, "image": image + "x"})
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "job_conflict"
        jobs = [j for j in importer.client.get("/v1/imports").json()["jobs"] if j["job_id"] == job_id]
        assert len(jobs) == 1
        wait_until(
            lambda: any(e["type"] == "import.completed" for e in receiver.events(job_id)),
            30,
            what="the completed callback",
        )
        events = receiver.events(job_id)
        assert [e["type"] for e in events].count("import.queued") == 1
        assert [e["type"] for e in events].count("import.completed") == 1
        assert image_present(docker_client, image)
    finally:
        remove_images(docker_client, [image])


def _metric(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_a_finished_import_adds_its_bytes_and_duration_to_the_metrics(world, docker_client):
    importer = world["importer"]
    image = f"ferry-test/metrics-{uuid.uuid4().hex[:8]}:1"
    before = importer.client.get("/metrics").text
    job_id = f"metrics-{uuid.uuid4().hex[:8]}"
    try:
        response = importer.client.post(
            "/v1/imports",
            json={
                "job_id": job_id,
                "image": image,
                "source": {"path": f"{world['roots']}/ok.tar"},
                "callback_url": world["receiver"].url("/api/callbacks/lab1"),
            },
        )
        assert response.status_code == 202
        importer.wait_state(job_id, {"succeeded"})
        after = importer.client.get("/metrics").text
    finally:
        remove_images(docker_client, [image])
    size = (world["roots"] / "ok.tar").stat().st_size
    grown = _metric(after, "ferry_importer_imported_bytes_total") - _metric(
        before, "ferry_importer_imported_bytes_total"
    )
    assert grown == size
    count = "ferry_importer_import_duration_seconds_count"
    assert _metric(after, count, state="succeeded") == _metric(before, count, state="succeeded") + 1


def test_an_image_is_removed_through_the_engine_unless_a_job_or_a_container_uses_it(world, docker_client):
    importer, files = world["importer"], world["files"]
    image = f"ferry-test/removal-{uuid.uuid4().hex[:8]}:1"
    callback = world["receiver"].url("/api/callbacks/lab1")
    made, busy = f"made-{uuid.uuid4().hex[:8]}", f"busy-{uuid.uuid4().hex[:8]}"
    container = None
    try:
        body = {
            "job_id": made,
            "image": image,
            "source": {"path": f"{world['roots']}/ok.tar"},
            "callback_url": callback,
        }
        assert importer.client.post("/v1/imports", json=body).status_code == 202
        image_id = importer.wait_state(made, {"succeeded"})["image_info"]["id"]

        # A running job that imports to the same name: the image stays.
        files.stall_at["/files/ok.tar"] = 1000
        busy_body = {"job_id": busy, "image": image, "source": {"url": files.url("ok.tar")}, "callback_url": callback}
        assert importer.client.post("/v1/imports", json=busy_body).status_code == 202
        importer.wait_state(busy, {"running"})
        refused = importer.client.delete(f"/v1/images/{image_id}")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "image_in_use", refused.text
        assert busy in refused.json()["error"]["message"]
        importer.client.delete(f"/v1/imports/{busy}")
        importer.wait_state(busy, {"canceled"})
        assert image_present(docker_client, image)

        # A container made from it: the engine would refuse; the importer says why first.
        container = docker_client.containers.create(image, command=["true"])
        refused = importer.client.delete(f"/v1/images/{image_id}")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "image_has_containers", refused.text
        container.remove()
        container = None

        removed = importer.client.delete(f"/v1/images/{image_id}")
        assert removed.status_code == 200, removed.text
        assert removed.json()["id"] == image_id and image in removed.json()["removed"]
        assert not image_present(docker_client, image)
        assert image not in {t for i in importer.client.get("/v1/images").json()["images"] for t in i["tags"]}
        again = importer.client.delete(f"/v1/images/{image_id}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "image_not_found"
        odd = importer.client.delete("/v1/images/not-an-id")
        assert odd.status_code == 422 and odd.json()["error"]["code"] == "invalid_image_id"
    finally:
        files.stall_at.clear()
        if container is not None:
            container.remove(force=True)
        remove_images(docker_client, [image])
