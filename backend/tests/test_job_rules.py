"""The pure job decisions: snapshot moves only forward, terminal is final, arrival order does not matter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ferry_backend.job_rules import (
    Silence,
    Snapshot,
    Verdict,
    apply_event,
    backend_failure,
    host_alive,
    host_is_stale,
    last_word,
    lost_by_host,
    presumed_failure,
    silence,
)
from ferry_contract import ErrorCode

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def data(seq: int, state: str = "running", **extra) -> dict:
    base = {
        "job_id": "j",
        "host": "h",
        "seq": seq,
        "state": state,
        "phase": "importing",
        "percent": float(seq),
        "bytes_done": seq * 10,
        "bytes_total": 1000,
        "rate_bps": 5.0,
        "eta_s": 3.0,
    }
    base.update(extra)
    return base


def test_newer_seq_moves_snapshot_forward():
    verdict, snap = apply_event(Snapshot(), "import.progress", data(3), NOW)
    assert verdict is Verdict.APPLIED
    assert (snap.seq, snap.percent, snap.bytes_done, snap.state) == (3, 3.0, 30, "running")
    assert snap.updated_at == NOW and snap.finished_at is None


def test_stale_progress_never_moves_snapshot_back():
    _, snap = apply_event(Snapshot(), "import.progress", data(5), NOW)
    verdict, after = apply_event(snap, "import.progress", data(4), NOW)
    assert verdict is Verdict.STALE
    assert after == snap


def test_same_seq_twice_is_stale():
    _, snap = apply_event(Snapshot(), "import.progress", data(2), NOW)
    verdict, _ = apply_event(snap, "import.progress", data(2, percent=99.0), NOW)
    assert verdict is Verdict.STALE


def test_terminal_state_is_final_even_for_higher_seq():
    image = {"ref": "a:1", "id": "sha256:x", "size": 1, "tags": []}
    _, done = apply_event(Snapshot(), "import.completed", data(4, state="succeeded", phase="done", image=image), NOW)
    assert done.terminal and done.result == image and done.finished_at == NOW
    verdict, after = apply_event(
        done, "import.failed", data(9, state="failed", error={"code": "x", "message": "m"}), NOW
    )
    assert verdict is Verdict.FINAL
    assert after.state == "succeeded" and after.seq == 4


def test_failure_keeps_error_and_clears_eta():
    error = {"code": "engine_error", "message": "boom", "detail": None}
    _, snap = apply_event(Snapshot(), "import.failed", data(2, state="failed", error=error), NOW)
    assert snap.error == error and snap.eta_s is None and snap.state == "failed"


def test_backend_failure_follows_the_snapshot():
    _, snap = apply_event(Snapshot(), "import.progress", data(7), NOW)
    failure = backend_failure(snap, "j", "h", ErrorCode.HOST_UNREACHABLE, "silent")
    assert failure["seq"] == 8 and failure["state"] == "failed" and failure["percent"] == 7.0
    assert failure["error"]["code"] == "host_unreachable"


def test_a_loads_layer_counts_stay_in_the_snapshot_and_in_a_backend_failure():
    layers = {"layers_done": 2, "layers_total": 5, "layer_bytes_done": 40, "layer_bytes_total": 90}
    _, snap = apply_event(Snapshot(), "import.progress", data(3, phase="loading", **layers), NOW)
    assert {key: getattr(snap, key) for key in layers} == layers and snap.bytes_available is None
    failure = backend_failure(snap, "j", "h", ErrorCode.HOST_UNREACHABLE, "silent")
    assert {key: failure[key] for key in layers} == layers
    _, waiting = apply_event(snap, "import.progress", data(4, phase="waiting_for_upload", bytes_available=500), NOW)
    assert waiting.bytes_available == 500 and waiting.layers_done is None  # each event says what holds now


def test_host_staleness_counts_from_last_contact_or_job_start():
    since = NOW - timedelta(seconds=100)
    assert host_is_stale(None, since, NOW, 60)
    assert not host_is_stale(None, NOW - timedelta(seconds=30), NOW, 60)
    assert not host_is_stale(NOW - timedelta(seconds=10), since, NOW, 60)
    assert host_is_stale(NOW - timedelta(seconds=61), since, NOW, 60)
    assert host_alive(NOW - timedelta(seconds=5), NOW, 60) and not host_alive(None, NOW, 60)


def _story(length: int, end: str) -> list[tuple[str, dict]]:
    events = [("import.queued", data(1, state="queued", phase="queued", percent=0.0))]
    events += [("import.progress", data(seq)) for seq in range(2, length)]
    if end == "completed":
        events.append(
            (
                "import.completed",
                data(
                    length,
                    state="succeeded",
                    phase="done",
                    percent=100.0,
                    image={"ref": "a:1", "id": "sha256:y", "size": 9, "tags": ["a:1"]},
                ),
            )
        )
    else:
        events.append(("import.failed", data(length, state="failed", error={"code": "engine_error", "message": "no"})))
    return events


def _fold(events) -> Snapshot:
    snap = Snapshot()
    for event_type, payload in events:
        _, snap = apply_event(snap, event_type, payload, NOW)
    return snap


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(min_value=2, max_value=30),
    end=st.sampled_from(["completed", "failed"]),
    duplicates=st.lists(st.integers(min_value=0, max_value=29), max_size=30),
    seed=st.integers(),
)
def test_duplicated_and_shuffled_callbacks_leave_the_same_final_snapshot(length, end, duplicates, seed):
    story = _story(length, end)
    delivered = story + [story[i % length] for i in duplicates]
    random.Random(seed).shuffle(delivered)
    in_order = _fold(story)
    shuffled = _fold(delivered)
    assert shuffled == in_order
    assert shuffled.seq == length and shuffled.terminal


@settings(max_examples=100, deadline=None)
@given(length=st.integers(min_value=3, max_value=20), seed=st.integers())
def test_snapshot_seq_never_decreases_under_any_order(length, seed):
    story = _story(length, "completed")
    random.Random(seed).shuffle(story)
    snap = Snapshot()
    for event_type, payload in story:
        _, after = apply_event(snap, event_type, payload, NOW)
        assert after.seq >= snap.seq
        if snap.terminal:
            assert after == snap
        snap = after


def test_a_presumed_failure_takes_no_seq_and_yields_to_the_hosts_next_event():
    _, running = apply_event(Snapshot(), "import.progress", data(4), NOW)
    presumed = presumed_failure(running, ErrorCode.HOST_UNREACHABLE, "silent", NOW + timedelta(seconds=900))
    assert presumed.terminal and not presumed.final and presumed.seq == 4 and presumed.state == "failed"
    assert apply_event(presumed, "import.progress", data(4), NOW)[0] is Verdict.STALE
    verdict, resumed = apply_event(presumed, "import.progress", data(5), NOW + timedelta(seconds=901))
    assert verdict is Verdict.APPLIED and resumed.state == "running" and resumed.error is None
    assert resumed.finished_at is None and resumed.presumed_at is None and resumed.final is False
    _, done = apply_event(resumed, "import.completed", data(6, state="succeeded", image={"ref": "a:1"}), NOW)
    assert done.final and apply_event(done, "import.progress", data(7), NOW)[0] is Verdict.FINAL


def test_silence_is_measured_from_the_backends_start_at_the_earliest():
    start = NOW - timedelta(seconds=10)
    long_ago = NOW - timedelta(seconds=3000)
    assert last_word(long_ago, long_ago, start) == start  # the backend was down: that was no silence of the host
    assert silence(last_word(long_ago, long_ago, start), NOW, 60, 900) is Silence.SPEAKING
    assert silence(NOW - timedelta(seconds=61), NOW, 60, 900) is Silence.SILENT
    assert silence(NOW - timedelta(seconds=901), NOW, 60, 900) is Silence.LOST
    assert silence(NOW - timedelta(seconds=901), NOW, 3600, 900) is Silence.SPEAKING  # never lost before silent
    assert silence(NOW - timedelta(seconds=3601), NOW, 3600, 900) is Silence.LOST
    assert last_word(None, NOW - timedelta(seconds=5), start) == NOW - timedelta(seconds=5)


def test_only_a_heartbeat_composed_after_the_jobs_last_event_proves_it_lost():
    sent = NOW
    assert lost_by_host("j", 3, set(), sent, sent + timedelta(seconds=1))
    assert not lost_by_host("j", 3, {"j"}, sent, sent + timedelta(seconds=1))  # still running, queued or reporting
    assert not lost_by_host("j", 3, set(), sent, sent - timedelta(seconds=1))  # composed before it spoke of the job
    assert not lost_by_host("j", 0, set(), None, sent)  # never heard of: only the long limit decides
