"""import and watch: upload with a bar, create the jobs, then one live bar per host until every job ended."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text

from . import errors
from .api import Backend
from .checks import check_reference
from .console import stdout
from .formatting import describe, human_bytes, human_rate
from .tracking import JobTrack

UPLOAD_LINE_EVERY_S = 2.0


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
        upload_id = _upload(file, backend, out, quiet=as_json)
        jobs = backend.create_imports(
            upload_id=upload_id, hosts=hosts, image=image, format=format, changes=changes, force=force
        )

    def announce() -> None:
        if as_json:
            sys.stdout.write(json.dumps({"type": "ferry.jobs", "upload_id": upload_id, "jobs": jobs}) + "\n")
            sys.stdout.flush()
        else:
            for job in jobs:
                out.print(f"{job['host']}: job {job['id']}", highlight=False, markup=False)

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
    )


def run_watch(job_ids: list[str], *, timeout: float | None, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        jobs = [backend.job(job_id) for job_id in unique(job_ids)]  # job_not_found, 401, 403 before any socket
    _follow(jobs, backend.url, backend.token, stdout(), timeout=timeout, as_json=as_json)


def _upload(file: Path, backend: Backend, out: Console, quiet: bool) -> str:
    try:
        return _upload_with_progress(file, backend, out, quiet)
    except KeyboardInterrupt:
        raise errors.Interrupted(
            f"upload of {file.name} interrupted; run the same command again to resume it"
        ) from None


def _upload_with_progress(file: Path, backend: Backend, out: Console, quiet: bool) -> str:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .upload import upload_file

    size = file.stat().st_size
    if quiet:
        return upload_file(file, backend.url, backend.token)
    if out.is_terminal:
        progress = Progress(
            TextColumn("[bold]upload"),
            BarColumn(bar_width=30),
            _BinaryColumn(lambda task: f"{human_bytes(task.completed)}/{human_bytes(task.total)}"),
            _BinaryColumn(lambda task: human_rate(task.speed) or "?"),
            TimeRemainingColumn(),
            console=out,
        )
        task = progress.add_task("upload", total=size)

        def on_progress(offset: int, total: int, resumed: bool) -> None:
            if resumed and not progress.tasks[task].completed:
                what = "reusing the complete" if offset == total else f"resuming at {human_bytes(offset)} the"
                progress.console.print(f"{what} earlier upload of {file.name}", markup=False)
            progress.update(task, completed=offset)

        with progress:
            upload_id = upload_file(file, backend.url, backend.token, on_progress=on_progress)
    else:
        last = [0.0]

        def on_progress(offset: int, total: int, resumed: bool) -> None:
            now = time.monotonic()
            if offset in (0, total) or resumed and last[0] == 0.0 or now - last[0] >= UPLOAD_LINE_EVERY_S:
                last[0] = now
                note = (" (already uploaded)" if offset == total else " (resumed)") if resumed else ""
                out.print(
                    f"upload {100.0 * offset / total:5.1f}% {human_bytes(offset)} / {human_bytes(total)}{note}",
                    highlight=False,
                    markup=False,
                )

        upload_id = upload_file(file, backend.url, backend.token, on_progress=on_progress)
    out.print(f"uploaded {file.name} ({human_bytes(size)}) as {upload_id}", highlight=False, markup=False)
    return upload_id


class _BinaryColumn(ProgressColumn):
    """Sizes and rates in binary units, as the page and every other ferry line write them."""

    def __init__(self, render: Callable[[Task], str]) -> None:
        super().__init__()
        self._render = render

    def render(self, task: Task) -> Text:
        return Text(self._render(task))


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
) -> None:
    """Follow until every job ended. On Ctrl-C — from the moment the jobs exist — say what happens to them
    (and cancel them when asked to)."""
    from .commands_cancel import on_interrupt
    from .display import make_display
    from .live import Follower

    tracks = [JobTrack(job["id"], host=job.get("host")) for job in jobs]
    display = make_display(out, as_json)
    try:
        announce()
        display.start(tracks)
        asyncio.run(Follower(url, token, tracks, display, timeout_s=timeout).run())
    except KeyboardInterrupt:
        display.stop()
        on_interrupt(tracks, owned=owned, cancel=cancel_on_interrupt, url=url, token=token, out=out, as_json=as_json)
        raise
    finally:
        display.stop()
    _conclude(tracks, out, quiet=as_json)


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
