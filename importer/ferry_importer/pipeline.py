"""The import pipeline: one archive → one verified image, with truthful progress and nothing left behind.

`run_import()` is the seam both the CLI and the importer service call. It validates before reading,
takes the fast path when the same archive already produced the image, otherwise streams the archive
once (reader thread → bounded channel → engine), checks the stream at its end before the engine may
commit, verifies the result, and rolls back whatever a failed or cancelled job created.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ferry_contract import ArchiveFormat, ImageInfo, ImageReference, Phase
from ferry_importer.archive.layout import LoadPlan, load_verdict, parse_engine_version
from ferry_importer.archive.reader import ArchiveReader, Channel, Detected, End, Failed
from ferry_importer.cancel_cleanup import finish_cancelled, note_created
from ferry_importer.engine.client import Engine
from ferry_importer.engine.fastpath import FINGERPRINT_LABEL, ImportIndex, entry_for, fingerprint
from ferry_importer.engine.loading import engine_reports_layers, plan_layers
from ferry_importer.engine.rollback import Rollback
from ferry_importer.engine.transfer import (
    Activity,
    LoadOutcome,
    body_stream,
    cancel_and_wait,
    import_rootfs,
    load_archive,
    supervise,
)
from ferry_importer.engine.verify import find_present, verify_import, verify_load
from ferry_importer.errors import EmptyArchive, ImporterError, InvalidChange, InvalidReference, SourceMismatch
from ferry_importer.job_spec import ImportSpec, Options, import_comment
from ferry_importer.load_share import LoadShare
from ferry_importer.load_watch import LoadWatch
from ferry_importer.pace import PaceFile
from ferry_importer.preflight import (
    arrived_sha256,
    check_changes,
    check_disk,
    check_reference,
    check_sha256,
    disk_needed,
    disk_places,
    probe_size,
    read_uncompressed_size,
)
from ferry_importer.progress import ProgressDriver
from ferry_importer.reporting import Reporter
from ferry_importer.sources.arriving import UploadState, watch_arrival
from ferry_importer.sources.base import Source, source_path
from ferry_importer.sources.url import UrlSource

log = logging.getLogger(__name__)


async def run_import(
    spec: ImportSpec,
    source: Source,
    *,
    engine: Engine,
    reporter: Reporter,
    options: Options | None = None,
    on_digest: Callable[[str], None] | None = None,
) -> ImageInfo:
    """Import `source` as `spec` says and return the verified image.

    Emits progress and exactly one terminal event (completed/failed) through `reporter`. On failure it
    raises an ImporterError; on cancellation it undoes the engine's work and re-raises CancelledError
    (the caller reports import.canceled). `on_digest(sha256)` runs when the whole archive has been read
    and before the engine receives its last bytes: raising an ImporterError there aborts the import.
    """
    driver = ProgressDriver(reporter, source.size)
    job = _Job(spec, source, engine, driver, options or Options(), on_digest)
    await driver.tick()  # every job opens with a `preparing` snapshot
    ticker = asyncio.create_task(driver.run())
    try:
        image = await job.execute()
    except ImporterError as exc:
        await cancel_and_wait(ticker)
        await driver.failed(exc.info())
        raise
    except asyncio.CancelledError:
        await cancel_and_wait(ticker)
        raise
    except Exception as exc:
        await cancel_and_wait(ticker)
        error = ImporterError("the importer failed unexpectedly", f"{type(exc).__name__}: {exc}")
        await driver.failed(error.info())
        raise error from exc
    await cancel_and_wait(ticker)
    await driver.completed(image)
    return image


class _Job:
    def __init__(
        self,
        spec: ImportSpec,
        source: Source,
        engine: Engine,
        driver: ProgressDriver,
        options: Options,
        on_digest: Callable[[str], None] | None,
    ) -> None:
        self.spec, self.source, self.engine, self.driver = spec, source, engine, driver
        self.options, self.on_digest = options, on_digest
        journal = options.journal_dir / f"{options.job_id}.json" if options.journal_dir and options.job_id else None
        self.comment = import_comment(options.job_id)
        self.rollback = Rollback(engine, journal, self.comment)
        self.index = ImportIndex(options.data_dir)
        self.pace = PaceFile(options.data_dir)
        self.timeline: dict[str, float] = {}  # when the stream began, its last byte went, the engine answered
        self.identity = getattr(source, "identity", None)
        self.all_sent = False
        self.mode = "import"
        self.end: End | None = None
        self.plan = LoadPlan()
        self.watch: LoadWatch | None = None

    async def execute(self) -> ImageInfo:
        spec = self.spec
        self.target: ImageReference | None = check_reference(spec.image) if spec.image else None
        self.changes = check_changes(spec.changes)
        self.expected = check_sha256(spec.expected_sha256)
        self.format = ArchiveFormat(spec.format)
        if self.format is ArchiveFormat.IMPORT and self.target is None:
            raise InvalidReference("an image name is needed to import a filesystem archive")
        if self.format is ArchiveFormat.LOAD and self.changes:
            raise InvalidChange("change lines apply to filesystem imports only; a loaded archive is used as it is")
        if await probe_size(self.source):
            self.driver.total = self.source.size
        if self.source.size == 0:
            raise EmptyArchive("the archive file is empty")
        version = await self.engine.version()
        self.engine_version = parse_engine_version(str(version.get("Version", "")))
        self.known_sha = self.expected or self.index.known_sha256(self.identity)
        if not spec.force:
            present = await find_present(
                self.engine,
                self.index,
                self.target,
                self.known_sha,
                self.source.size,
                self.format,
                self.changes,
                source_path(self.source),
            )
            if present is not None:
                return present
        self.uncompressed = await asyncio.to_thread(read_uncompressed_size, self.source)
        await self._check_disk(loads=self.format is ArchiveFormat.LOAD)
        channel = Channel(asyncio.get_running_loop(), self.options.queue_chunks)
        reader = ArchiveReader(
            self.source, channel, chunk_size=self.options.chunk_size, decode_threads=self.options.decode_threads
        )
        reader.start()
        try:
            return await self._stream(channel)
        finally:
            if self.watch is not None:
                await self.watch.close()
            reader.stop()
            if not await reader.join():
                log.warning("the archive reader thread did not stop in time")

    async def _stream(self, channel: Channel) -> ImageInfo:
        first = await channel.get()
        if isinstance(first, Failed):
            raise first.error
        assert isinstance(first, Detected)
        loads = self.format is ArchiveFormat.LOAD or (self.format is ArchiveFormat.AUTO and first.layout.loads)
        self.mode = "load" if loads else "import"
        if not loads and self.target is None:
            raise InvalidReference(
                "give an image name: this is a filesystem (rootfs) archive, which has no name of its own"
            )
        if loads and self.changes:
            raise InvalidChange("change lines apply to filesystem imports only; this archive is loaded as it is")
        if loads and self.format is ArchiveFormat.AUTO:
            await self._check_disk(loads=True)
        if self.target is not None:
            await self.rollback.remember_tag(str(self.target))
        if loads and engine_reports_layers(await self.engine.info()):
            self.watch = LoadWatch(self.engine, self.pace, first.compression.value)
            share = await self.watch.start(self.uncompressed, first.layer_files)
            self.driver.expect_load(share, self.watch.present_bytes)
        elif loads:
            self.driver.expect_load(LoadShare(0.0))
        self.timeline["stream"] = time.monotonic()
        await self.driver.set_phase(Phase.IMPORTING)
        activity = Activity()
        body = body_stream(channel, activity, self.driver.advance, self._at_end, self._all_sent)
        request: Coroutine[Any, Any, str | LoadOutcome]
        if loads:
            request = load_archive(self.engine, body, activity, self.driver)
        else:
            self.rollback.importing()
            request = import_rootfs(self.engine, body, self._import_changes(), activity, self.comment)
        task = asyncio.create_task(request)
        watcher = self._watch_arrival()
        try:
            outcome = await supervise(task, activity, self.options.stall_timeout)
            self.timeline["answered"] = time.monotonic()
            self.driver.load_finished()
            await self.driver.set_phase(Phase.VERIFYING)
            image = await self._verify(outcome)
            self.rollback.forget()
            self._learn_pace()
            return image
        except asyncio.CancelledError:
            await finish_cancelled(
                task, self.rollback, self.plan, all_sent=self.all_sent, timeout=self.options.cleanup_timeout
            )
            raise
        except BaseException:
            if not task.done():
                await cancel_and_wait(task)
            note_created(task, self.rollback, self.plan)
            await self.rollback.undo()
            raise
        finally:
            if watcher is not None:
                await cancel_and_wait(watcher)

    def _watch_arrival(self) -> asyncio.Task | None:
        """An upload still arriving: say when the import waits for it (phase `waiting_for_upload`)."""
        source = self.source
        if not isinstance(source, UrlSource) or not source.arriving:
            return None
        return asyncio.create_task(
            watch_arrival(lambda: source.read_offset, source.upload_state, self._arrival),
            name="watch-arrival",
        )

    async def _arrival(self, state: UploadState, waiting: bool) -> None:
        if not self.all_sent:
            await self.driver.upload_arrival(state.available, waiting)

    def _import_changes(self) -> list[str]:
        if not self.known_sha:
            return self.changes
        mark = fingerprint(self.known_sha, "import", self.changes)
        return [*self.changes, f"LABEL {FINGERPRINT_LABEL}={mark}"]

    async def _check_disk(self, loads: bool) -> None:
        """Known up front only from the file's own metadata (xz index, gzip trailer, zstd header)."""
        if not self.uncompressed:
            return
        info = await self.engine.info()
        places = disk_places(info.get("DockerRootDir"), self.engine.host, self.options.spooled_to)
        check_disk(disk_needed(self.uncompressed, loads), places, self.options.disk_probe)

    async def _at_end(self, end: End) -> None:
        """The whole archive has been read; the engine still lacks its last bytes. Accept or refuse now."""
        if self.expected and end.sha256 != self.expected:
            raise SourceMismatch("the archive's sha256 does not match the expected one", f"got {end.sha256}")
        arrived = None if self.expected else await arrived_sha256(self.source)
        if arrived is not None and end.sha256 != arrived:
            raise SourceMismatch(
                "the bytes streamed do not match the upload's sha256", f"streamed {end.sha256}, upload {arrived}"
            )
        if self.on_digest is not None:
            self.on_digest(end.sha256)
        self.end = end
        if self.mode == "load":
            walker = end.walker
            self.plan = load_verdict(walker.names, walker.captured, self.engine_version)
            if self.target is not None and len(self.plan.images) > 1:
                raise InvalidReference(
                    f"the archive holds {len(self.plan.images)} images; an image name can only "
                    "be given for a single-image archive"
                )
            if self.driver.layers is not None:
                plan = plan_layers(self.plan.images, walker.layer_sizes, walker.captured)
                if self.watch is not None:
                    plan = await self.watch.mark(plan)
                self.driver.layers.set_plan(plan, self.plan.images)
            for tag in self.plan.repo_tags:
                await self.rollback.remember_tag(tag)
            for image in self.plan.images:
                if image.image_id:
                    await self.rollback.remember_id(image.image_id)

    async def _all_sent(self) -> None:
        self.all_sent = True
        self.timeline["sent"] = time.monotonic()
        await self.driver.set_phase(Phase.FINALIZING)

    def _learn_pace(self) -> None:
        """After a load, keep how fast this host streamed and loaded."""
        layers, times, end = self.driver.layers, self.timeline, self.end
        if self.watch is None or layers is None or end is None or {"stream", "sent", "answered"} - set(times):
            return
        stream_s, load_s = times["sent"] - times["stream"], times["answered"] - times["sent"]
        self.watch.learn(layers, end.walker.content_bytes, stream_s, load_s)

    async def _verify(self, outcome: str | LoadOutcome) -> ImageInfo:
        assert self.end is not None
        if isinstance(outcome, str):
            self.rollback.created(outcome)
            image = await verify_import(self.engine, outcome, self.target, self.end.walker.content_bytes)
        else:
            for image_id in outcome.image_ids + [i.image_id for i in self.plan.images if i.image_id]:
                self.rollback.created(image_id)
            image = await verify_load(self.engine, outcome, self.plan, self.target, self.end.walker.content_bytes)
        tags = ([str(self.target)] if self.target else []) + self.plan.repo_tags
        entry = entry_for(self.end.sha256, self.source.size, self.mode, self.changes, image.id, tags)
        try:
            self.index.record(entry, self.identity)
        except OSError as exc:
            log.warning("could not update the fast-path index in %s: %s", self.index.data_dir, exc)
        return image
