"""Rich tables for the listing commands. Each takes the API's JSON and returns a renderable.

Every cell is a `Text`, never markup: ids, messages and tags from the backend print as they are.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .formatting import describe, host_liveness, human_bytes, printable, short_time

STATE_STYLES = {"succeeded": "green", "failed": "red", "canceled": "yellow", "running": "cyan", "queued": "blue"}
VERDICT_STYLES = {
    "applied": "green",
    "stale": "yellow",
    "after_terminal": "yellow",
    "duplicate": "dim",
    "invalid": "red",
    "wrong_host": "red",
}


def _styled(value: str | None, styles: dict[str, str]) -> Text:
    return Text(printable(value or ""), style=styles.get(value or "", ""))


def _row(table: Table, *cells: str | Text) -> None:
    table.add_row(*(cell if isinstance(cell, Text) else Text(printable(cell)) for cell in cells))


def jobs_table(jobs: list[dict]) -> Table:
    table = Table(title=f"{len(jobs)} import job(s)", title_justify="left")
    for column in ("id", "host", "image", "state", "percent", "detail", "created (UTC)"):
        table.add_column(column, no_wrap=column in ("id", "host"), justify="right" if column == "percent" else "left")
    for job in jobs:
        view = dict(job, image=job.get("result"))
        _row(
            table,
            job["id"],
            job["host"],
            job.get("image") or "",
            _styled(job.get("state"), STATE_STYLES),
            f"{float(job.get('percent') or 0):.1f}%",
            describe(view),
            short_time(job.get("created_at")),
        )
    return table


def hosts_table(hosts: list[dict]) -> Table:
    table = Table(title=f"{len(hosts)} host(s)", title_justify="left")
    for column in ("name", "url", "liveness", "last seen (UTC)", "disk free", "engine", "running", "queued"):
        table.add_column(column, no_wrap=column == "name")
    for host in hosts:
        words = host_liveness(host)
        alive = Text(words, style="green" if words == "online" else "yellow" if host.get("alive") else "red")
        disk = human_bytes(host["disk_free_bytes"]) if host.get("disk_free_bytes") is not None else ""
        _row(
            table,
            host["name"],
            host.get("url") or "",
            alive,
            short_time(host.get("last_seen")),
            disk,
            host.get("engine_version") or "",
            str(len(host.get("running") or [])),
            str(len(host.get("queued") or [])),
        )
    return table


def images_table(catalog: list[dict]) -> Table:
    table = Table(title="images per host", title_justify="left")
    for column in ("host", "tags", "id", "size", "created", "archive sha256"):
        table.add_column(column, no_wrap=column in ("host", "id"))
    for entry in catalog:
        if not entry.get("reachable", True):
            unreachable = Text("(host unreachable: listed from finished jobs only)", style="red")
            _row(table, entry["host"], unreachable, "", "", "", "")
        for image in entry.get("images") or []:
            _row(
                table,
                entry["host"],
                ", ".join(image.get("tags") or []) or "<none>",
                (image.get("id") or "")[:19],
                human_bytes(image.get("size")) if image.get("size") is not None else "",
                str(image.get("created") or ""),
                (image.get("archive_sha256") or "")[:16],
            )
    return table


def events_table(job_id: str, records: list[dict], delays: list[float | None]) -> Table:
    table = Table(title=Text(printable(f"{len(records)} deliveries of job {job_id}")), title_justify="left")
    for column in ("seq", "type", "webhook-id", "received (UTC)", "verdict", "+delay"):
        table.add_column(column, justify="right" if column in ("seq", "+delay") else "left", no_wrap=True)
    for record, delay in zip(records, delays):
        verdict = _styled(record.get("verdict"), VERDICT_STYLES)
        if record.get("duplicates"):
            verdict.append(f" (repeated {record['duplicates']}×)")
        _row(
            table,
            "" if record.get("seq") is None else str(record["seq"]),
            record.get("type") or "?",
            record.get("webhook_id") or "—",
            short_time(record.get("received_at")),
            verdict,
            "" if delay is None else f"{delay:.3f} s",
        )
    return table
