"""Several `ferry-backend serve` replicas on one Postgres and one Redis, behind nginx, plus a client that reconnects.

The replicas are the backend's own test launcher (backend.tests.support.Backend); they share the
admin token, the database, Redis and one FERRY_DATA_DIR (uploads must be readable by every replica),
and FERRY_PUBLIC_URL is the proxy: importers pull and call back through nginx like in a deployment.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

from backend.tests.support import Backend
from tests.scale.servers import NginxServer

EVENTS = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")
TERMINAL = ("import.completed", "import.failed", "import.canceled")
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Cluster:
    base: Path
    database_url: str
    redis_url: str
    replicas: int = 2
    env_extra: dict = field(default_factory=dict)
    web_dir: Path | None = None
    backends: list[Backend] = field(default_factory=list)
    nginx: NginxServer | None = None

    def __post_init__(self) -> None:
        self.shared_data = self.base / "shared-data"
        self.admin_token = "fy_admin_" + secrets.token_hex(12)
        self._tokens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.nginx.url

    def launch(self) -> Cluster:
        """Start nginx and the first replica without waiting; `wait_ready` starts the others once it answers.

        The first replica of a fresh database migrates it and stores the bootstrap admin token; replicas
        started at the very same moment on an empty database can collide there (see the deployment notes).
        """
        for index in range(self.replicas):
            backend = Backend(
                self.base / f"replica-{index}",
                admin_token=self.admin_token,
                env_extra={
                    "FERRY_DATA_DIR": str(self.shared_data),
                    "FERRY_DATABASE_URL": self.database_url,
                    "FERRY_REDIS_URL": self.redis_url,
                    **self.env_extra,
                },
            )
            self.backends.append(backend)
        self.nginx = NginxServer(self.base / "nginx", [b.port for b in self.backends], web_dir=self.web_dir)
        for backend in self.backends:
            backend.env_extra["FERRY_PUBLIC_URL"] = self.nginx.url
        self.backends[0].launch()
        self.nginx.start()
        return self

    def wait_ready(self, timeout: float = 180.0) -> Cluster:
        first, *others = self.backends
        if first.proc is None:
            first.launch()
        first.wait_ready(timeout)
        for backend in others:
            if backend.proc is None:
                backend.launch()
        for backend in others:
            backend.wait_ready(timeout)
        self.nginx.wait_healthy()
        return self

    def kill(self, index: int) -> None:
        """SIGKILL one replica: no shutdown code runs."""
        backend = self.backends[index]
        backend.proc.send_signal(signal.SIGKILL)
        backend.proc.wait(10)
        backend.proc = None

    def relaunch_dead(self) -> None:
        """Start again (without waiting) every replica that is not running; `wait_ready` waits for them."""
        for backend in self.backends:
            if backend.proc is not None and backend.proc.poll() is not None:
                backend.proc = None
            if backend.proc is None:
                backend.launch()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for backend in self.backends:
            backend.stop()

    def client(self, token: str | None = None, base_url: str | None = None, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url or self.url,
            timeout=30,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            **kwargs,
        )

    async def token(self, role: str) -> str:
        if role not in self._tokens:
            async with self.client() as http:
                response = await http.post("/api/tokens", json={"role": role, "name": f"scale-{role}"})
            assert response.status_code == 201, response.text
            self._tokens[role] = response.json()["token"]
        return self._tokens[role]

    async def socket_clients(self) -> list[int]:
        """Connected Socket.IO clients per replica, from each replica's own /metrics (None when it is down)."""
        counts = []
        for backend in self.backends:
            try:
                async with self.client(base_url=backend.url) as http:
                    text = (await http.get("/metrics")).text
                match = re.search(r"^ferry_socket_clients (\S+)$", text, re.M)
                counts.append(int(float(match.group(1))) if match else 0)
            except httpx.HTTPError:
                counts.append(None)
        return counts

    async def connect_and_locate(self, token: str, attempts: int = 5) -> tuple[Watcher, int]:
        """A Watcher connected through nginx, and the index of the replica it landed on (from the replicas' gauges)."""
        for _ in range(attempts):
            before = await self.socket_clients()
            watcher = await Watcher(self.url, token).connect()
            added = [n - m for n, m in zip(await self.socket_clients(), before)]
            if sorted(added) == [0] * (len(added) - 1) + [1]:
                return watcher, added.index(1)
            await watcher.close()  # another client came or went meanwhile: the reading is ambiguous
            await asyncio.sleep(0.5)
        raise AssertionError(f"could not tell which replica a new socket landed on (last change per replica: {added})")

    async def upload_file(self, path: Path, token: str, chunk: int = 1 << 20) -> str:
        """A tus upload through the proxy, streamed from disk; returns the upload id."""
        size = path.stat().st_size
        async with self.client(token) as http:
            created = await http.post(
                "/api/uploads/", headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": "filename c2NhbGUudGFy"}
            )
            assert created.status_code == 201, created.text
            location = created.headers["location"]

            async def body():
                with open(path, "rb") as handle:
                    while data := handle.read(chunk):
                        yield data

            done = await http.patch(
                location,
                content=body(),
                headers={
                    **TUS,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(size),
                },
            )
            assert done.status_code == 204, done.text
        return location.rsplit("/", 1)[-1]


class Watcher:
    """A python-socketio client that behaves like the ferry page: websocket only, reconnects by itself,
    and on every (re)connect subscribes again to its jobs with the last seq it saw."""

    def __init__(self, url: str, token: str, reconnection: bool = True):
        self.url = url
        self.token = token
        self.sio = socketio.AsyncClient(
            reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=1, randomization_factor=0.2
        )
        self.events: list[tuple[str, dict, dict]] = []  # (name, data, meta): live and catch-up events
        self.replays: list[tuple[str, dict, dict]] = []
        self.jobs: dict[str, int] = {}  # job id -> last seq seen
        self.connects = 0
        self.disconnects = 0
        self.acks: list[dict] = []
        self._changed = asyncio.Event()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for name in EVENTS:
            self.sio.on(name, self._handler(name))

    def _handler(self, name: str):
        async def handle(data, meta=None):
            meta = meta or {}
            if meta.get("replay"):  # an operator replaying a job's story: old seqs, not part of the stream
                self.replays.append((name, data, meta))
                return
            self.events.append((name, data, meta))
            job = data["job_id"]
            self.jobs[job] = max(self.jobs.get(job, 0), data["seq"])
            self._changed.set()

        return handle

    async def _on_connect(self):
        self.connects += 1
        if self.connects > 1:
            self.sio.start_background_task(self._resubscribe_all)
        self._changed.set()

    async def _on_disconnect(self, *args):
        self.disconnects += 1
        self._changed.set()

    async def _resubscribe_all(self):
        for job_id, seq in list(self.jobs.items()):
            ack = await self.sio.call("subscribe", {"job_id": job_id, "after_seq": seq}, timeout=10)
            self.acks.append(ack)
        self._changed.set()

    async def connect(self) -> Watcher:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)
        return self

    async def subscribe(self, job_id: str, after_seq: int = 0) -> dict:
        self.jobs.setdefault(job_id, after_seq)
        ack = await self.sio.call("subscribe", {"job_id": job_id, "after_seq": after_seq}, timeout=10)
        assert ack.get("ok"), ack
        self.acks.append(ack)
        return ack

    def seqs(self, job_id: str) -> list[int]:
        return [data["seq"] for _, data, _ in self.events if data["job_id"] == job_id]

    def of(self, job_id: str) -> list[tuple[str, dict, dict]]:
        return [event for event in self.events if event[1]["job_id"] == job_id]

    def finished(self, job_id: str) -> bool:
        return any(name in TERMINAL for name, _, _ in self.of(job_id))

    async def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                summary = {job: self.seqs(job) for job in self.jobs}
                raise AssertionError(f"timed out waiting for {what}; seqs seen: {summary}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def close(self) -> None:
        self.sio.reconnection = False
        if self.sio.connected:
            await self.sio.disconnect()


def assert_contiguous(seqs: list[int], start: int = 1) -> None:
    """Every seq from `start` to the last one, once, in order: no gap, no duplicate."""
    assert seqs, "no events"
    assert seqs == list(range(start, seqs[-1] + 1)), f"gap, duplicate or disorder in seqs {seqs}"
