"""Helpers of the CLI tests: real `ferry-backend serve` processes, the real `ferry` console script, a
python-socketio client that records what a browser would see, and a TCP proxy whose connections can be cut."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

BIN = Path(sys.executable).parent
FERRY = str(BIN / "ferry")
EVENT_TYPES = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")
SNAPSHOT_KEYS = ("id", "host", "image", "state", "phase", "seq", "percent", "bytes_done", "bytes_total", "rate_bps",
                 "eta_s", "phase_elapsed_s", "queue_position", "result", "error")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def launch(self) -> "Backend":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = child_env(FERRY_DATA_DIR=str(self.data_dir), FERRY_ADMIN_TOKEN=self.admin_token,
                        FERRY_PUBLIC_URL=self.url, FERRY_LOG_LEVEL="warning", FERRY_HOST_STALE_S="3600")
        log = open(self.data_dir / "backend.log", "ab")
        self.proc = subprocess.Popen([str(BIN / "ferry-backend"), "serve", "--listen", f"127.0.0.1:{self.port}"],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_ready(self, timeout: float = 120.0) -> "Backend":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"backend exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"backend did not start within {timeout:.0f} s: {self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        path = self.data_dir / "backend.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.admin_token}"},
                            timeout=30)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        with self.http(token) as client:
            return client.get(path)

    def add_host(self, name: str, secret: str, url: str = "http://127.0.0.1:9", token: str = "importer-token-0123456789") -> None:
        with self.http() as client:
            response = client.post("/api/hosts", json={"name": name, "url": url, "token": token, "webhook_secret": secret})
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


def run_ferry(*args: str, backend: Backend | None = None, token: str | None = None, env: dict | None = None,
              timeout: float = 90) -> subprocess.CompletedProcess:
    """The installed `ferry` console script as a user runs it (FERRY_URL/FERRY_TOKEN from the backend)."""
    full_env = child_env()
    if backend is not None:
        full_env.update(FERRY_URL=backend.url, FERRY_TOKEN=token or backend.admin_token)
    full_env.update(env or {})
    return subprocess.run([FERRY, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


class SocketRecorder:
    """A real python-socketio client in the `jobs` room (or one job's room) recording (type, data, meta)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, dict, dict]] = []
        for name in EVENT_TYPES:
            self.sio.on(name, self._handler(name))

    def _handler(self, name: str):
        async def handle(data, meta=None):
            self.received.append((name, data, meta))

        return handle

    async def connect(self) -> "SocketRecorder":
        await self.sio.connect(self.backend.url, auth={"token": self.backend.admin_token}, transports=["websocket"],
                               wait_timeout=10)
        return self

    async def subscribe_all(self) -> dict:
        return await self.sio.call("subscribe_all", {}, timeout=10)

    async def subscribe(self, job_id: str, after_seq: int = 0) -> dict:
        return await self.sio.call("subscribe", {"job_id": job_id, "after_seq": after_seq}, timeout=10)

    def of(self, job_id: str) -> list[tuple[str, dict]]:
        return [(name, data) for name, data, _ in self.received if data.get("job_id") == job_id]

    async def wait_terminal(self, job_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(name in EVENT_TYPES[2:] for name, _ in self.of(job_id)):
            assert time.monotonic() < deadline, f"no terminal event for {job_id}; got {len(self.of(job_id))} events"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class CuttableProxy:
    """A TCP proxy in a thread. `cut(for_s)` drops every open connection and refuses new ones for a while:
    a real network failure between the CLI and the backend, with the backend itself untouched."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._closed_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "CuttableProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader, writer) -> None:
        if time.monotonic() < self._closed_until:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut(self, for_s: float) -> None:
        def cut_now() -> None:
            self._closed_until = time.monotonic() + for_s
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(cut_now)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)



def drive(backend: Backend, host: str, secret: str, job_id: str, *, speed: float, fail: str | None = None,
          size: int = 30_000_000, finalizing_s: float = 2.0, part: slice = slice(None)) -> threading.Thread:
    """Play an importer in a thread: the `part` of a simulated import's callbacks, paced by `speed`."""
    from ferry_cli.simulate import Step, run_simulation, scenario
    from ferry_cli.signing import Sender

    steps = scenario(job_id=job_id, host=host, image="lab/watched:1", size=size, seed=4, fail=fail,
                     finalizing_s=finalizing_s)[part]
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


class FerryProcess:
    """`ferry` running in the background; its stdout lines arrive in a queue as they are printed."""

    def __init__(self, *args: str, url: str, token: str):
        env = child_env(FERRY_URL=url, FERRY_TOKEN=token)
        self.proc = subprocess.Popen([FERRY, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float = 30) -> str | None:
        return self.lines.get(timeout=timeout)

    def finish(self, timeout: float = 60) -> int:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr = self.proc.stderr.read()
        return self.proc.returncode
