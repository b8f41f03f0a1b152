"""Helpers of the CLI tests: real `ferry-backend serve` processes, the real `ferry` console script, and an
importer's signed callbacks played from a thread."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ferry_contract.events import SNAPSHOT_FIELDS
from tests.support.process import free_port, spawn, tail, terminate, wait_healthy

BIN = Path(sys.executable).parent
FERRY = str(BIN / "ferry")
EVENT_TYPES = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")
SNAPSHOT_KEYS = ("id", "host", "image", "seq", *SNAPSHOT_FIELDS, "result", "error")


PYCACHE = Path(tempfile.gettempdir()) / "ferry-cli-tests-pycache"


def child_env(**extra: str) -> dict:
    """The environment of every process these tests start, without FERRY_* from the caller.

    Bytecode goes to a private cache outside the repository (PYTHONPYCACHEPREFIX), so the dozens of short
    `ferry` runs do not each recompile every module on hosts that set PYTHONDONTWRITEBYTECODE.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Backend:
    """One `ferry-backend serve` subprocess on a free port with its own DATA_DIR and admin token."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: "fy_admin_" + secrets.token_hex(12))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> Backend:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = child_env(
            FERRY_DATA_DIR=str(self.data_dir),
            FERRY_ADMIN_TOKEN=self.admin_token,
            FERRY_PUBLIC_URL=self.url,
            FERRY_LOG_LEVEL="warning",
            FERRY_HOST_STALE_S="3600",
        )
        self.proc = spawn(
            [str(BIN / "ferry-backend"), "serve", "--listen", f"127.0.0.1:{self.port}"],
            env,
            self.data_dir / "backend.log",
        )
        return self

    def wait_ready(self, timeout: float = 120.0) -> Backend:
        wait_healthy(self.proc, self.url, self.data_dir / "backend.log", "backend", timeout)
        return self

    def stop(self) -> None:
        terminate(self.proc)

    def log(self) -> str:
        return tail(self.data_dir / "backend.log", 3000)

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.admin_token}"}, timeout=30
        )

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        with self.http(token) as client:
            return client.get(path)

    def add_host(
        self, name: str, secret: str, url: str = "http://127.0.0.1:9", token: str = "importer-token-0123456789"
    ) -> None:
        with self.http() as client:
            response = client.post(
                "/api/hosts", json={"name": name, "url": url, "token": token, "webhook_secret": secret}
            )
        assert response.status_code == 201, response.text

    def token(self, role: str) -> str:
        with self.http() as client:
            response = client.post("/api/tokens", json={"role": role, "name": unique(f"cli-test-{role}")})
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def snapshot(self, job_id: str) -> dict:
        response = self.get(f"/api/imports/{job_id}")
        assert response.status_code == 200, response.text
        return {k: response.json()[k] for k in SNAPSHOT_KEYS}

    def events(self, job_id: str) -> list[dict]:
        response = self.get(f"/api/imports/{job_id}/events?after_seq=0")
        assert response.status_code == 200, response.text
        return response.json()


def run_ferry(
    *args: str, backend: Backend | None = None, token: str | None = None, env: dict | None = None, timeout: float = 90
) -> subprocess.CompletedProcess:
    """The installed `ferry` console script as a user runs it (FERRY_URL/FERRY_TOKEN from the backend)."""
    full_env = child_env()
    if backend is not None:
        full_env.update(FERRY_URL=backend.url, FERRY_TOKEN=token or backend.admin_token)
    full_env.update(env or {})
    return subprocess.run([FERRY, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def drive(
    backend: Backend,
    host: str,
    secret: str,
    job_id: str,
    *,
    speed: float,
    fail: str | None = None,
    size: int = 30_000_000,
    finalizing_s: float = 2.0,
    part: slice = slice(None),
) -> threading.Thread:
    """Play an importer in a thread: the `part` of a simulated import's callbacks, paced by `speed`."""
    from ferry_cli.signing import Sender
    from ferry_cli.simulate import Step, run_simulation, scenario

    steps = scenario(
        job_id=job_id, host=host, image="lab/watched:1", size=size, seed=4, fail=fail, finalizing_s=finalizing_s
    )[part]
    steps = [Step(s.at - steps[0].at, s.type, s.data) for s in steps]
    failures: list = []

    def run() -> None:
        with Sender(backend.url, secret) as sender:
            report = run_simulation(steps, sender, speed=speed)
        failures.extend(r for r in report.results if not r.accepted)

    thread = threading.Thread(target=run, daemon=True)
    thread.failures = failures
    thread.start()
    return thread
