"""`ferry cancel` and Ctrl-C while `ferry import` follows its jobs: the jobs' fate is always said, and
canceled when asked. The lab host is a stand-in that speaks the importer's API (POST and DELETE
/v1/imports) and reports a slow simulated import as signed callbacks until it is canceled; the real
importer's cancel is the cross-service suite's."""

from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli.tests.streams import FerryProcess
from cli.tests.support import drive, free_port, new_secret, run_ferry, unique
from ferry_cli.signing import Sender
from ferry_cli.simulate import new_webhook_id, scenario
from ferry_contract import EventType, JobState, make_import_event

IMPORTER_TOKEN = "importer-token-" + "c" * 16
TICK_S = 0.2  # a progress callback this often: an import that runs until it is canceled


class CancelableImporter:
    """One lab host: runs each job as slow progress callbacks; DELETE ends it with import.canceled."""

    def __init__(self, backend):
        self.name, self.secret = unique("lab"), new_secret()
        self.port = free_port()
        self.canceled: dict[str, threading.Event] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        backend.add_host(self.name, self.secret, url=f"http://127.0.0.1:{self.port}", token=IMPORTER_TOKEN)

    def _handler(self):
        importer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                importer.canceled[job["job_id"]] = threading.Event()
                self._answer(
                    202,
                    {
                        "job_id": job["job_id"],
                        "image": job["image"],
                        "state": "queued",
                        "phase": "queued",
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                    },
                )
                threading.Thread(target=importer.run_job, args=(job,), daemon=True).start()

            def do_DELETE(self):
                job_id = self.path.rsplit("/", 1)[-1]
                if job_id not in importer.canceled:
                    return self._answer(404, {"error": {"code": "job_not_found", "message": "no such job"}})
                importer.canceled[job_id].set()
                self._answer(
                    202,
                    {
                        "job_id": job_id,
                        "image": "x",
                        "state": "running",
                        "phase": "importing",
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                    },
                )

            def log_message(self, *args):
                pass

        return Handler

    def run_job(self, job: dict) -> None:
        steps = scenario(job_id=job["job_id"], host=self.name, image=job["image"], size=600_000_000, seed=3)
        to = job["callback_url"].rsplit("/api/callbacks/", 1)[0]
        stop = self.canceled[job["job_id"]]
        with Sender(to, self.secret) as sender:
            last = None
            for step in steps[:-1]:  # never the completion: the import runs until it is canceled
                if stop.wait(TICK_S):
                    break
                sender.send(self.name, new_webhook_id(), make_import_event(step.type, step.data).model_dump_json())
                last = step.data
            stop.wait()
            data = last.model_copy(update={"seq": last.seq + 1, "state": JobState.CANCELED})
            sender.send(self.name, new_webhook_id(), make_import_event(EventType.CANCELED, data).model_dump_json())

    def __enter__(self) -> CancelableImporter:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for event in self.canceled.values():
            event.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "ceos-lab.tar.xz"
    path.write_bytes(b"\xfd7zXZ\x00" + b"x" * 200_000)
    return path


def _import(backend, host, archive, *flags: str) -> FerryProcess:
    """`ferry import --json` of `archive` on `host` (a name or a CancelableImporter), running in the background."""
    name = host if isinstance(host, str) else host.name
    image = unique("lab/c") + ":1"
    return FerryProcess(
        "import",
        str(archive),
        "--host",
        name,
        "--image",
        image,
        "--json",
        *flags,
        url=backend.url,
        token=backend.admin_token,
    )


def start_job(backend, host: str, archive) -> str:
    ferry = _import(backend, host, archive, "--keep-on-interrupt")
    job_id = _job_id_of(ferry)
    ferry.proc.send_signal(signal.SIGINT)
    ferry.finish(30)
    deadline = time.monotonic() + 30
    while _state(backend, job_id) != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    return job_id


def _job_id_of(ferry: FerryProcess) -> str:
    while (line := ferry.next_line(60)) is not None:
        if json.loads(line).get("type") == "ferry.jobs":
            return json.loads(line)["jobs"][0]["id"]
    raise AssertionError(f"no jobs line: {ferry.finish(5)} {ferry.stderr}")


def _running_soon(backend, job_id: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while (state := _state(backend, job_id)) == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    return state == "running"


def _state(backend, job_id: str) -> str:
    with backend.http() as client:
        return client.get(f"/api/imports/{job_id}").json()["state"]


def test_cancel_ends_running_jobs_says_canceled_and_exits_0(backend, archive):
    with CancelableImporter(backend) as lab:
        jobs = [start_job(backend, lab.name, archive) for _ in range(2)]
        assert [_state(backend, j) for j in jobs] == ["running", "running"]
        done = run_ferry("cancel", *jobs, backend=backend)
    assert done.returncode == 0, done.stderr
    for job_id in jobs:
        assert f"{lab.name} {job_id}: canceled" in done.stdout
        assert _state(backend, job_id) == "canceled"


def test_cancel_again_says_already_canceled_and_exits_0(backend, archive):
    with CancelableImporter(backend) as lab:
        job_id = start_job(backend, lab.name, archive)
        assert run_ferry("cancel", job_id, backend=backend).returncode == 0
        again = run_ferry("cancel", job_id, backend=backend)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{job_id}: already canceled" in again.stdout


def test_cancel_of_a_job_that_succeeded_says_so_and_exits_7(backend, host):
    job_id = unique("done")
    drive(backend, host.name, host.secret, job_id, speed=50, size=2_000_000, finalizing_s=0.1).join(60)
    done = run_ferry("cancel", job_id, backend=backend)
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"{job_id}: had already ended: succeeded" in done.stdout
    assert "could not be canceled" in done.stderr


def test_cancel_of_an_unknown_job_is_not_found(backend):
    done = run_ferry("cancel", "job-never-there", backend=backend)
    assert done.returncode == 6, done.stderr
    assert "job_not_found" in done.stderr


def test_a_viewer_cannot_cancel(backend, archive):
    with CancelableImporter(backend) as lab:
        job_id = start_job(backend, lab.name, archive)
        refused = run_ferry("cancel", job_id, backend=backend, token=backend.token("viewer"))
        assert refused.returncode == 5, refused.stderr
        assert _state(backend, job_id) == "running"
        run_ferry("cancel", job_id, backend=backend)


def test_ctrl_c_in_import_with_cancel_on_interrupt_cancels_its_jobs(backend, archive):
    with CancelableImporter(backend) as lab:
        ferry = _import(backend, lab, archive, "--cancel-on-interrupt")
        job_id = _job_id_of(ferry)
        time.sleep(0.5)
        ferry.proc.send_signal(signal.SIGINT)
        assert ferry.finish(60) == 130
    assert f"ferry: canceling {job_id}" in ferry.stderr
    assert ferry.stderr.strip().splitlines()[-1] == "ferry: interrupted"
    assert _state(backend, job_id) == "canceled"


def test_ctrl_c_in_import_without_a_terminal_leaves_the_jobs_running_and_says_how_to_stop_them(backend, archive):
    with CancelableImporter(backend) as lab:
        ferry = _import(backend, lab, archive)
        job_id = _job_id_of(ferry)
        ferry.proc.send_signal(signal.SIGINT)
        assert ferry.finish(60) == 130
        assert f"the import(s) go on: {job_id} on {lab.name}" in ferry.stderr
        assert f"ferry cancel {job_id}" in ferry.stderr and f"ferry watch {job_id}" in ferry.stderr
        assert _running_soon(backend, job_id), "the host goes on reporting: the job is not canceled"
        run_ferry("cancel", job_id, backend=backend)


def test_ctrl_c_in_watch_says_the_jobs_go_on(backend, archive):
    with CancelableImporter(backend) as lab:
        job_id = start_job(backend, lab.name, archive)
        watch = FerryProcess("watch", job_id, "--json", url=backend.url, token=backend.admin_token)
        assert json.loads(watch.next_line())["data"]["job_id"] == job_id
        watch.proc.send_signal(signal.SIGINT)
        assert watch.finish(30) == 130
        assert f"the import(s) go on: {job_id} on {lab.name}" in watch.stderr
        assert _state(backend, job_id) == "running"
        run_ferry("cancel", job_id, backend=backend)
