"""`ferry import`: tus upload, one job per host, live following until each ended, exit code by outcome.

The lab hosts are stand-ins: real HTTP servers that take the backend's job like an importer, pull the
archive from the backend's content URL and report a simulated import as signed callbacks. The real
importer end to end is the cross-service suite's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cli.tests.support import free_port, json_lines, new_secret, run_ferry, unique
from ferry_cli.signing import Sender
from ferry_cli.simulate import run_simulation, scenario
from ferry_cli.upload import upload_file

IMPORTER_TOKEN = "importer-token-" + "x" * 16


class StandInImporter:
    """Plays one lab host's importer (`POST /v1/imports` only), failing with `fail` when given."""

    def __init__(self, backend, fail: str | None = None):
        self.name, self.secret, self.fail = unique("lab"), new_secret(), fail
        self.port = free_port()
        self.pulled: dict[str, str] = {}  # job id -> sha256 of the bytes pulled from the backend
        self.errors: list[BaseException] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._threads: list[threading.Thread] = []
        backend.add_host(self.name, self.secret, url=f"http://127.0.0.1:{self.port}", token=IMPORTER_TOKEN)

    def _handler(self):
        importer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.headers.get("Authorization") != f"Bearer {IMPORTER_TOKEN}" or self.path != "/v1/imports":
                    self.send_response(401 if self.path == "/v1/imports" else 404)
                    self.end_headers()
                    return
                job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps(
                    {
                        "job_id": job["job_id"],
                        "image": job["image"],
                        "state": "queued",
                        "phase": "queued",
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                    }
                ).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                thread = threading.Thread(target=importer.run_job, args=(job,), daemon=True)
                importer._threads.append(thread)
                thread.start()

            def log_message(self, *args):
                pass

        return Handler

    def run_job(self, job: dict) -> None:
        try:
            digest, size = hashlib.sha256(), 0
            with httpx.stream("GET", job["source"]["url"], timeout=30) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
            self.pulled[job["job_id"]] = digest.hexdigest()
            steps = scenario(
                job_id=job["job_id"],
                host=self.name,
                image=job["image"],
                size=size,
                seed=5,
                fail=self.fail,
                finalizing_s=1.0,
            )
            to = job["callback_url"].rsplit("/api/callbacks/", 1)[0]
            with Sender(to, self.secret) as sender:
                report = run_simulation(steps, sender, speed=4)
            assert all(r.accepted for r in report.results), report.results
        except BaseException as exc:  # surfaced by the test through `errors`
            self.errors.append(exc)

    def __enter__(self) -> StandInImporter:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for thread in self._threads:
            thread.join(30)
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "ceos-lab.tar.xz"
    path.write_bytes(hashlib.sha256(b"seed").digest() * 60_000)  # 1.9 MB: several PATCHes at the first chunk size
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_uploads_once_and_follows_every_host_live_to_success(backend, archive):
    with StandInImporter(backend) as lab1, StandInImporter(backend) as lab2:
        done = run_ferry(
            "import",
            str(archive),
            "--host",
            lab1.name,
            "--host",
            lab2.name,
            "--image",
            "ceos:4.35.1F",
            "--json",
            backend=backend,
        )
    assert not lab1.errors and not lab2.errors, lab1.errors + lab2.errors
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    created = lines[0]
    assert created["type"] == "ferry.jobs" and {j["host"] for j in created["jobs"]} == {lab1.name, lab2.name}
    upload = backend.get(f"/api/uploads/{created['upload_id']}").json()
    assert upload["complete"] and upload["sha256"] == sha256_of(archive) and upload["filename"] == archive.name
    assert all(job["created_at"] < upload["completed_at"] for job in created["jobs"])  # started on the arriving upload
    for job in created["jobs"]:
        events = [line for line in lines[1:] if line["data"]["job_id"] == job["id"]]
        seqs = [e["data"]["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), "every event once, in order"
        assert events[-1]["type"] == "import.completed" and events[-1]["data"]["image"]["ref"] == "ceos:4.35.1F"
        assert any(e["data"]["phase"] == "finalizing" for e in events)
        importer = lab1 if job["host"] == lab1.name else lab2
        assert importer.pulled[job["id"]] == sha256_of(archive), "the host pulled exactly the uploaded bytes"


def test_import_prints_code_and_message_of_each_failed_host_and_exits_1(backend, archive):
    dead = unique("dead")
    backend.add_host(dead, new_secret(), url=f"http://127.0.0.1:{free_port()}", token=IMPORTER_TOKEN)
    with StandInImporter(backend) as good, StandInImporter(backend, fail="engine_error") as bad:
        done = run_ferry(
            "import",
            str(archive),
            "--host",
            good.name,
            "--host",
            bad.name,
            "--host",
            dead,
            "--image",
            "lab/img:1",
            backend=backend,
        )
    assert not good.errors and not bad.errors
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 of 3 import(s) did not succeed" in done.stderr
    finals = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()[:1] and ": " in line}
    assert "done" in finals[good.name]
    assert "failed · engine_error: the engine reported an error" in finals[bad.name]
    assert "failed · host_unreachable" in finals[dead]


def test_an_interrupted_upload_resumes_where_it_stopped(backend, archive):
    half = archive.stat().st_size // 2
    upload_file(archive, backend.url, backend.admin_token, stop_at=half)  # as if the first run was cut off here
    with StandInImporter(backend) as lab:
        done = run_ferry("import", str(archive), "--host", lab.name, "--image", "lab/resumed:1", backend=backend)
    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stdout
    first = next(line for line in done.stdout.splitlines() if line.startswith("upload "))
    assert first.startswith("upload  50.0%"), first
    assert list(lab.pulled.values()) == [sha256_of(archive)]


def test_a_viewer_cannot_import_and_nothing_is_created(backend, archive):
    with StandInImporter(backend) as lab:
        done = run_ferry(
            "import",
            str(archive),
            "--host",
            lab.name,
            "--image",
            "lab/img:1",
            backend=backend,
            token=backend.token("viewer"),
        )
    assert done.returncode == 5 and "[forbidden]" in done.stderr
    assert backend.get(f"/api/imports?host={lab.name}").json()["jobs"] == []


def test_import_checks_hosts_and_reference_before_uploading(backend, archive):
    unknown = run_ferry("import", str(archive), "--host", "no-such-host", "--image", "lab/img:1", backend=backend)
    assert unknown.returncode == 6 and "unknown host(s) no-such-host" in unknown.stderr
    invalid = run_ferry("import", str(archive), "--host", "any", "--image", "Bad/Name", backend=backend)
    assert invalid.returncode == 2 and "[invalid_reference]" in invalid.stderr
    nameless = run_ferry("import", str(archive), "--host", "any", "--format", "import", backend=backend)
    assert nameless.returncode == 2 and "give --image" in nameless.stderr
    assert "upload" not in unknown.stdout + invalid.stdout + nameless.stdout
