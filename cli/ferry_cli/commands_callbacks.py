"""replay and simulate: signed callbacks into a backend, with a bar and an honest summary."""

from __future__ import annotations

import json
import math
import secrets
import sys
import time
from pathlib import Path

from rich.console import Console

from . import capture, errors
from .api import normalize_url
from .checks import check_failure_code, check_reference
from .console import stderr, stdout
from .display import make_display
from .replay import ReplayReport, Sent, parse_speed, run_replay, select
from .signing import Result, Sender, load_secret, refusal_line, summarize
from .tracking import JobTrack


def _counts(results: list[Result]) -> str:
    accepted, _, _ = summarize(results)
    return ", ".join(f"{n} {verdict}" for verdict, n in accepted.most_common()) or "none accepted"


def run_replay_command(
    file: Path,
    *,
    to: str,
    secret: str | None,
    secret_file: Path | None,
    speed: str,
    from_seq: int | None,
    job_id: str | None,
    as_host: str | None,
    keep_going: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    to = normalize_url(to, "--to")
    pace = parse_speed(speed)
    key = load_secret(secret, secret_file)
    records = select(capture.read_jsonl(file), from_seq)
    if not records:
        raise errors.BadInput(
            f"{file} holds no deliveries to replay" + (f" from seq {from_seq}" if from_seq else ""),
            code="empty_capture",
        )
    out = stdout()
    note = stderr() if as_json else out
    duration = 0.0 if math.isinf(pace) else _span(records) / pace
    note.print(
        f"replaying {len(records)} deliveries from {file} to {to} (about {duration:.1f} s)",
        highlight=False,
        markup=False,
    )

    def on_sent(sent: Sent) -> None:
        if verbose:
            result = sent.result
            outcome = result.verdict if result.accepted else f"refused {result.status} {result.code}: {result.message}"
            note.print(
                f"seq {sent.record.get('seq')} {sent.record.get('type')} {sent.webhook_id} → {outcome}",
                highlight=False,
                markup=False,
            )

    with Sender(to, key) as sender:
        report = run_replay(
            records, sender, speed=pace, job_id=job_id, as_host=as_host, keep_going=keep_going, on_sent=on_sent
        )
    _replay_summary(report, to, note, as_json)


def _span(records: list[dict]) -> float:
    return sum(d for d in capture.delays(records) if d and d > 0)


def _replay_summary(report: ReplayReport, to: str, out: Console, as_json: bool) -> None:
    accepted, refused, messages = summarize(report.results)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "to": to,
                    "sent": len(report.sent),
                    "accepted": dict(accepted),
                    "refused": dict(refused),
                    "refusal_messages": messages,
                    "not_sent": report.not_sent,
                }
            )
            + "\n"
        )
    else:
        out.print(
            f"sent {len(report.sent)} deliveries to {to}: {_counts(report.results)}", highlight=False, markup=False
        )
    if refused:
        line = refusal_line(refused, messages, len(report.sent) + report.not_sent)
        if report.not_sent:
            line += (
                f"; stopped, {report.not_sent} not sent (the target refuses this signature; --keep-going to try all)"
            )
        raise errors.Failed(line, code="deliveries_refused")


def run_simulate_command(
    *,
    to: str,
    host: str,
    secret: str | None,
    secret_file: Path | None,
    job_id: str | None,
    fail: str | None,
    speed: str,
    image: str,
    size: int,
    seed: int | None,
    as_json: bool,
    layers: int = 0,
) -> None:
    from .simulate import run_simulation, scenario

    to = normalize_url(to, "--to")
    pace = parse_speed(speed)
    key = load_secret(secret, secret_file)
    if fail is not None:
        check_failure_code(fail)
    check_reference(image)
    job_id = job_id or f"sim-{secrets.token_hex(4)}"
    steps = scenario(job_id=job_id, host=host, image=image, size=size, seed=seed, fail=fail, layers=layers)
    out = stdout()
    note = stderr() if as_json else out
    seconds = steps[-1].at / pace if not math.isinf(pace) else 0.0
    note.print(
        f"simulating job {job_id} on host {host}: {len(steps)} callbacks to {to} over {seconds:.1f} s",
        highlight=False,
        markup=False,
    )
    track = JobTrack(job_id, host=host)
    display = make_display(out, as_json=False) if not as_json else None
    if display:
        display.start([track])

    def on_sent(step, result: Result) -> None:
        if track.apply_event(step.data.model_dump(mode="json"), time.monotonic()) and display:
            display.event(track, step.type, None)
        if not result.accepted:
            note.print(
                f"seq {step.data.seq} refused: {result.status} {result.code}: {result.message}",
                highlight=False,
                markup=False,
            )

    try:
        with Sender(to, key) as sender:
            report = run_simulation(steps, sender, speed=pace, on_sent=on_sent)
    finally:
        if display:
            display.stop()
    accepted, refused, messages = summarize(report.results)
    outcome = steps[-1].type.split(".")[-1]
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "job_id": job_id,
                    "host": host,
                    "outcome": outcome,
                    "sent": len(report.results),
                    "accepted": dict(accepted),
                    "refused": dict(refused),
                    "not_sent": report.not_sent,
                }
            )
            + "\n"
        )
    else:
        out.print(
            f"job {job_id}: simulated {outcome}; sent {len(report.results)} callbacks: {_counts(report.results)}",
            highlight=False,
            markup=False,
        )
    if refused:
        line = refusal_line(refused, messages, len(steps))
        if report.not_sent:
            line += f"; stopped, {report.not_sent} not sent"
        raise errors.Failed(line, code="deliveries_refused")
