"""import and watch: upload with a bar, create the jobs, then one live bar per host until every job ended."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

from rich.console import Console

from . import errors
from .api import Backend
from .checks import check_reference
from .console import stdout
from .formatting import describe, human_bytes
from .tracking import JobTrack
from .upload import Upload


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def run_import(
    file: Path,
    *,
    hosts: list[str],
    image: str | None,
    format: str,
    changes: list[str],
    force: bool,
    timeout: float | None,
    url: str,
    token: str | None,
    as_json: bool,
    cancel_on_interrupt: bool | None = None,
) -> None:
    if image is not None:
        check_reference(image)
    elif format == "import":
        raise errors.BadInput("give --image: a filesystem archive has no name of its own", code="invalid_reference")
    hosts = unique(hosts)
    out = stdout()
    with Backend(url, token) as backend:
        known = [h["name"] for h in backend.hosts()]  # before uploading gigabytes: do the hosts exist?
        unknown = [h for h in hosts if h not in known]
        if unknown:
            raise errors.NotFound(
                f"unknown host(s) {', '.join(unknown)}; registered: {', '.join(known) or 'none'}", code="unknown_host"
            )
        upload = _create_upload(file, backend)  # created with its length: the jobs can start on it at once
        try:
            jobs = backend.create_imports(
                upload_id=upload.upload_id, hosts=hosts, image=image, format=format, changes=changes, force=force
            )
        except BaseException:
            upload.close()
            raise

    def announce() -> None:
        if as_json:
            sys.stdout.write(json.dumps({"type": "ferry.jobs", "upload_id": upload.upload_id, "jobs": jobs}) + "\n")
            sys.stdout.flush()
        else:
            for job in jobs:
                out.print(f"{job['host']}: job {job['id']}", highlight=False, markup=False)

    try:
        _follow(
            jobs,
            backend.url,
            backend.token,
            out,
            timeout=timeout,
            as_json=as_json,
            owned=True,
            cancel_on_interrupt=cancel_on_interrupt,
            announce=announce,
            upload=upload,
        )
    finally:
        upload.close()


def run_watch(job_ids: list[str], *, timeout: float | None, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        jobs = [backend.job(job_id) for job_id in unique(job_ids)]  # job_not_found, 401, 403 before any socket
    _follow(jobs, backend.url, backend.token, stdout(), timeout=timeout, as_json=as_json)


def _create_upload(file: Path, backend: Backend) -> Upload:
    upload = Upload(file, backend.url, backend.token)
    upload.create()
    return upload


class UploadSender:
    """Sends an upload's bytes on a thread while its jobs are followed, reporting to the display."""

    def __init__(self, upload: Upload, display, url: str, token: str, jobs: list[dict]) -> None:
        self.upload, self.display, self.url, self.token, self.jobs = upload, display, url, token, jobs
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ferry-upload", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.upload.send(self.display.upload)
            if self.upload.offset >= self.upload.total:
                self.display.uploaded(self.upload.path.name, self.upload.total, self.upload.upload_id)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
            self.display.status(f"upload of {self.upload.path.name} failed: {exc}; canceling its imports")
            self._cancel_jobs()

    def _cancel_jobs(self) -> None:
        """The upload will not complete: its jobs would wait for it until the backend's idle limit."""
        try:
            with Backend(self.url, self.token) as backend:
                for job in self.jobs:
                    try:
                        backend.cancel(job["id"])
                    except errors.CliError:
                        pass  # already ended
        except errors.CliError as exc:
            self.display.status(f"could not cancel the imports: {exc}")

    def finish(self) -> None:
        """After the jobs ended: stop sending (nothing needs the rest) and raise what stopped the upload."""
        self.upload.stop()
        self.thread.join()
        if self.error is not None:
            if isinstance(self.error, errors.CliError):
                raise self.error
            raise errors.Unreachable(f"upload of {self.upload.path.name} failed: {self.error}") from self.error


def _follow(
    jobs: list[dict],
    url: str,
    token: str,
    out: Console,
    *,
    timeout: float | None,
    as_json: bool,
    owned: bool = False,
    cancel_on_interrupt: bool | None = None,
    announce=lambda: None,
    upload: Upload | None = None,
) -> None:
    """Follow until every job ended, sending `upload` meanwhile (the jobs take its bytes as they land). On
    Ctrl-C — from the moment the jobs exist — say what happens to them (and cancel them when asked to)."""
    from .commands_cancel import on_interrupt
    from .display import make_display
    from .live import Follower

    tracks = [JobTrack(job["id"], host=job.get("host")) for job in jobs]
    display = make_display(out, as_json)
    sender = UploadSender(upload, display, url, token, jobs) if upload is not None else None
    try:
        announce()
        display.start(tracks)
        if sender is not None:
            sender.start()
        asyncio.run(Follower(url, token, tracks, display, timeout_s=timeout).run())
    except KeyboardInterrupt:
        if upload is not None:
            upload.stop()
        display.stop()
        on_interrupt(tracks, owned=owned, cancel=cancel_on_interrupt, url=url, token=token, out=out, as_json=as_json)
        if upload is not None and upload.offset < upload.total:
            out.print(
                f"upload of {upload.path.name} stopped at {human_bytes(upload.offset)}; run the same command "
                "again to resume it",
                highlight=False,
                markup=False,
            )
        raise
    finally:
        display.stop()
    upload_error: errors.CliError | None = None
    if sender is not None:
        try:
            sender.finish()
        except errors.CliError as exc:
            upload_error = exc
    try:
        _conclude(tracks, out, quiet=as_json)
    finally:
        if upload_error is not None:  # the upload's own failure explains the jobs' best
            raise upload_error


def _conclude(tracks: list[JobTrack], out: Console, quiet: bool) -> None:
    """A line per job; exit code 1 unless every job succeeded."""
    if not quiet:
        for track in tracks:
            style = {"succeeded": "green", "failed": "red"}.get(str(track.view.get("state")), "yellow")
            out.print(
                f"{track.host} {track.job_id}: {describe(track.view)}", style=style, highlight=False, markup=False
            )
    failed = [t for t in tracks if not t.succeeded]
    if failed:
        codes = sorted({str((t.view.get("error") or {}).get("code") or t.view.get("state")) for t in failed})
        stderr_line = f"{len(failed)} of {len(tracks)} import(s) did not succeed: {', '.join(codes)}"
        raise errors.Failed(stderr_line, code=codes[0] if len(codes) == 1 else "import_failed")
