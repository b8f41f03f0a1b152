"""Authentication and roles against a real backend process."""

from __future__ import annotations

import secrets

import httpx
import pytest
import socketio

from backend.tests.support import new_secret

SECRET = new_secret()


async def test_healthz_is_open_and_everything_else_needs_a_token(backend):
    async with httpx.AsyncClient(base_url=backend.url) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        for method, path in [
            ("GET", "/api/me"),
            ("GET", "/api/hosts"),
            ("GET", "/api/imports"),
            ("POST", "/api/uploads/"),
            ("GET", "/api/images"),
            ("HEAD", "/api/uploads/0123456789abcdef01234567"),
            ("GET", "/openapi.json"),
            ("GET", "/metrics"),
        ]:
            response = await http.request(method, path)
            assert response.status_code == 401, (method, path)
            if method != "HEAD":
                assert response.json()["error"]["code"] == "unauthorized"
        wrong = await http.get("/api/me", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json() == {
            "error": {"code": "unauthorized", "message": "unknown token"}
        }


async def test_the_api_description_is_for_token_holders_and_there_are_no_docs_pages(backend):
    async with backend.client(backend.token("viewer")) as http:
        spec = (await http.get("/openapi.json")).json()
        assert {"/api/imports", "/api/imports/{job_id}/replay", "/api/hosts"} <= set(spec["paths"])
        assert "/openapi.json" not in spec["paths"]
        for page in ("/docs", "/redoc"):
            assert (await http.get(page)).status_code == 404


async def test_cli_tokens_carry_their_role(backend):
    made = backend.cli("token", "create", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    viewer = made.stdout.strip()
    for token, role in [(viewer, "viewer"), (backend.token("operator"), "operator"), (backend.admin_token, "admin")]:
        async with backend.client(token) as http:
            me = (await http.get("/api/me")).json()
            assert me["role"] == role and me["token_id"].startswith("tok_")
    refused = backend.cli("token", "create", "--role", "root")
    assert refused.returncode != 0 and "unknown role" in refused.stderr


async def test_only_admins_create_tokens_and_tokens_are_stored_hashed(backend):
    async with backend.client(backend.token("operator")) as http:
        assert (await http.post("/api/tokens", json={"role": "admin"})).status_code == 403
    async with backend.client() as http:
        made = await http.post("/api/tokens", json={"role": "viewer", "name": "wallboard"})
        assert made.status_code == 201 and made.json()["role"] == "viewer"
        bad = await http.post("/api/tokens", json={"role": "root"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    secret = made.json()["token"]
    stored = b"".join(p.read_bytes() for p in backend.data_dir.glob("ferry.db*"))
    assert secret.encode() not in stored and b"wallboard" in stored


async def test_viewer_cannot_upload_import_or_register_hosts(backend):
    viewer = backend.token("viewer")
    async with backend.client(viewer) as http:
        upload = await http.post("/api/uploads/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
        assert upload.status_code == 403 and upload.json()["error"]["code"] == "forbidden"
        imports = await http.post("/api/imports", json={"upload_id": "x", "hosts": ["a"], "image": "a:1"})
        assert imports.status_code == 403
        host = await http.post(
            "/api/hosts", json={"name": "a", "url": "http://x", "token": "t", "webhook_secret": SECRET}
        )
        assert host.status_code == 403
        assert (await http.get("/api/imports")).status_code == 200


async def test_operator_cannot_register_hosts(backend):
    async with backend.client(backend.token("operator")) as http:
        response = await http.post(
            "/api/hosts", json={"name": "a", "url": "http://x", "token": "t", "webhook_secret": SECRET}
        )
        assert response.status_code == 403


async def test_bad_host_registration_is_explained(backend):
    async with backend.client() as http:
        bad_url = await http.post(
            "/api/hosts", json={"name": "a", "url": "file:///etc", "token": "t", "webhook_secret": SECRET}
        )
        assert bad_url.status_code == 422 and bad_url.json()["error"]["message"].startswith("url:")
        bad_secret = await http.post(
            "/api/hosts", json={"name": "a", "url": "http://x", "token": "t", "webhook_secret": "hunter2"}
        )
        assert bad_secret.status_code == 422 and "webhook_secret" in bad_secret.json()["error"]["message"]
    await backend.add_host("dup-host")
    async with backend.client() as http:
        again = await http.post(
            "/api/hosts", json={"name": "dup-host", "url": "http://x", "token": "t", "webhook_secret": SECRET}
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "host_exists"


async def test_cli_registers_hosts_in_the_running_backends_database(backend):
    result = backend.cli(
        "host", "add", "lab9", "--url", "http://127.0.0.1:9/", "--token", "t", "--webhook-secret", SECRET
    )
    assert result.returncode == 0, result.stderr
    async with backend.client(backend.token("viewer")) as http:
        hosts = (await http.get("/api/hosts")).json()
    assert ("lab9", "http://127.0.0.1:9", False) in [(h["name"], h["url"], h["alive"]) for h in hosts]
    assert "token" not in hosts[0] and "webhook_secret" not in hosts[0]
    bad = backend.cli("host", "add", "lab8", "--url", "ftp://x", "--token", "t", "--webhook-secret", SECRET)
    assert "lab8" not in [h["name"] for h in hosts]
    assert bad.returncode != 0 and "http(s)" in bad.stderr


@pytest.mark.parametrize("auth", [None, {}, {"token": "wrong"}, {"token": 42}])
async def test_bad_socket_token_is_refused(backend, auth):
    client = socketio.AsyncClient(reconnection=False)
    refusals = []
    client.on("connect_error", lambda data: refusals.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(backend.url, auth=auth, transports=["websocket"], wait_timeout=10)
    assert not client.connected
    assert refusals and refusals[0]["data"] == {"code": "unauthorized"} and refusals[0]["message"]


async def test_good_socket_token_connects(backend):
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        backend.url, auth={"token": backend.token("viewer")}, transports=["websocket"], wait_timeout=10
    )
    assert client.connected
    ack = await client.call("subscribe", {"job_id": "nope", "after_seq": 0}, timeout=10)
    assert ack == {"ok": False, "error": {"code": "not_found", "message": "no job 'nope'"}}
    await client.disconnect()


async def test_web_page_is_served_at_root_next_to_the_api(quick_backend):
    async with httpx.AsyncClient(base_url=quick_backend.url) as http:
        page = await http.get("/")
        assert (
            page.status_code == 200
            and "ferry operator page" in page.text
            and page.headers["content-type"].startswith("text/html")
        )
        assert (await http.get("/app.js")).text == "console.log('ferry');"
        assert (await http.get("/api/me")).status_code == 401  # the API stays behind its tokens
        missing = await http.get("/nope.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_metrics_count_what_happened(quick_backend):
    importer = await quick_backend.add_host("metrics-host")
    await importer.send(
        "import.progress",
        {
            "job_id": "job_metrics1",
            "host": "metrics-host",
            "seq": 1,
            "state": "running",
            "phase": "importing",
            "percent": 1.0,
            "bytes_done": 1,
        },
    )
    await importer.post(b"{}", {"webhook-id": "x"})
    async with quick_backend.client(quick_backend.token("viewer")) as http:
        text = (await http.get("/metrics")).text
    assert 'ferry_callbacks_total{verdict="applied"}' in text
    assert 'ferry_callbacks_refused_total{code="missing_signature"}' in text
    async with httpx.AsyncClient(base_url=quick_backend.url) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401


def _samples(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_jobs_by_state_and_host_bytes_imported_and_durations(quick_backend):
    from backend.tests.support import completed_data, event_data

    name = "metrics-" + secrets.token_hex(4)
    importer = await quick_backend.add_host(name)
    await importer.send("import.progress", event_data(f"job_{name}_a", name, 1))
    await importer.send("import.progress", event_data(f"job_{name}_b", name, 1))
    async with quick_backend.client(quick_backend.token("viewer")) as http:
        before = _samples((await http.get("/metrics")).text)
        await importer.send("import.completed", completed_data(f"job_{name}_a", name, 2))
        after = _samples((await http.get("/metrics")).text)
    host = (("host", name),)
    assert before[("ferry_imports", (("host", name), ("state", "running")))] == 2
    assert ("ferry_imported_bytes_total", host) not in before
    assert after[("ferry_imports", (("host", name), ("state", "running")))] == 1
    assert after[("ferry_imports", (("host", name), ("state", "succeeded")))] == 1
    assert after[("ferry_imported_bytes_total", host)] == 100_000  # the archive size the importer reported
    assert after[("ferry_import_duration_seconds_count", (("host", name), ("state", "succeeded")))] == 1


def test_a_bad_setting_is_named_in_one_line_and_nothing_starts(tmp_path):
    import subprocess

    from backend.tests.support import BIN, process_env

    env = {**process_env(), "FERRY_DATA_DIR": str(tmp_path), "FERRY_SQLITE_SYNCHRONOUS": "sometimes"}
    result = subprocess.run(
        [str(BIN / "ferry-backend"), "serve", "--listen", "127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: FERRY_SQLITE_SYNCHRONOUS: Input should be 'full' or 'normal'"]
    assert not (tmp_path / "ferry.db").exists()
