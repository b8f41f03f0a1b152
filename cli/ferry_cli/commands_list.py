"""jobs, hosts, images and events: read the backend, print a table or the JSON as the API gave it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import capture, errors
from .api import Backend
from .console import stderr, stdout
from .tables import events_table, hosts_table, images_table, jobs_table


def _print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def run_jobs(*, state: str | None, host: str | None, limit: int, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        jobs = backend.jobs(state=state, host=host, limit=limit)
    _print_json(jobs) if as_json else stdout().print(jobs_table(jobs))


def run_hosts(*, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        hosts = backend.hosts()
    _print_json(hosts) if as_json else stdout().print(hosts_table(hosts))


def run_images(*, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        catalog = backend.images()
    _print_json(catalog) if as_json else stdout().print(images_table(catalog))


def fetch_records(backend: Backend, job_id: str) -> list[dict]:
    """The job's deliveries as capture records, in arrival order."""
    return [capture.from_delivery(d) for d in backend.deliveries(job_id)]


def run_events(job_id: str, *, export: Path | None, url: str, token: str | None, as_json: bool) -> None:
    with Backend(url, token) as backend:
        records = fetch_records(backend, job_id)
    if export is not None:
        _export(records, export, job_id)
        return
    delays = capture.delays(records)
    if as_json:
        _print_json([dict(r, delay_s=d) for r, d in zip(records, delays)])
    else:
        stdout().print(events_table(job_id, records, delays))


def _export(records: list[dict], path: Path, job_id: str) -> None:
    if str(path) == "-":
        capture.write_jsonl(records, sys.stdout)
        return
    temp = path.with_name(f".{path.name}.partial")
    try:
        with temp.open("w", encoding="utf-8") as stream:
            count = capture.write_jsonl(records, stream)
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise errors.BadInput(f"cannot write {path}: {exc.strerror}", code="unwritable_export") from None
    stderr().print(f"exported {count} deliveries of job {job_id} to {path}", highlight=False, markup=False)
