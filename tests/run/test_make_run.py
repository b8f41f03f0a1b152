"""`make run`'s script, for real: the backend, a local importer registered as host `local`, the admin token, Ctrl-C."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.tests.support import process_env
from tests.support.process import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_make_run_serves_the_page_registers_the_local_host_and_stops_on_ctrl_c(tmp_path, docker_host):
    backend, importer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in process_env().items() if not k.startswith("FERRY_")}
    env.update(
        DOCKER_HOST=docker_host,
        FERRY_RUN_DIR=str(tmp_path / "run"),
        FERRY_RUN_BACKEND=backend,
        FERRY_RUN_IMPORTER=importer,
    )
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "run.py")], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait(lambda: "ferry is running" in log.read_text(errors="replace") or proc.poll() is not None, 120, "make run")
        assert proc.poll() is None, log.read_text()
        token_file = tmp_path / "run" / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token in log.read_text()  # printed for the user
        api = httpx.Client(base_url=f"http://{backend}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert api.get("/api/me").json()["role"] == "admin"
        page = api.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        local = _wait(
            lambda: [h for h in api.get("/api/hosts").json() if h["name"] == "local" and h["alive"]],
            30,
            "host local to be alive",
        )
        assert local[0]["url"] == f"http://{importer}"
        assert httpx.get(f"http://{importer}/healthz", timeout=5).status_code == 200
        # The simulate line make run prints works as it is, with make run's own files.
        line = next(ln for ln in log.read_text().splitlines() if "ferry simulate" in ln).split(":", 1)[1].split()
        simulated = subprocess.run(
            [
                str(Path(sys.executable).with_name("ferry")),
                *line[1:],
                "--speed",
                "max",
                "--job-id",
                "sim-make-run",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert api.get("/api/imports/sim-make-run").json()["state"] == "succeeded"
        api.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
        for address in (backend, importer):
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{address}/healthz", timeout=2)
    finally:
        terminate(proc)


def test_make_run_refuses_a_port_another_program_holds_and_says_which_setting_to_change(tmp_path, docker_host):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = f"127.0.0.1:{holder.getsockname()[1]}"
    env = {k: v for k, v in process_env().items() if not k.startswith("FERRY_")}
    env.update(
        DOCKER_HOST=docker_host,
        FERRY_RUN_DIR=str(tmp_path / "run"),
        FERRY_RUN_BACKEND=taken,
        FERRY_RUN_IMPORTER=f"127.0.0.1:{free_port()}",
    )
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "run.py")], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        holder.close()
    assert done.returncode == 1
    assert f"{taken} is already in use" in done.stderr and "FERRY_RUN_BACKEND=127.0.0.1:" in done.stderr
    assert "ferry is running" not in done.stdout
    assert not (tmp_path / "run").exists(), "nothing was started or written"
