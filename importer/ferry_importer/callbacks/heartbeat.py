"""Host liveness: a signed `importer.heartbeat` every HEARTBEAT_S seconds.

Heartbeats say "alive now", so they are sent directly and never queued in the outbox: a heartbeat
delivered late would claim liveness that no longer holds. They go to HEARTBEAT_URL when set, else to
the callback URLs of this host's active and recent jobs (the backends that care about it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from ferry_contract import HeartbeatData, ImporterHeartbeat
from ferry_contract.events import ENGINE_VERSION_MAX, LIST_MAX
from ferry_importer import job_store
from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.signing import Signer, new_message_id
from ferry_importer.database import Database
from ferry_importer.datadir import free_bytes
from ferry_importer.engine.client import Engine
from ferry_importer.errors import ImporterError

log = logging.getLogger("ferry_importer.callbacks.heartbeat")

RECENT_S = 3600.0


class HostStatus:
    """Engine facts and free disk, shared by heartbeats and `GET /v1/host`; the engine may be down."""

    def __init__(self, engine: Engine, spool_dir: Path):
        self._engine = engine
        self._spool_dir = spool_dir

    async def facts(self) -> dict:
        version = info = None
        try:
            version = await self._engine.version()
            info = await self._engine.info()
        except ImporterError as exc:
            log.debug("engine facts unavailable: %s", exc)
        root = (info or {}).get("DockerRootDir")
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        return {
            "engine_reachable": info is not None,
            "engine_version": (version or {}).get("Version"),
            "engine_api_version": (version or {}).get("ApiVersion"),
            "storage_driver": (info or {}).get("Driver"),
            "engine_root": root,
            "disk_free_bytes": free_bytes(root) if root else None,
            "spool_free_bytes": free_bytes(self._spool_dir),
        }


class HeartbeatSender:
    def __init__(
        self,
        *,
        host: str,
        interval_s: float,
        url: str | None,
        signer: Signer,
        db: Database,
        status: HostStatus,
        jobs_now: Callable[[], tuple[list[str], list[str]]],
        timeout_s: float,
        on_accepted: Callable[[str], Awaitable[object]] | None = None,
    ):
        self._host = host
        self._interval = interval_s
        self._url = url
        self._signer = signer
        self._db = db
        self._status = status
        self._jobs_now = jobs_now
        self._on_accepted = on_accepted
        self._timeout = min(timeout_s, interval_s)
        self._seq = 0
        self._client = httpx.AsyncClient(follow_redirects=False, headers={"user-agent": "ferry-importer"})

    async def run(self) -> None:
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.beat()
                except Exception:  # liveness reporting must never take the service down
                    log.exception("heartbeat failed")
                await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))
        finally:
            await self._client.aclose()

    async def targets(self) -> list[str]:
        if self._url:
            return [self._url]
        return await self._db.call(job_store.recent_callback_urls, since=time.time() - RECENT_S)

    async def beat(self) -> int:
        """Send one heartbeat to every target; returns how many accepted it."""
        targets = await self.targets()
        if not targets:
            return 0
        running, queued = self._jobs_now()
        # A job whose report is still in the outbox is not over for the receiver: listed as running, so
        # the receiver never reads "no longer listed" as "lost" while its end is on the way.
        reporting = await self._db.call(outbox.reporting_jobs)
        running = running + [job for job in reporting if job not in running and job not in queued]
        facts = await self._status.facts()
        self._seq += 1
        event = ImporterHeartbeat(
            data=HeartbeatData(
                host=self._host,
                seq=self._seq,
                running=running[:LIST_MAX],
                queued=queued[:LIST_MAX],
                disk_free_bytes=facts["disk_free_bytes"],
                spool_free_bytes=facts["spool_free_bytes"],
                engine_version=(facts["engine_version"] or None) and str(facts["engine_version"])[:ENGINE_VERSION_MAX],
            )
        )
        body = event.model_dump_json()
        headers = self._signer.headers(new_message_id(), body)
        results = await asyncio.gather(*(self._post(url, body, headers) for url in targets))
        return sum(results)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> bool:
        try:
            response = await self._client.post(url, content=body.encode(), headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.debug("heartbeat to %s failed: %s", url, exc)
            return False
        if not 200 <= response.status_code < 300:
            log.debug("heartbeat to %s answered HTTP %s", url, response.status_code)
            return False
        if self._on_accepted is not None:
            try:
                await self._on_accepted(url)
            except Exception:
                log.exception("waking the callbacks queued for %s failed", url)
        return True
