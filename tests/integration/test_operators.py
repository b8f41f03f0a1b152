"""Operators' tools on a real import: a capture replays into a fresh backend, and `outbox recover` brings a
backend that was down through a whole import up to date."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import httpx
import pytest

from backend.tests.support import BIN, Backend, new_secret
from cli.tests.streams import SocketRecorder
from cli.tests.support import SNAPSHOT_KEYS, run_ferry
from importer.tests.service_support import RangeFileServer
from tests.integration.support import ImporterProcess

pytestmark = [pytest.mark.engine, pytest.mark.slow]
DONE = ("import.completed", "import.failed", "import.canceled")


async def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _snapshot(backend: Backend, job_id: str) -> dict:
    response = httpx.get(
        f"{backend.url}/api/imports/{job_id}", headers={"Authorization": f"Bearer {backend.admin_token}"}, timeout=10
    )
    return response.json() if response.status_code == 200 else {}


def _logged(backend: Backend, job_id: str) -> list[tuple[str, int]]:
    response = httpx.get(
        f"{backend.url}/api/imports/{job_id}/events",
        headers={"Authorization": f"Bearer {backend.admin_token}"},
        timeout=10,
    )
    return [(e["type"], e["seq"]) for e in response.json()] if response.status_code == 200 else []


async def test_a_capture_of_a_real_import_replays_into_a_fresh_backend_the_same(lab, tmp_path):
    image, label = lab.image("capture"), lab.label("capture")
    job_id = (await lab.start_import(image, label))["id"]
    await _until(lambda: _snapshot(lab.backend, job_id).get("state") == "succeeded", 180, "the import")
    capture = tmp_path / "capture.jsonl"
    exported = run_ferry("events", job_id, "--export", str(capture), backend=lab.backend)
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [r["seq"] for r in records] == [seq for _, seq in _logged(lab.backend, job_id)]

    fresh = Backend(tmp_path / "fresh").start()
    watcher = None
    try:
        secret = new_secret()  # the replay re-signs: the fresh backend need not know the lab host's secret
        await fresh.add_host(lab.host, secret=secret)
        watcher = await SocketRecorder(fresh).connect()
        assert (await watcher.subscribe_all())["ok"]
        done = await asyncio.to_thread(
            run_ferry, "replay", str(capture), "--to", fresh.url, "--secret", secret, "--speed", "max"
        )
        assert done.returncode == 0 and f"{len(records)} applied" in done.stdout, done.stdout + done.stderr
        await watcher.wait_terminal(job_id)
        seen = [(name, data["seq"]) for name, data in watcher.of(job_id)]
        assert seen == _logged(lab.backend, job_id) == _logged(fresh, job_id)
        original, replayed = _snapshot(lab.backend, job_id), _snapshot(fresh, job_id)
        assert {k: replayed[k] for k in SNAPSHOT_KEYS} == {k: original[k] for k in SNAPSHOT_KEYS}
        wrong = await asyncio.to_thread(
            run_ferry,
            "replay",
            str(capture),
            "--to",
            fresh.url,
            "--secret",
            new_secret(),
            "--speed",
            "max",
            "--job-id",
            "job_" + uuid.uuid4().hex[:8],
        )
        assert wrong.returncode != 0 and "signature" in (wrong.stdout + wrong.stderr).lower()
    finally:
        if watcher is not None:
            await watcher.close()
        fresh.stop()


@pytest.mark.fault
async def test_outbox_recover_completes_a_job_on_a_backend_that_was_down_for_the_whole_import(
    lab, docker_host, tmp_path
):
    files = RangeFileServer(lab.archive.parent).start()
    backend = Backend(tmp_path / "backend", env_extra={"FERRY_HOST_STALE_S": "3600"}).start()
    name = "recover-" + uuid.uuid4().hex[:6]
    importer = ImporterProcess(
        tmp_path / "importer", backend, name, docker_host, allowed_url_prefixes=files.url(""), outbox_expire_s=1
    ).start()
    image = lab.image("recover")
    try:
        async with backend.client() as http:
            added = await http.post(
                "/api/hosts",
                json={"name": name, "url": importer.url, "token": importer.token, "webhook_secret": importer.secret},
            )
            assert added.status_code == 201, added.text
        async with backend.client(backend.token("operator")) as http:
            response = await http.post(
                "/api/imports",
                json={"source_url": files.url(lab.archive.name), "hosts": [name], "image": image, "format": "import"},
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["jobs"][0]["id"]
        importer_api = httpx.Client(
            base_url=importer.url, headers={"Authorization": f"Bearer {importer.token}"}, timeout=10
        )
        await _until(lambda: importer_api.get(f"/v1/imports/{job_id}").status_code == 200, 30, "the dispatch")
        backend.stop()  # down before the importer's first callbacks, for the whole import

        await _until(
            lambda: importer_api.get(f"/v1/imports/{job_id}").json()["state"] == "succeeded", 180, "the import"
        )
        outbox = [str(BIN / "ferry-importer"), "outbox"]
        data_dir = ["--data-dir", str(importer.data_dir)]

        def given_up():
            listed = subprocess.run(
                [*outbox, "list", "--json", "--job", job_id, *data_dir], capture_output=True, text=True
            )
            messages = [json.loads(line) for line in listed.stdout.splitlines()]
            settled = all(m["status"] in ("delivered", "expired", "coalesced") for m in messages)
            return messages if settled and any(m["status"] == "expired" for m in messages) else None

        messages = await _until(given_up, 60, "the job's callbacks to expire")
        backend.start()
        assert _snapshot(backend, job_id)["state"] in ("queued", "running")  # it missed the end
        recovered = subprocess.run([*outbox, "recover", "--since", "1h", *data_dir], capture_output=True, text=True)
        expired = sum(m["status"] == "expired" for m in messages)
        assert recovered.returncode == 0 and f"requeued {expired} callback(s)" in recovered.stdout, recovered.stderr
        snapshot = await _until(
            lambda: (s := _snapshot(backend, job_id)).get("state") == "succeeded" and s,
            60,
            "the backend to hear the whole import",
        )
        logged = _logged(backend, job_id)
        assert logged[0][0] == "import.queued" and logged[-1][0] == "import.completed"
        assert [seq for _, seq in logged] == sorted({seq for _, seq in logged})
        assert snapshot["result"]["ref"] == image and snapshot["percent"] == 100.0
        importer_api.close()
    finally:
        importer.stop()
        backend.stop()
        files.stop()
