"""Test helpers: a real backend process, signed callbacks as an importer sends them, a tiny importer stand-in."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import socketio
from standardwebhooks import Webhook

from tests.support.process import free_port, spawn, tail, terminate, wait_healthy

BIN = Path(sys.executable).parent
PYCACHE = Path(__file__).resolve().parents[2] / ".run" / "pycache"


def process_env(base: dict | None = None) -> dict:
    """The environment of a service process under test, keeping its compiled bytecode between starts.

    With PYTHONDONTWRITEBYTECODE set (as on these machines), every start of `ferry-backend` or
    `ferry-importer` compiled ~1400 modules again: 8 s instead of 2.5 s. The bytecode goes to
    .run/pycache (PYTHONPYCACHEPREFIX), outside the source tree and the virtualenv.
    """
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    return env


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Backend:
    """`ferry-backend serve` as a subprocess on a free port with its own DATA_DIR."""

    data_dir: Path
    env_extra: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: "fy_admin_" + secrets.token_hex(8))
    proc: subprocess.Popen | None = None
    _tokens: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict:
        env = process_env()
        env.update(
            {
                "FERRY_DATA_DIR": str(self.data_dir),
                "FERRY_ADMIN_TOKEN": self.admin_token,
                "FERRY_PUBLIC_URL": self.url,
                "FERRY_LOG_LEVEL": "warning",
            }
        )
        env.update(self.env_extra)
        return env

    def start(self, timeout: float = 90.0) -> Backend:
        return self.launch().wait_ready(timeout)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "backend.log"

    def launch(self) -> Backend:
        """Start the process without waiting (several backends then start side by side)."""
        self.proc = spawn(
            [str(BIN / "ferry-backend"), "serve", "--listen", f"127.0.0.1:{self.port}"], self.env, self.log_path
        )
        return self

    def wait_ready(self, timeout: float = 90.0) -> Backend:
        wait_healthy(self.proc, self.url, self.log_path, "backend", timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        terminate(self.proc, sig)
        self.proc = None

    def log(self) -> str:
        return tail(self.log_path)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "ferry-backend"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def token(self, role: str) -> str:
        """A token of that role (made once per backend through the admin API; the CLI has its own tests)."""
        if role not in self._tokens:
            response = httpx.post(
                self.url + "/api/tokens",
                json={"role": role, "name": f"test-{role}"},
                headers={"Authorization": f"Bearer {self.admin_token}"},
                timeout=30,
            )
            assert response.status_code == 201, response.text
            self._tokens[role] = response.json()["token"]
        return self._tokens[role]

    def client(self, token: str | None = None, **kwargs) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    async def add_host(
        self, name: str, url: str = "http://127.0.0.1:9", token: str = "importer-token", secret: str | None = None
    ) -> Importer:
        secret = secret or new_secret()
        async with self.client() as http:
            response = await http.post(
                "/api/hosts", json={"name": name, "url": url, "token": token, "webhook_secret": secret}
            )
            assert response.status_code == 201, response.text
        return Importer(self, name, secret)


def event_data(
    job_id: str,
    host: str,
    seq: int,
    state: str = "running",
    phase: str = "importing",
    percent: float | None = None,
    **extra,
) -> dict:
    data = {
        "job_id": job_id,
        "host": host,
        "seq": seq,
        "state": state,
        "phase": phase,
        "percent": percent if percent is not None else min(100.0, float(seq)),
        "bytes_done": seq * 1000,
        "bytes_total": 100_000,
        "rate_bps": 1000.0,
        "eta_s": 1.0,
    }
    data.update(extra)
    return data


def callback_body(event_type: str, data: dict) -> bytes:
    return json.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}).encode()


@dataclass
class Importer:
    """Plays a registered importer: sends callbacks signed with its secret, exactly as the real one signs them."""

    backend: Backend
    name: str
    secret: str

    def sign(
        self, body: bytes, msg_id: str | None = None, when: datetime | None = None, secret: str | None = None
    ) -> dict:
        msg_id = msg_id or "msg_" + uuid.uuid4().hex
        when = when or datetime.now(UTC)
        signature = Webhook(secret or self.secret).sign(msg_id, when, body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }

    async def post(self, body: bytes, headers: dict, host: str | None = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.backend.url, timeout=30) as http:
            return await http.post(f"/api/callbacks/{host or self.name}", content=body, headers=headers)

    async def send(self, event_type: str, data: dict, msg_id: str | None = None) -> httpx.Response:
        body = callback_body(event_type, data)
        return await self.post(body, self.sign(body, msg_id))

    async def progress_run(self, job_id: str, last_seq: int, final: str = "import.completed") -> None:
        """seq 1 queued, 2..last-1 progress, last completed."""
        await self.send("import.queued", event_data(job_id, self.name, 1, state="queued", phase="queued", percent=0.0))
        for seq in range(2, last_seq):
            await self.send("import.progress", event_data(job_id, self.name, seq))
        await self.send(final, completed_data(job_id, self.name, last_seq))


def completed_data(job_id: str, host: str, seq: int) -> dict:
    return event_data(
        job_id,
        host,
        seq,
        state="succeeded",
        phase="done",
        percent=100.0,
        eta_s=0.0,
        image={"ref": "lab/test:1", "id": "sha256:" + "a" * 64, "size": 1234, "tags": ["lab/test:1"]},
    )


class SocketWatcher:
    """A real python-socketio AsyncClient that records every import.* event in arrival order."""

    EVENTS = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")

    def __init__(self, backend: Backend, token: str | None = None):
        self.backend = backend
        self.token = token or backend.admin_token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, dict, dict]] = []
        self.notices: list[tuple[dict, dict]] = []  # `job.snapshot`: the backend's own word (doubt, presumption)
        self.order: list[str] = []  # "ack" and event names, in the order they arrived
        self._changed = asyncio.Event()
        for name in self.EVENTS:
            self.sio.on(name, self._handler(name))

        async def notice(data, meta):
            self.notices.append((data, meta))
            self.order.append("job.snapshot")
            self._changed.set()

        self.sio.on("job.snapshot", notice)

    def _handler(self, name):
        async def handle(data, meta):
            self.received.append((name, data, meta))
            self.order.append(name)
            self._changed.set()

        return handle

    async def connect(self) -> SocketWatcher:
        await self.sio.connect(self.backend.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)
        return self

    async def subscribe(self, job_id: str, after_seq: int = 0) -> dict:
        """Subscribe; "ack" enters `order` at the moment the ack packet is processed (packets are handled in wire order)."""
        answer: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_ack(ack):
            self.order.append("ack")
            answer.set_result(ack)

        await self.sio.emit("subscribe", {"job_id": job_id, "after_seq": after_seq}, callback=on_ack)
        return await asyncio.wait_for(answer, 10)

    def seqs(self, job_id: str | None = None) -> list[int]:
        return [d["seq"] for _, d, _ in self.received if job_id is None or d["job_id"] == job_id]

    async def wait_for(self, predicate, timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; received seqs {self.seqs()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class FakeImporter:
    """A real HTTP server playing an importer's job API (`/v1/imports`, `/v1/images`) for dispatch tests.

    It records what the backend sent; `on_submit` decides the answer. The end-to-end tests with the
    real importer service live in the cross-service suite.
    """

    def __init__(self, token: str = "importer-token"):
        from aiohttp import web

        self.web = web
        self.token = token
        self.port = free_port()
        self.submitted: list[dict] = []
        self.canceled: list[str] = []
        self.submit_status = 202
        self.submit_body: dict | None = None
        self.cancel_status = 202
        self.images: list[dict] = []
        self.removed: list[str] = []
        self.remove_answer: tuple[int, dict] | None = None  # (status, body) instead of removing from `images`
        self.unauthorized = 0
        self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _authorized(self, request) -> bool:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.unauthorized += 1
            return False
        return True

    async def _submit(self, request):
        if not self._authorized(request):
            return self.web.json_response({"error": {"code": "unauthorized", "message": "bad token"}}, status=401)
        body = await request.json()
        self.submitted.append(body)
        answer = self.submit_body or {"job_id": body["job_id"], "state": "queued"}
        return self.web.json_response(answer, status=self.submit_status)

    async def _cancel(self, request):
        if not self._authorized(request):
            return self.web.json_response({}, status=401)
        self.canceled.append(request.match_info["job_id"])
        return self.web.json_response({"job_id": request.match_info["job_id"]}, status=self.cancel_status)

    async def _images(self, request):
        if not self._authorized(request):
            return self.web.json_response({}, status=401)
        return self.web.json_response({"images": self.images})

    async def _remove_image(self, request):
        if not self._authorized(request):
            return self.web.json_response({}, status=401)
        image_id = request.match_info["image_id"]
        if self.remove_answer is not None:
            return self.web.json_response(self.remove_answer[1], status=self.remove_answer[0])
        found = [i for i in self.images if i["id"] == image_id]
        if not found:
            return self.web.json_response(
                {"error": {"code": "image_not_found", "message": "no such image"}}, status=404
            )
        self.images.remove(found[0])
        self.removed.append(image_id)
        return self.web.json_response({"id": image_id, "removed": [*found[0]["tags"], image_id]})

    async def start(self) -> FakeImporter:
        app = self.web.Application()
        app.router.add_delete("/v1/images/{image_id}", self._remove_image)
        app.router.add_post("/v1/imports", self._submit)
        app.router.add_delete("/v1/imports/{job_id}", self._cancel)
        app.router.add_get("/v1/images", self._images)
        self._runner = self.web.AppRunner(app)
        await self._runner.setup()
        await self.web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


# --- helpers of the import and restart tests ---

TUS = {"Tus-Resumable": "1.0.0"}


async def upload(backend, data: bytes, filename: str | None = None) -> str:
    headers = {**TUS, "Upload-Length": str(len(data))}
    if filename is not None:
        headers["Upload-Metadata"] = "filename " + base64.b64encode(filename.encode()).decode()
    async with backend.client(backend.token("operator")) as http:
        location = (await http.post("/api/uploads/", headers=headers)).headers["location"]
        done = await http.patch(
            location,
            content=data,
            headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert done.status_code == 204
    return location.rsplit("/", 1)[-1]


async def register(backend, fake: FakeImporter, prefix: str = "lab") -> Importer:
    return await backend.add_host(
        f"{prefix}-{uuid.uuid4().hex[:8]}", url=fake.url, token=fake.token, secret=new_secret()
    )


async def wait_until(predicate, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def job_state(backend, job_id: str) -> dict:
    async with backend.client() as http:
        return (await http.get(f"/api/imports/{job_id}")).json()
