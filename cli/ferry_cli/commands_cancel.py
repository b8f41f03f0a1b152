"""cancel, and what Ctrl-C does to the jobs a command follows: it always says what happens to them.

`ferry cancel JOB…` asks the backend to cancel each job and waits (bounded) until each has ended, so its
answer is the jobs' real end, not only "asked". Ctrl-C while `ferry import` follows its jobs cancels them
with --cancel-on-interrupt, asks on a terminal, and otherwise leaves them running and says how to follow
or stop them; `ferry watch` never owns the jobs it follows, so Ctrl-C only says they go on.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console

from . import errors
from .api import Backend
from .formatting import is_terminal
from .tracking import JobTrack

POLL_S = 0.5


def run_cancel(job_ids: list[str], *, wait_s: float, url: str, token: str | None, out: Console) -> None:
    """Cancel every job; exit 0 only if each one ended canceled (again: a job already canceled is fine);
    one that had ended otherwise is said so and makes the exit code 7."""
    with Backend(url, token) as backend:
        asked = [_ask_cancel(backend, job_id) for job_id in dict.fromkeys(job_ids)]
        ended = _wait_ended(backend, asked, wait_s)
    not_canceled = []
    for job in ended:
        state = job.get("state")
        out.print(f"{job.get('host')} {job['id']}: {_outcome(job)}", highlight=False, markup=False)
        if state != "canceled":
            not_canceled.append(job)
    if not_canceled:
        running = [j["id"] for j in not_canceled if not is_terminal(j)]
        if running:
            raise errors.Failed(
                f"{len(running)} job(s) had not ended after {wait_s:g} s: {', '.join(running)}", code="cancel_pending"
            )
        raise errors.Refused(
            f"{len(not_canceled)} job(s) had already ended and could not be canceled", code="already_ended"
        )


def cancel_tracks(tracks: list[JobTrack], url: str, token: str, out: Console, wait_s: float = 30.0) -> None:
    try:
        run_cancel([t.job_id for t in tracks], wait_s=wait_s, url=url, token=token, out=out)
    except errors.CliError as exc:
        print(exc.line(), file=sys.stderr, flush=True)


def on_interrupt(
    tracks: list[JobTrack], *, owned: bool, cancel: bool | None, url: str, token: str, out: Console, as_json: bool
) -> None:
    """After Ctrl-C: cancel the unfinished jobs (cancel=True), ask (None, on a terminal), or say they go on."""
    open_tracks = [t for t in tracks if not t.terminal]
    if not open_tracks:
        return
    ids = " ".join(t.job_id for t in open_tracks)
    if owned and cancel is None and not as_json and sys.stdin.isatty() and out.is_terminal:
        cancel = _ask(f"Cancel the {len(open_tracks)} unfinished import(s) on the host(s) too? [y/N] ")
    if owned and cancel:
        print(f"ferry: canceling {ids}", file=sys.stderr, flush=True)
        cancel_tracks(open_tracks, url, token, out)
        return
    where = ", ".join(f"{t.job_id} on {t.host or '?'}" for t in open_tracks)
    print(
        f"ferry: the import(s) go on: {where}; follow them with `ferry watch {ids}`, "
        f"stop them with `ferry cancel {ids}`",
        file=sys.stderr,
        flush=True,
    )


def _ask_cancel(backend: Backend, job_id: str) -> dict:
    """The job after asking for its cancel; one that had already ended is returned as it ended."""
    try:
        return backend.cancel(job_id)
    except errors.Refused as exc:
        if exc.code != "job_finished":
            raise
        return {**backend.job(job_id), "_already_ended": True}


def _ask(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return False


def _wait_ended(backend: Backend, jobs: list[dict], wait_s: float) -> list[dict]:
    deadline = time.monotonic() + wait_s
    while True:
        jobs = [job if is_terminal(job) else backend.job(job["id"]) for job in jobs]
        if all(is_terminal(job) for job in jobs) or time.monotonic() >= deadline:
            return jobs
        time.sleep(POLL_S)


def _outcome(job: dict) -> str:
    state = job.get("state")
    if state == "canceled":
        return "already canceled" if job.get("_already_ended") else "canceled"
    if is_terminal(job):
        return f"had already ended: {state}"
    return f"cancel asked, still {state} ({job.get('phase')})"
