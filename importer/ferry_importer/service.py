"""The job manager: accepts jobs once, queues them beyond MAX_CONCURRENT, runs the pipeline, cancels for
real, and after a restart reports what died with the process.

A job is one asyncio task around `run_import`; cancelling that task is the cancel (the pipeline aborts
the engine request and rolls back). Every job gets a spool directory under DATA_DIR/spool/<job_id>
that is removed when the job ends and, after a crash, when the service starts again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time

from ferry_contract import ErrorCode, ImportJobRequest, ImportJobView, JobState, PathSource
from ferry_importer import job_store
from ferry_importer.database import Database
from ferry_importer.engine.client import Engine
from ferry_importer.engine.rollback import undo_left_over
from ferry_importer.errors import ImporterError, Interrupted
from ferry_importer.job_reporter import EventRecorder, OutboxReporter
from ferry_importer.job_spec import ImportSpec, Options
from ferry_importer.logs import current_job
from ferry_importer.pipeline import run_import
from ferry_importer.preflight import check_changes
from ferry_importer.settings import ImporterSettings
from ferry_importer.sources.allowlist import check_callback_url, resolve_path_source
from ferry_importer.sources.base import LocalFileSource
from ferry_importer.sources.url import UrlSource

log = logging.getLogger("ferry_importer.service")

PROBE_TIMEOUT_S = 15.0
CANCEL_WAIT_S = 5.0


class JobConflict(Exception):
    """The job_id exists with a different request: the caller mixed up two jobs (HTTP 409)."""


class JobManager:
    def __init__(self, settings: ImporterSettings, db: Database, recorder: EventRecorder, engine: Engine):
        self.settings = settings
        self._db = db
        self._recorder = recorder
        self._engine = engine
        self._queue: list[str] = []
        self._positions: dict[str, int] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stop_reason: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._closing = False

    # -- what the API asks -------------------------------------------------------------------------

    @property
    def running_ids(self) -> list[str]:
        return list(self._running)

    @property
    def queued_ids(self) -> list[str]:
        return list(self._queue)

    def position(self, job_id: str) -> int | None:
        return self._queue.index(job_id) + 1 if job_id in self._queue else None

    async def active_targets(self) -> dict[str, str | None]:
        """Queued and running jobs with the image name each imports to (None: the archive names it)."""
        targets: dict[str, str | None] = {}
        for job_id in [*self._running, *self._queue]:
            record = await self._db.call(job_store.get, job_id)
            if record is not None:
                targets[job_id] = record.request.image
        return targets

    async def view(self, job_id: str) -> ImportJobView | None:
        record = await self._db.call(job_store.get, job_id)
        return record.view(self.position(job_id)) if record else None

    async def recent(self, *, limit: int, state: JobState | None) -> list[ImportJobView]:
        records = await self._db.call(job_store.recent, limit=limit, state=state)
        return [r.view(self.position(r.job_id)) for r in records]

    async def accept(self, request: ImportJobRequest) -> tuple[ImportJobView, bool]:
        """Accept a job (or return the existing one with that id). Bad sources raise before anything is stored."""
        existing = await self._db.call(job_store.get, request.job_id)
        if existing is not None:
            return self._same_or_conflict(existing, request), False
        await self.check_request(request)
        async with self._lock:
            record, created = await self._db.call(job_store.insert, request, time.time())
            if not created:
                return self._same_or_conflict(record, request), False
            self._queue.append(record.job_id)
            position = len(self._queue)
            self._positions[record.job_id] = position
            await self._reporter(record).queued(position, first=True)
            await self._pump()
        view = await self.view(record.job_id)
        assert view is not None  # inserted above, under the lock
        return view, True

    def _same_or_conflict(self, record: job_store.JobRecord, request: ImportJobRequest) -> ImportJobView:
        if not job_store.same_request(record.request, request):
            raise JobConflict(f"job {request.job_id} already exists with a different request")
        return record.view(self.position(record.job_id))

    async def check_request(self, request: ImportJobRequest) -> None:
        """Everything that can be refused up front: change lines, callback URL, the source (URLs are probed)."""
        check_changes(request.changes)
        if request.callback_url:
            check_callback_url(request.callback_url, self.settings.callback_prefixes)
        source = request.source
        if isinstance(source, PathSource):
            resolve_path_source(source.path, self.settings.allowed_roots)
            return
        probe = self._url_source(source, timeout_s=min(self.settings.source_timeout_s, PROBE_TIMEOUT_S))
        await asyncio.to_thread(probe.probe)

    async def cancel(self, job_id: str) -> ImportJobView | None:
        """Cancel a queued or running job; a finished job is returned as it is."""
        async with self._lock:
            record = await self._db.call(job_store.get, job_id)
            if record is None:
                return None
            if job_id in self._queue:
                self._queue.remove(job_id)
                self._positions.pop(job_id, None)
                await self._reporter(record).canceled(_canceled_on_request())
                await self._announce_positions()
                return await self.view(job_id)
            task = self._running.get(job_id)
            if task is None:
                return record.view()
            self._stop_reason[job_id] = "request"
            task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
        return await self.view(job_id)

    # -- life cycle -------------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a start: fail what was running when the process died, queue again what was waiting."""
        records = await self._db.call(job_store.in_states, job_store.ACTIVE_STATES)
        await self._undo_left_over()
        async with self._lock:
            for record in records:
                if record.state == JobState.RUNNING:
                    error = ImporterError(
                        "the importer restarted while this job was running; the job was stopped and cleaned up",
                        code=ErrorCode.IMPORTER_RESTARTED,
                    )
                    await self._reporter(record).fail(error.info())
                    log.warning("job %s was running when the importer stopped: reported failed", record.job_id)
                else:
                    self._queue.append(record.job_id)
                    self._positions[record.job_id] = len(self._queue)
            self._clean_spool(keep=set())
            await self._announce_positions()
            await self._pump()

    async def _undo_left_over(self) -> None:
        """What a job of the dead process had the engine do (a load that finished after the kill) is undone."""
        try:
            undone = await undo_left_over(self._engine, self.settings.rollback_dir)
        except ImporterError as exc:
            log.warning("could not undo what jobs of the last run left in the engine yet: %s", exc.message)
            return
        for job_id in undone:
            log.warning("job %s was running when the importer stopped: what it left in the engine was undone", job_id)

    async def shutdown(self) -> None:
        """Stop running jobs (reported failed: interrupted); queued jobs stay queued for the next start."""
        async with self._lock:
            self._closing = True
            tasks = list(self._running.items())
            for job_id, task in tasks:
                self._stop_reason[job_id] = "shutdown"
                task.cancel()
        if tasks:
            await asyncio.wait([task for _, task in tasks], timeout=self.settings.stall_timeout_s)

    # -- running ----------------------------------------------------------------------------------

    def _reporter(self, record: job_store.JobRecord) -> OutboxReporter:
        return OutboxReporter(self._recorder, record, self.settings.name)

    async def _pump(self) -> None:
        """Start queued jobs while there is room (call with the lock held)."""
        started = False
        while not self._closing and self._queue and len(self._running) < self.settings.max_concurrent:
            job_id = self._queue.pop(0)
            self._positions.pop(job_id, None)
            record = await self._db.call(job_store.get, job_id)
            if record is None or record.terminal:
                continue
            task = asyncio.create_task(self._run(record), name=f"job-{job_id}")
            task.add_done_callback(functools.partial(self._task_done, record))
            self._running[job_id] = task
            started = True
        if started:
            await self._announce_positions()

    async def _announce_positions(self) -> None:
        for index, job_id in enumerate(self._queue):
            position = index + 1
            if self._positions.get(job_id) != position:
                self._positions[job_id] = position
                record = await self._db.call(job_store.get, job_id)
                if record is not None:
                    await self._reporter(record).queued(position, first=False)

    def _task_done(self, record: job_store.JobRecord, task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never ran `_run`'s handlers: finish the job here."""
        if self._running.get(record.job_id) is task:
            asyncio.get_running_loop().create_task(self._end_unstarted(record.job_id, task))

    async def _end_unstarted(self, job_id: str, task: asyncio.Task[None]) -> None:
        record = await self._db.call(job_store.get, job_id)  # fresh: the stored seq is the truth now
        if record is not None and not record.terminal:
            reporter = self._reporter(record)
            if self._stop_reason.pop(job_id, "request") == "shutdown":
                await reporter.fail(Interrupted("the importer service stopped before the job finished").info())
            else:
                await reporter.canceled(_canceled_on_request())
        shutil.rmtree(self.settings.spool_dir / job_id, ignore_errors=True)
        async with self._lock:
            if self._running.get(job_id) is task:
                del self._running[job_id]
            await self._pump()

    async def _run(self, record: job_store.JobRecord) -> None:
        job_id = record.job_id
        current_job.set(job_id)  # this task's own context: every log line of the job carries its id
        reporter = self._reporter(record)
        spool = self.settings.spool_dir / job_id
        try:
            spool.mkdir(parents=True, exist_ok=True)
            await self._import(record.job_id, record.request, reporter)
        except asyncio.CancelledError:
            reason = self._stop_reason.pop(job_id, "request")
            if reason == "shutdown":
                await reporter.fail(Interrupted("the importer service stopped while the job was running").info())
            else:
                await reporter.canceled(_canceled_on_request())
        except ImporterError as exc:
            await reporter.fail(exc.info())
            log.info("job %s failed: %s", job_id, exc)
        except Exception as exc:  # a bug must still end the job with an event, not leave it running
            log.exception("job %s failed unexpectedly", job_id)
            await reporter.fail(
                ImporterError("the importer failed unexpectedly", f"{type(exc).__name__}: {exc}").info()
            )
        finally:
            shutil.rmtree(spool, ignore_errors=True)
            async with self._lock:
                self._running.pop(job_id, None)
                await self._pump()

    async def _import(self, job_id: str, request: ImportJobRequest, reporter: OutboxReporter) -> None:
        source = request.source
        archive: LocalFileSource | UrlSource
        if isinstance(source, PathSource):
            archive = LocalFileSource(resolve_path_source(source.path, self.settings.allowed_roots))
            expected = None
        else:
            archive = self._url_source(source, timeout_s=self.settings.source_timeout_s)  # probed by the pipeline
            expected = source.sha256
        spec = ImportSpec(
            image=request.image,
            format=request.format,
            changes=list(request.changes),
            force=request.force,
            expected_sha256=expected,
        )
        options = Options(
            data_dir=self.settings.data_dir,
            stall_timeout=self.settings.stall_timeout_s,
            job_id=job_id,
            journal_dir=self.settings.rollback_dir,
        )
        await run_import(spec, archive, engine=self._engine, reporter=reporter, options=options)

    def _url_source(self, source, *, timeout_s: float) -> UrlSource:
        return UrlSource(
            source.url,
            prefixes=self.settings.url_prefixes,
            size=source.size,
            timeout_s=timeout_s,
            max_resumes=self.settings.source_max_resumes,
        )

    def _clean_spool(self, keep: set[str]) -> None:
        root = self.settings.spool_dir
        if not root.is_dir():
            return
        for entry in root.iterdir():
            if entry.name not in keep:
                log.info("removing leftover spool %s", entry)
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _canceled_on_request():
    return Interrupted("canceled on request: the import was aborted and nothing was left behind").info()
