"""`ferry-importer serve` (the lab-host service) and `ferry-importer outbox …` (operator views of the outbox).

Defined apart from the CLI's typer app (cli.py registers them); the settings come from FERRY_IMPORTER_*
variables (see `serve --help`).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ferry_importer import database
from ferry_importer.callbacks import outbox
from ferry_importer.datadir import default_data_dir
from ferry_importer.settings import SettingsError, load_settings, settings_help

EXIT_CONFIG = 2

outbox_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Inspect the callback outbox of this host and send given-up callbacks again.",
)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise typer.BadParameter("use HOST:PORT, e.g. 127.0.0.1:8700 or 0.0.0.0:8700")
    return host.strip("[]") or "127.0.0.1", int(port)


SERVE_HELP = "Run the importer service (HTTP API + signed callbacks).\n\nSettings (environment):\n\n" + settings_help()


def serve(
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")] = "127.0.0.1:8700",
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    import uvicorn

    from ferry_importer.http.app import create_app

    host, port = parse_listen(listen)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"ferry-importer serve: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None
    import logging

    from ferry_importer.logs import log_config

    logging.captureWarnings(True)  # Python warnings become log lines (JSON too), not raw text on stderr
    from ferry_contract.bodies import BodyDeadline

    app = BodyDeadline(create_app(settings), settings.body_idle_s, settings.max_open_bodies)  # slow senders
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        log_config=log_config(settings.name, log_level, settings.log_format),
        timeout_graceful_shutdown=90,
        proxy_headers=False,
        server_header=False,
    )


DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="FERRY_IMPORTER_DATA_DIR", help="The importer's data directory.")
]


def _open(data_dir: Path | None):
    path = (data_dir or default_data_dir()) / "importer.db"
    if not path.exists():
        print(f"no outbox at {path}", file=sys.stderr)
        raise typer.Exit(1)
    return database.connect(path)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds") if ts else "-"


def _attempt_line(a: outbox.Attempt) -> str:
    return (
        f"    {_when(a.started_at)} {a.trigger:<9} {a.duration_ms:8.1f} ms  "
        f"{a.status_code or '-'} {a.error or ''} {(a.response or '')[:80]!r}"
    )


@outbox_app.command("list", help="Callbacks, oldest first, with their delivery status and attempts.")
def outbox_list(
    data_dir: DataDir = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this job.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only given-up (expired, 410) or still failing ones.")
    ] = False,
    status: Annotated[outbox.Status | None, typer.Option("--status", help="Only this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    conn = _open(data_dir)
    messages = outbox.list_messages(conn, job_id=job, status=status, limit=limit, failed=failed)
    for m in messages:
        attempts = outbox.attempts_of(conn, m.id)
        if as_json:
            print(
                json.dumps(
                    {
                        "msg_id": m.msg_id,
                        "job_id": m.job_id,
                        "seq": m.seq,
                        "type": m.type,
                        "status": m.status.value,
                        "attempts": [a.__dict__ for a in attempts],
                        "last_status": m.last_status,
                        "last_error": m.last_error,
                        "created_at": _when(m.created_at),
                    }
                )
            )
            continue
        last = m.last_status or m.last_error or ""
        print(f"{m.msg_id}  {m.job_id}  seq={m.seq:<4} {m.type:<16} {m.status.value:<9} attempts={m.attempts} {last}")
        for a in attempts:
            print(_attempt_line(a))
    counts = outbox.counts(conn)
    if not as_json:
        print("  ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)


@outbox_app.command("show", help="One callback: its body and every delivery attempt.")
def outbox_show(msg_id: str, data_dir: DataDir = None) -> None:
    conn = _open(data_dir)
    message = outbox.find(conn, msg_id)
    if message is None:
        print(f"no callback {msg_id}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"{message.msg_id} job={message.job_id} seq={message.seq} {message.type} -> {message.url}")
    print(f"status={message.status.value} created={_when(message.created_at)} finished={_when(message.finished_at)}")
    print(message.body)
    for a in outbox.attempts_of(conn, message.id):
        print(_attempt_line(a))


def _requeue(data_dir: Path | None, **selection) -> int:
    conn = _open(data_dir)
    count = database.transaction(conn, lambda c: outbox.requeue(c, now=time.time(), **selection))
    print(f"requeued {count} callback(s); a running importer sends them within a second (attempts recorded as manual)")
    return count


@outbox_app.command("redeliver", help="Send one callback again (any status), with its original webhook-id.")
def outbox_redeliver(msg_id: str, data_dir: DataDir = None) -> None:
    if _requeue(data_dir, msg_id=msg_id, delivered_too=True) == 0:
        print(f"no finished callback {msg_id} (unknown, or still pending)", file=sys.stderr)
        raise typer.Exit(1)


def parse_since(text: str, now: float | None = None) -> float:
    """`2h`, `30m`, `45s`, `1d` ago, or an ISO-8601 time; returns a Unix timestamp."""
    now = time.time() if now is None else now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit in units and number.isascii() and number.replace(".", "", 1).isdigit():
        return now - float(number) * units[unit]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use a duration such as 2h, 30m, 1d or an ISO time") from None
    return when.replace(tzinfo=when.tzinfo or UTC).timestamp()


@outbox_app.command("recover", help="Send again every given-up (expired or 410) callback created since a time.")
def outbox_recover(
    since: Annotated[str, typer.Option("--since", help="A duration ago (2h, 30m, 1d) or an ISO time.")],
    data_dir: DataDir = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this job.")] = None,
) -> None:
    _requeue(data_dir, since=parse_since(since), job_id=job)
