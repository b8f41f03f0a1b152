"""The CLI's pure decisions: seq bookkeeping, descriptions, capture records, pacing, secrets, chunk sizes."""

from __future__ import annotations

import json
import math
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.tests.support import new_secret
from ferry_cli import errors
from ferry_cli.capture import delays, derived_webhook_id, read_jsonl, rewrite
from ferry_cli.formatting import describe, host_liveness, human_bytes, human_duration
from ferry_cli.live import backoff, socket_target
from ferry_cli.replay import parse_speed, run_replay, schedule, select
from ferry_cli.signing import Result, check_secret, secret_from_text, sign_headers
from ferry_cli.tracking import JobTrack
from ferry_cli.upload import MAX_CHUNK, MIN_CHUNK, next_chunk_size

PAGE_FORMAT = Path(__file__).resolve().parents[2] / "frontend-bridge" / "web" / "format.js"


def data(seq: int, state: str = "running", phase: str = "importing", **extra) -> dict:
    return {"job_id": "j", "host": "h", "seq": seq, "state": state, "phase": phase, "percent": float(seq), **extra}


# --- following a job by seq ----------------------------------------------------------------------------


def test_an_event_at_or_below_the_last_seq_seen_is_ignored():
    track = JobTrack("j")
    assert track.apply_event(data(1), now=0) and track.apply_event(data(3), now=1)
    assert not track.apply_event(data(3), now=2) and not track.apply_event(data(2), now=2)
    assert track.seen_seq == 3 and track.view["seq"] == 3 and track.events == 2


def test_a_snapshot_never_moves_the_view_back():
    track = JobTrack("j")
    track.apply_event(data(5), now=0)
    assert not track.apply_snapshot({"id": "j", "host": "h", "seq": 4, "state": "running", "phase": "importing"}, now=1)
    assert track.view["seq"] == 5
    assert track.apply_snapshot(
        {"id": "j", "host": "h", "seq": 9, "state": "succeeded", "phase": "done", "result": {"ref": "a:1"}}, now=2
    )
    assert track.terminal and track.view["image"] == {"ref": "a:1"}
    assert not track.caught_up, "events up to seq 9 are still to come"
    track.apply_event(data(9, state="succeeded", phase="done"), now=3)
    assert track.caught_up and track.succeeded


def test_the_socket_endpoint_follows_a_path_prefix_of_the_backend_url():
    assert socket_target("http://127.0.0.1:8000") == ("http://127.0.0.1:8000", "socket.io")
    assert socket_target("https://lab.example/ferry") == ("https://lab.example", "ferry/socket.io")


def test_reconnect_backoff_grows_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


# --- what a line says ----------------------------------------------------------------------------------


def test_finalizing_shows_its_elapsed_seconds_and_keeps_counting_between_events():
    track = JobTrack("j")
    track.apply_event(data(7, phase="finalizing", phase_elapsed_s=12.0), now=100.0)
    assert describe(track.view) == "finalizing · 12 s (the engine is applying the image)"
    assert describe(track.view, track.phase_clock(now=101.5)).startswith("finalizing · 13 s")
    track.apply_event(data(8, phase="finalizing", phase_elapsed_s=12.5), now=101.6)  # a late event: smaller count
    assert track.phase_clock(now=101.6) == 13.5, "the clock never moves back"
    track.apply_event(data(9, phase="verifying", phase_elapsed_s=0.0), now=102.0)
    assert track.phase_clock(now=102.2) == pytest.approx(0.2), "a new phase starts its own clock"


def test_descriptions_of_importing_queued_done_and_failed():
    assert (
        describe(data(2, bytes_done=300_000_000, bytes_total=600_000_000, rate_bps=48_200_000, eta_s=6.2))
        == "importing 286 MiB / 572 MiB · 46.0 MiB/s · eta 6 s"
    )
    assert describe(data(1, state="queued", phase="queued", queue_position=2)) == "queued (position 2)"
    done = data(
        9,
        state="succeeded",
        phase="done",
        image={"ref": "ceos:4.35.1F", "id": "sha256:" + "ab" * 32, "size": 2_600_000_000},
    )
    assert describe(done) == "done · ceos:4.35.1F · sha256:abababababab · 2.42 GiB"
    pair = data(
        9,
        state="succeeded",
        phase="done",
        image={
            "ref": "lab/a:1",
            "id": "sha256:" + "ab" * 32,
            "size": 1024,
            "tags": ["lab/a:1"],
            "images": [
                {"id": "sha256:" + "ab" * 32, "tags": ["lab/a:1"]},
                {"id": "sha256:" + "cd" * 32, "tags": ["lab/b:1"]},
            ],
        },
    )
    assert describe(pair) == "done · lab/a:1 · sha256:abababababab · 1.00 KiB · and lab/b:1"
    failed = data(4, state="failed", error={"code": "engine_error", "message": "the engine said no"})
    assert describe(failed) == "failed · engine_error: the engine said no"


def test_a_load_describes_the_layers_the_engine_is_loading():
    loading = data(
        7,
        phase="loading",
        bytes_done=600_000_000,
        bytes_total=600_000_000,
        rate_bps=45_000_000,
        eta_s=3.4,
        layers_done=3,
        layers_total=7,
        layer_bytes_done=120_000_000,
        layer_bytes_total=270_000_000,
    )
    assert describe(loading) == "loading layers 3/7 · 114 MiB / 257 MiB · 42.9 MiB/s · eta 3 s"
    unplanned = data(7, phase="loading", rate_bps=None, eta_s=None, layers_done=2)
    assert describe(unplanned) == "loading layers 2"


def test_sizes_read_in_binary_units_and_durations_in_words():
    assert [human_bytes(v) for v in (0, 999, 1500, 600_000_000, 2_600_000_000)] == [
        "0 B",
        "999 B",
        "1.46 KiB",
        "572 MiB",
        "2.42 GiB",
    ]
    assert [human_duration(v) for v in (0.9, 59.9, 185, 3720)] == ["0 s", "59 s", "3 min 05 s", "1 h 02 min"]


def test_the_cli_writes_every_size_exactly_as_the_web_page_does():
    sizes = [0, 1, 1023, 1024, 1500, 10 * 1024 - 1, 99 * 1024 * 1024, 70_700_000, 600_000_000, 2_600_000_000, 5 * 2**40]
    script = (
        "import(process.argv[1]).then((m) => console.log(JSON.stringify(JSON.parse(process.argv[2])"
        ".map(m.formatBytes))))"
    )
    page = subprocess.run(
        ["node", "-e", script, str(PAGE_FORMAT), json.dumps(sizes)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [human_bytes(v) for v in sizes] == json.loads(page.stdout)


# --- captures --------------------------------------------------------------------------------------------


def record(seq: int, at: float, webhook_id: str | None = "msg_1") -> dict:
    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=at)
    body = json.dumps({"type": "import.progress", "timestamp": when.isoformat(), "data": data(seq)})
    return {"webhook_id": webhook_id, "host": "h", "seq": seq, "received_at": when.isoformat(), "body": body}


def test_the_captured_gaps_are_divided_by_the_speed_and_max_never_waits():
    records = [record(1, 0.0), record(2, 2.0), record(3, 2.5), record(4, 1.0)]  # the last one's clock went back
    assert schedule(records, 1) == [0.0, 2.0, 2.5, 2.5]
    assert schedule(records, 10) == pytest.approx([0.0, 0.2, 0.25, 0.25])
    assert schedule(records, math.inf) == [0.0, 0.0, 0.0, 0.0]
    assert delays(records) == [None, 2.0, 0.5, -1.5]


def test_speed_takes_numbers_and_max_only():
    assert parse_speed("1") == 1 and parse_speed("10") == 10 and parse_speed("MAX") == math.inf
    for bad in ("0", "-1", "fast", "inf", "nan"):
        with pytest.raises(errors.BadInput):
            parse_speed(bad)


def test_from_seq_keeps_later_deliveries_only():
    records = [record(1, 0), record(2, 1), {**record(3, 2), "seq": None}, record(4, 3)]
    assert [r["seq"] for r in select(records, 2)] == [2, 4]
    assert len(select(records, None)) == 4


def test_rewriting_the_job_id_gives_fresh_but_repeatable_webhook_ids():
    original = record(3, 0, webhook_id="msg_original")
    body, webhook_id = rewrite(original)
    assert (body, webhook_id) == (original["body"], "msg_original"), "untouched: the raw body as captured"
    body, first = rewrite(original, job_id="copy")
    assert json.loads(body)["data"]["job_id"] == "copy" and json.loads(body)["data"]["seq"] == 3
    assert first != "msg_original" and first == rewrite(original, job_id="copy")[1]
    assert first != rewrite(original, job_id="other")[1] and first.startswith("msg_")
    assert derived_webhook_id("a", "b") != derived_webhook_id("a", "c")


def test_a_malformed_capture_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record(1, 0)) + "\n\n{not json\n")
    with pytest.raises(errors.BadInput, match=r"bad.jsonl:3: not JSON"):
        read_jsonl(path)
    path.write_text(json.dumps({"host": "h", "body": {"not": "a string"}}) + "\n")
    with pytest.raises(errors.BadInput, match=r":1: a delivery needs a string 'body'"):
        read_jsonl(path)
    path.write_text(json.dumps({**record(1, 0), "webhook_id": None}) + "\n")
    with pytest.raises(errors.BadInput, match=r":1: a delivery needs its 'webhook_id'"):
        read_jsonl(path)


# --- secrets and signatures ------------------------------------------------------------------------------


def test_a_secret_is_found_in_a_bare_env_or_json_file():
    secret = new_secret()
    for text in (secret + "\n", f"FERRY_IMPORTER_WEBHOOK_SECRET={secret}\n", json.dumps({"webhook_secret": secret})):
        assert secret_from_text(text, "f") == secret
    with pytest.raises(errors.BadInput, match="2 different"):
        secret_from_text(f"{secret}\n{new_secret()}", "f")
    with pytest.raises(errors.BadInput, match="no whsec_"):
        secret_from_text("nothing here", "f")


def test_short_or_malformed_secrets_are_refused():
    for bad in ("whsec_c2hvcnQ=", "whsec_!!!", "abc"):
        with pytest.raises(errors.BadInput):
            check_secret(bad)


def test_signatures_verify_with_the_standard_library_at_the_given_time():
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    secret = new_secret()
    body = json.dumps({"type": "import.progress", "data": data(1)})
    headers = sign_headers(secret, "msg_x", body, now=1_700_000_000)
    assert headers["webhook-timestamp"] == "1700000000"
    assert Webhook(secret).verify(body, sign_headers(secret, "msg_x", body))  # a fresh one verifies now
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, sign_headers(secret, "msg_x", body))


# --- uploads and errors ----------------------------------------------------------------------------------


def test_the_chunk_size_aims_at_half_a_second_per_patch_within_bounds():
    assert next_chunk_size(1 << 20, sent=1 << 20, seconds=0.125) == 4 << 20
    assert next_chunk_size(1 << 20, sent=1 << 20, seconds=60) == MIN_CHUNK
    assert next_chunk_size(1 << 20, sent=1 << 30, seconds=1) == MAX_CHUNK
    assert next_chunk_size(1 << 20, sent=0, seconds=0) == 1 << 20


def test_http_statuses_map_to_distinct_exit_codes():
    assert errors.for_status(401, None, "m").exit_code == errors.EXIT_UNAUTHORIZED
    assert errors.for_status(403, "forbidden", "m").exit_code == errors.EXIT_FORBIDDEN
    assert errors.for_status(404, "job_not_found", "m").code == "job_not_found"
    refused = errors.for_status(507, "insufficient_disk", "disk full")
    assert refused.exit_code == errors.EXIT_REFUSED and refused.line() == "ferry: disk full [insufficient_disk]"


def test_a_silent_host_is_said_silent_with_its_duration_never_online():
    now = datetime(2026, 12, 1, 12, 1, tzinfo=UTC)
    assert host_liveness({"alive": True, "last_seen": "2026-12-01T12:00:55Z"}, now) == "online"
    assert host_liveness({"alive": True, "last_seen": "2026-12-01T12:00:02Z"}, now) == "silent for 58 s"
    assert host_liveness({"alive": False, "last_seen": "2026-12-01T11:58:00Z"}, now) == "silent for 3 min 00 s"
    assert host_liveness({"alive": False, "last_seen": None}, now) == "never heard from"


def test_a_doubt_is_shown_beside_the_progress_and_a_presumed_failure_gives_way_to_the_hosts_events():
    doubt = {"code": "host_silent", "host": "lab1", "silent_s": 40.0, "message": "no word from lab1 for 40 s"}
    track = JobTrack("j1")
    track.apply_event(
        {
            "job_id": "j1",
            "host": "lab1",
            "seq": 3,
            "state": "running",
            "phase": "importing",
            "bytes_done": 1000,
            "bytes_total": 4000,
        },
        0.0,
    )
    snapshot = {
        "id": "j1",
        "host": "lab1",
        "seq": 3,
        "state": "running",
        "phase": "importing",
        "bytes_done": 1000,
        "bytes_total": 4000,
        "doubt": doubt,
        "presumed": False,
    }
    assert track.apply_notice(snapshot, 1.0)
    assert describe(track.view).endswith(" · no word from lab1 for 40 s") and not track.terminal
    error = {"code": "host_unreachable", "message": "no word from host 'lab1' for 900 s"}
    assert track.apply_notice(dict(snapshot, state="failed", error=error, presumed=True), 2.0)
    assert describe(track.view) == (
        "failed · host_unreachable: no word from host 'lab1' for 900 s (presumed: a later report from lab1 replaces it)"
    )
    track.apply_event(
        {
            "job_id": "j1",
            "host": "lab1",
            "seq": 4,
            "state": "succeeded",
            "phase": "done",
            "image": {"ref": "a:1", "id": "sha256:" + "a" * 64, "size": 10},
        },
        3.0,
    )
    assert track.succeeded and "no word" not in describe(track.view)
    assert not track.apply_notice(
        dict(snapshot, seq=4, state="failed", error=error, presumed=True), 4.0
    )  # ended for good


def test_waiting_for_the_upload_says_how_much_of_it_has_arrived():
    view = {
        "state": "running",
        "phase": "waiting_for_upload",
        "bytes_available": 45_000_000,
        "bytes_total": 100_000_000,
    }
    text = describe(view)
    assert text.startswith("waiting for upload · ") and "(45 %)" in text


def test_a_slow_send_delays_the_replay_instead_of_making_the_next_gap_shorter():
    now = [0.0]
    sent_at: list[float] = []

    class SlowFirst:
        def send(self, host, webhook_id, body):
            sent_at.append(now[0])
            now[0] += 0.4 if len(sent_at) == 1 else 0.01  # the first send takes longer than the gap
            return Result(status=204)

    records = [
        {"host": "lab1", "webhook_id": f"msg_{i}", "body": "{}", "received_at": f"2025-01-01T00:00:0{i}+00:00"}
        for i in range(3)
    ]

    def sleep(seconds):
        now[0] += seconds

    run_replay(records, SlowFirst(), speed=4, clock=lambda: now[0], sleep=sleep)
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert gaps[0] == pytest.approx(0.4) and gaps[1] == pytest.approx(0.25)
