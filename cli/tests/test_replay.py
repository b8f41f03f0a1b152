"""`ferry events --export` and `ferry replay`: a capture replays into a fresh backend as it happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from cli.tests.conftest import Host
from cli.tests.streams import SocketRecorder
from cli.tests.support import new_secret, run_ferry, unique

SIMULATE = ("--speed", "max", "--size", "30000000", "--seed", "11")


@pytest.fixture(scope="module")
def captured(backend, target, tmp_path_factory):
    """A simulated import on the source backend, exported with `ferry events --export`; its host is
    registered on both backends with the same secret. Tests replay it under new job ids, except the
    first, which replays it as it is."""
    host = Host(unique("lab"), new_secret())
    backend.add_host(host.name, host.secret)
    target.add_host(host.name, host.secret)
    job_id = unique("cap")
    done = run_ferry(
        "simulate", "--to", backend.url, "--host", host.name, "--secret", host.secret, "--job-id", job_id, *SIMULATE
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("capture") / "capture.jsonl"
    exported = run_ferry("events", job_id, "--export", str(path), backend=backend)
    assert exported.returncode == 0, exported.stderr
    return host, job_id, path


def replay(path, to, secret, *extra):
    return run_ferry("replay", str(path), "--to", to.url, "--secret", secret, "--speed", "max", *extra)


async def test_a_capture_replayed_into_a_fresh_backend_gives_the_same_snapshot_and_socket_events(
    backend, target, captured
):
    host, job_id, path = captured
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(r["host"] == host.name and r["job_id"] == job_id and r["webhook_id"] for r in records)
    assert target.get(f"/api/imports/{job_id}").status_code == 404

    original = await SocketRecorder(backend).connect()  # what a browser that opens the job late sees
    replayed = await SocketRecorder(target).connect()  # what a browser watching the fresh backend sees live
    try:
        assert (await original.subscribe(job_id))["ok"]
        assert (await replayed.subscribe_all())["ok"]
        done = replay(path, target, host.secret)
        assert done.returncode == 0, done.stderr
        assert f"{len(records)} applied" in done.stdout
        await original.wait_terminal(job_id)
        await replayed.wait_terminal(job_id)
    finally:
        await original.close()
        await replayed.close()
    assert replayed.of(job_id) == original.of(job_id)
    assert [d["seq"] for _, d in replayed.of(job_id)] == list(range(1, len(records) + 1))
    assert all(
        not meta["replay"] and not meta["catchup"] for _, data, meta in replayed.received if data["job_id"] == job_id
    ), "the fresh backend announced them live, as new events"
    assert target.snapshot(job_id) == backend.snapshot(job_id)


def test_replaying_the_same_rewritten_capture_twice_is_deduplicated(target, captured):
    host, _, path = captured
    new_id = unique("twice")
    first = replay(path, target, host.secret, "--job-id", new_id, "--json")
    again = replay(path, target, host.secret, "--job-id", new_id, "--json")
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    count = len(path.read_text().splitlines())
    assert json.loads(first.stdout)["accepted"] == {"applied": count}
    assert json.loads(again.stdout)["accepted"] == {"duplicate": count}
    assert len(target.events(new_id)) == count


def test_replay_with_a_wrong_secret_is_refused_reported_and_stores_nothing(target, captured):
    _, _, path = captured
    new_id = unique("forged")
    done = replay(path, target, new_secret(), "--job-id", new_id)
    assert done.returncode == 1
    assert "1 of" in done.stderr and "bad_signature" in done.stderr and "not sent" in done.stderr
    assert target.get(f"/api/imports/{new_id}").status_code == 404


def test_replay_as_a_host_the_target_does_not_know_is_refused_for_every_delivery(target, captured):
    host, _, path = captured
    count = len(path.read_text().splitlines())
    done = replay(path, target, host.secret, "--as-host", unique("nowhere"), "--keep-going", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["refused"] == {"unknown_host": count}
    assert f"{count} of {count} deliveries refused" in done.stderr and "unknown_host" in done.stderr


def test_replay_with_a_new_job_id_from_a_seq_on_into_the_same_backend(backend, captured):
    host, job_id, path = captured
    new_id = unique("copy")
    done = replay(path, backend, host.secret, "--job-id", new_id, "--from-seq", "5", "--json")
    assert done.returncode == 0, done.stderr
    count = len(path.read_text().splitlines())
    assert json.loads(done.stdout)["accepted"] == {"applied": count - 4}
    copied = backend.events(new_id)
    assert [e["seq"] for e in copied] == list(range(5, count + 1))
    originals = {e["seq"]: e for e in backend.events(job_id)}
    assert all(e["webhook_id"] != originals[e["seq"]]["webhook_id"] for e in copied), "fresh webhook-ids"
    assert all(e["data"] == dict(originals[e["seq"]]["data"], job_id=new_id) for e in copied)
    assert backend.snapshot(new_id) == dict(backend.snapshot(job_id), id=new_id)


def test_replay_keeps_the_captured_gaps_divided_by_the_speed(target, captured, tmp_path):
    host, _, path = captured
    records = [json.loads(line) for line in path.read_text().splitlines()][:4]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for index, record in enumerate(records):  # captured one second apart
        record["received_at"] = (start + timedelta(seconds=index)).isoformat()
    spaced = tmp_path / "spaced.jsonl"
    spaced.write_text("".join(json.dumps(r) + "\n" for r in records))
    new_id = unique("paced")
    done = run_ferry(
        "replay", str(spaced), "--to", target.url, "--secret", host.secret, "--speed", "4", "--job-id", new_id
    )
    assert done.returncode == 0, done.stderr
    received = [datetime.fromisoformat(e["received_at"].replace("Z", "+00:00")) for e in target.events(new_id)]
    gaps = [(b - a).total_seconds() for a, b in zip(received, received[1:])]
    assert len(gaps) == 3 and min(gaps) >= 0.25 - 0.02, gaps  # never earlier than 1 s / 4 after the one before


def test_events_lists_every_delivery_with_its_delay(backend, captured):
    _, job_id, path = captured
    listed = run_ferry("events", job_id, "--json", backend=backend)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    exported = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["webhook_id"] for r in rows] == [r["webhook_id"] for r in exported]
    assert rows[0]["delay_s"] is None and all(r["delay_s"] >= 0 for r in rows[1:])
    table = run_ferry("events", job_id, backend=backend)
    assert table.returncode == 0 and all(r["webhook_id"] in table.stdout for r in rows)


def test_export_keeps_the_raw_body_and_headers_as_received(captured):
    host, _, path = captured
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(r["verdict"] == "applied" and r["duplicates"] == 0 for r in records)
    for record in records:  # exactly what the importer sent: its signature still matches the host's secret
        headers = record["headers"]
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
        assert headers["webhook-id"] == record["webhook_id"]
        assert (
            Webhook(host.secret).sign(record["webhook_id"], sent_at, record["body"])
            in headers["webhook-signature"].split()
        )
        payload = json.loads(record["body"])
        assert payload["data"]["seq"] == record["seq"] and payload["type"] == record["type"]


def test_events_needs_an_operator_token(backend, captured):
    _, job_id, _ = captured
    done = run_ferry("events", job_id, backend=backend, token=backend.token("viewer"))
    assert done.returncode == 5 and "[forbidden]" in done.stderr
