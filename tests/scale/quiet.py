"""The idle-minute probe: a client connected through nginx to the quiet cluster, fed by signed callbacks.

With FERRY_REDIS_URL set, a replica sends even its own sockets only what arrives on its Redis
subscription, so one replica is enough to show whether that listener survived. The probe lives in
its own thread and event loop so its Socket.IO connection outlasts the tests that run meanwhile
(each test has its own loop).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from backend.tests.support import Importer, completed_data, event_data, new_secret
from tests.scale.cluster import Cluster, Watcher


class QuietProbe:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="quiet-probe", daemon=True)
        self.thread.start()
        self.watcher: Watcher | None = None
        self.importer: Importer | None = None
        self.job_id = "job_quiet_" + uuid.uuid4().hex[:8]
        self.idle_since: float | None = None
        self.warmed = asyncio.run_coroutine_threadsafe(self._warm_up(), self.loop)

    def run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _warm_up(self) -> None:
        """Prove the path once (callback in, event out over Redis and nginx), then go quiet."""
        cluster = self.cluster
        await asyncio.to_thread(cluster.wait_ready)
        host = "quiet-" + uuid.uuid4().hex[:6]
        secret = new_secret()
        async with cluster.client() as http:
            response = await http.post(
                "/api/hosts",
                json={
                    "name": host,
                    "url": "http://127.0.0.1:9",
                    "token": "importer-token-quiet",
                    "webhook_secret": secret,
                },
            )
            assert response.status_code == 201, response.text
        self.watcher = await Watcher(cluster.url, cluster.admin_token, reconnection=False).connect()
        self.importer = Importer(cluster.backends[-1], host, secret)
        first = await self.importer.send(
            "import.queued", event_data(self.job_id, host, 1, state="queued", phase="queued", percent=0.0)
        )
        assert first.status_code == 200, first.text
        await self.watcher.subscribe(self.job_id)
        await self.importer.send("import.progress", event_data(self.job_id, host, 2))
        await self.watcher.wait_for(lambda: self.watcher.seqs(self.job_id)[-1:] == [2], 15, "the warm-up event")
        self.idle_since = time.monotonic()

    async def finish(self, idle_s: float) -> dict:
        """Wait out the rest of the idle time, then send one callback and time its arrival at the client."""
        remaining = self.idle_since + idle_s - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        idle = time.monotonic() - self.idle_since
        subscribers = [
            c
            for c in await asyncio.to_thread(self.cluster.redis.client_list)
            if int(c.get("sub", 0)) or int(c.get("psub", 0))
        ]
        sent = time.monotonic()
        response = await self.importer.send("import.completed", completed_data(self.job_id, self.importer.name, 3))
        assert response.status_code == 200, response.text
        await self.watcher.wait_for(
            lambda: self.watcher.seqs(self.job_id)[-1:] == [3], 10, "the event after the idle minute"
        )
        return {
            "idle_s": idle,
            "latency_s": time.monotonic() - sent,
            "subscribers": subscribers,
            "connects": self.watcher.connects,
            "disconnects": self.watcher.disconnects,
            "seqs": self.watcher.seqs(self.job_id),
        }

    def close(self) -> None:
        async def _close():
            if self.watcher is not None:
                await self.watcher.close()

        try:
            self.run(_close(), 15)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
