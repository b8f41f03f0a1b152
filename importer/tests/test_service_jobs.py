"""Jobs end to end: a real `ferry-importer serve`, the real engine, a real signed-webhook receiver."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime

import pytest

from archives import rootfs_files, tar_bytes, write
from importer.tests.service_process import Lab, assert_seq_increasing, labelled
from importer.tests.service_support import stream_gets, wait_until
from tests.support.images import image_present

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]

SLOW_BPS = 1_000_000  # the file server's pace for jobs that must still be running when the test acts
SLOW_SIZE = 3_000_000  # ~3 s at that pace; progress moves in ~1 MiB steps (the pipeline's chunk)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, docker_host, docker_client):
    """One importer for the module (starting a process is the slow part): one job at a time, fast heartbeats."""
    world = Lab(tmp_path_factory.mktemp("jobs"), docker_host)
    world.receiver.start()
    world.importer(max_concurrent=1, heartbeat_s=0.3)
    yield world
    world.close(docker_client)


@pytest.fixture
def lab(shared):
    shared.files.throttle_bps = None
    shared.files.drop_after.clear()
    shared.files.stall_at.clear()
    shared.files.head_delay_s = 0.0
    shared.files.requests.clear()
    yield shared
    assert shared.processes[0].client.get("/v1/host").json()["running"] == [], "a test left a job running"


def archive(lab: Lab, name: str, size: int, compression: str = "gzip") -> tuple[str, str]:
    path = write(lab.roots / name, tar_bytes(rootfs_files(size)), compression)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def completed_events(lab: Lab, job_id: str) -> list[dict]:
    return wait_until(
        lambda: (
            (events := lab.receiver.events(job_id))
            and events[-1]["type"].endswith(("completed", "failed", "canceled"))
            and events
        ),
        60,
        what=f"the terminal callback of {job_id}",
    )


def test_a_job_reports_signed_progress_from_queued_to_completed(lab, docker_client):
    importer = lab.processes[0]
    path, sha = archive(lab, "a.tar.gz", 400_000)
    image = lab.image("flow")
    body = lab.job(image, {"path": path})
    response = importer.submit(**body)
    assert response.status_code == 202 and response.headers["location"] == f"/v1/imports/{body['job_id']}"
    job = importer.wait_state(body["job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    assert job["percent"] == 100 and job["image_info"]["ref"] == image
    events = completed_events(lab, body["job_id"])
    assert_seq_increasing(events)
    assert [e["data"]["seq"] for e in events] == list(range(1, len(events) + 1))  # nothing coalesced: receiver up
    assert events[0]["type"] == "import.queued" and events[0]["data"]["queue_position"] == 1
    assert events[-1]["type"] == "import.completed" and events[-1]["data"]["image"]["ref"] == image
    assert {e["data"]["host"] for e in events} == {"lab1"}
    percents = [e["data"]["percent"] for e in events]
    assert percents == sorted(percents) and percents.count(100) == 1
    assert all(d.verified for d in lab.receiver.deliveries)
    assert image_present(docker_client, image)
    listed = {img["id"]: img for img in importer.client.get("/v1/images").json()["images"]}
    assert listed[job["image_info"]["id"]]["archive_sha256"] == sha
    assert lab.spool_entries() == []


def test_a_started_job_is_heard_from_every_second_while_a_slow_source_answers_its_probe(lab, docker_client):
    importer = lab.processes[0]
    path, _ = archive(lab, "slowhead.tar", 200_000, "none")
    lab.files.head_delay_s = 2.5  # every HEAD: the submit's check and the job's own probe
    body = lab.job(lab.image("slowhead"), {"url": lab.files.url("slowhead.tar")})
    assert importer.submit(**body).status_code == 202
    events = completed_events(lab, body["job_id"])
    assert events[0]["type"] == "import.queued" and events[-1]["type"] == "import.completed"
    streaming = next(i for i, e in enumerate(events) if e["data"]["phase"] == "importing")
    gaps = [(_at(b) - _at(a)).total_seconds() for a, b in zip(events[: streaming + 1], events[1 : streaming + 1])]
    assert sum(gaps) >= 2.5  # the job's probe really waited for the slow HEAD...
    assert max(gaps) <= 1.0, gaps  # ...and `preparing` kept coming meanwhile
    assert events[-1]["data"]["bytes_total"] == os.path.getsize(path)  # the probe still learnt the size


def test_with_max_concurrent_one_the_second_job_waits_queued_then_runs(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "slow.tar.gz", SLOW_SIZE)
    fast_path, _ = archive(lab, "fast.tar.gz", 100_000)
    lab.files.throttle_bps = SLOW_BPS
    first = lab.job(lab.image("first"), {"url": lab.files.url("slow.tar.gz")})
    second = lab.job(lab.image("second"), {"path": fast_path})
    assert importer.submit(**first).status_code == 202
    importer.wait_state(first["job_id"], {"running"})
    view = importer.submit(**second).json()
    assert view["state"] == "queued" and view["queue_position"] == 1
    host = importer.client.get("/v1/host").json()
    assert host["running"] == [first["job_id"]]
    assert host["queued"] == [{"job_id": second["job_id"], "position": 1}]
    beat = wait_until(
        lambda: [
            d.json()
            for d in lab.receiver.verified()
            if d.json()["type"] == "importer.heartbeat" and second["job_id"] in d.json()["data"]["queued"]
        ],
        10,
        what="a heartbeat naming the queued job",
    )[-1]
    assert beat["data"]["running"] == [first["job_id"]] and beat["data"]["queued"] == [second["job_id"]]
    assert beat["data"]["host"] == "lab1" and beat["data"]["engine_version"]
    assert importer.wait_state(first["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
    assert importer.wait_state(second["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
    first_events = completed_events(lab, first["job_id"])
    second_events = completed_events(lab, second["job_id"])
    assert_seq_increasing(second_events)
    assert second_events[0]["type"] == "import.queued" and second_events[0]["data"]["queue_position"] == 1
    started = [e for e in second_events if e["data"]["state"] == "running"][0]
    assert _at(started) >= _at(first_events[-1])  # it ran only after the first one finished


def test_cancel_mid_import_ends_canceled_and_leaves_nothing(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "big.tar.gz", SLOW_SIZE)
    lab.files.throttle_bps = SLOW_BPS
    image = lab.image("cancel")
    body = lab.job(image, {"url": lab.files.url("big.tar.gz")})
    importer.submit(**body)
    importer.wait_bytes(body["job_id"], 1)
    assert lab.spool_entries() == [body["job_id"]]
    response = importer.client.delete(f"/v1/imports/{body['job_id']}")
    assert response.status_code == 202
    job = importer.wait_state(body["job_id"], {"canceled", "succeeded", "failed"}, timeout=30)
    assert job["state"] == "canceled", job
    events = completed_events(lab, body["job_id"])
    assert_seq_increasing(events)
    assert events[-1]["type"] == "import.canceled" and events[-1]["data"]["state"] == "canceled"
    assert not image_present(docker_client, image)
    assert not [i for i in labelled(docker_client, lab.token) if i not in _tagged_ids(docker_client, lab)]
    assert lab.spool_entries() == []
    again = importer.client.delete(f"/v1/imports/{body['job_id']}")
    assert again.status_code == 202 and again.json()["state"] == "canceled"


def test_cancel_while_the_url_source_stalls_hangs_up_at_once_and_leaves_nothing(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "stall.tar", 2 * SLOW_SIZE, "none")
    lab.files.stall_at["/files/stall.tar"] = 4_000_000  # then silence on an open connection (timeout: 60 s)
    image = lab.image("stall")
    body = lab.job(image, {"url": lab.files.url("stall.tar")})
    importer.submit(**body)
    importer.wait_bytes(body["job_id"], 1)
    wait_until(lambda: lab.files.stalls, 30, what="the source to stall")
    asked = time.monotonic()
    assert importer.client.delete(f"/v1/imports/{body['job_id']}").status_code == 202
    job = importer.wait_state(body["job_id"], {"canceled", "succeeded", "failed"}, timeout=5)
    assert job["state"] == "canceled", job
    hangups = wait_until(lambda: lab.files.hangups, 5, what="the importer to close the source connection")
    assert hangups[0][1] - asked < 5
    events = completed_events(lab, body["job_id"])
    assert events[-1]["type"] == "import.canceled"
    assert not image_present(docker_client, image)
    assert not [i for i in labelled(docker_client, lab.token) if i not in _tagged_ids(docker_client, lab)]
    assert lab.spool_entries() == []
    assert len(stream_gets(lab.files.requests)) == 1  # no reconnect after the cancel


def test_cancel_of_a_queued_job_never_starts_it(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "big.tar.gz", SLOW_SIZE)
    fast_path, _ = archive(lab, "fast.tar.gz", 100_000)
    lab.files.throttle_bps = SLOW_BPS
    first = lab.job(lab.image("runs"), {"url": lab.files.url("big.tar.gz")})
    second = lab.job(lab.image("never"), {"path": fast_path})
    importer.submit(**first)
    importer.submit(**second)
    canceled = importer.client.delete(f"/v1/imports/{second['job_id']}").json()
    assert canceled["state"] == "canceled"
    importer.client.delete(f"/v1/imports/{first['job_id']}")
    importer.wait_state(first["job_id"], {"canceled", "succeeded", "failed"})
    events = completed_events(lab, second["job_id"])
    assert [e["type"] for e in events] == ["import.queued", "import.canceled"]
    assert not image_present(docker_client, second["image"])


def test_a_url_source_that_drops_mid_way_resumes_with_range_and_completes(lab, docker_client):
    importer = lab.processes[0]
    path, sha = archive(lab, "drop.tar.gz", 1_500_000)
    lab.files.drop_after["/files/drop.tar.gz"] = 600_000
    image = lab.image("resume")
    body = lab.job(
        image,
        {"url": lab.files.url("drop.tar.gz", "token=s3cret"), "sha256": sha, "size": len(open(path, "rb").read())},
    )
    importer.submit(**body)
    job = importer.wait_state(body["job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    gets = [r for r in stream_gets(lab.files.requests) if r["path"].startswith("/files/drop.tar.gz")]
    assert len(gets) == 2 and "range" not in gets[0]
    assert gets[1]["range"].startswith("bytes=") and int(gets[1]["range"][6:-1]) > 0
    assert image_present(docker_client, image)
    assert "s3cret" not in importer.log()  # download tokens stay out of the logs


def test_a_url_source_with_the_wrong_sha256_fails_before_the_engine_commits(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "wrong.tar.gz", 300_000)
    image = lab.image("mismatch")
    body = lab.job(image, {"url": lab.files.url("wrong.tar.gz"), "sha256": "0" * 64})
    importer.submit(**body)
    job = importer.wait_state(body["job_id"], {"succeeded", "failed"})
    assert job["state"] == "failed" and job["error"]["code"] == "source_mismatch"
    events = completed_events(lab, body["job_id"])
    assert events[-1]["type"] == "import.failed" and events[-1]["data"]["error"]["code"] == "source_mismatch"
    assert not image_present(docker_client, image)
    assert not [i for i in labelled(docker_client, lab.token) if i not in _tagged_ids(docker_client, lab)]


def test_a_corrupt_archive_fails_with_its_code_and_the_service_keeps_serving(lab, docker_client):
    importer = lab.processes[0]
    bad = lab.roots / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 1000)
    body = lab.job(lab.image("bad"), {"path": str(bad)})
    importer.submit(**body)
    job = importer.wait_state(body["job_id"], {"succeeded", "failed"})
    assert job["state"] == "failed" and job["error"]["code"] == "corrupt_compression"
    path, _ = archive(lab, "good.tar", 100_000, "none")
    good = lab.job(lab.image("good"), {"path": path})
    importer.submit(**good)
    assert importer.wait_state(good["job_id"], {"succeeded", "failed"})["state"] == "succeeded"


def _tagged_ids(client, lab: Lab) -> set[str]:
    """Images earlier tests of this module imported on purpose (they carry the same label)."""
    return {client.api.inspect_image(ref)["Id"] for ref in lab.images if image_present(client, ref)}


def _at(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def test_receiver_down_for_a_while_then_up_gets_every_event_once_in_seq_order(lab, docker_client):
    importer = lab.processes[0]
    archive(lab, "outage.tar.gz", SLOW_SIZE)
    lab.files.throttle_bps = SLOW_BPS
    image = lab.image("outage")
    body = lab.job(image, {"url": lab.files.url("outage.tar.gz")})
    lab.receiver.stop()
    try:
        importer.submit(**body)
        assert importer.wait_state(body["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
        waiting = importer.outbox(body["job_id"])["messages"]
        assert any(m["status"] == "pending" for m in waiting)
        assert any(m["attempts"] > 0 and m["last_error"] for m in waiting)
    finally:
        lab.receiver.start()
    events = completed_events(lab, body["job_id"])
    messages = wait_until(
        lambda: (
            (ms := importer.outbox(body["job_id"])["messages"]) and all(m["status"] != "pending" for m in ms) and ms
        ),
        30,
        what="the outbox to drain",
    )
    delivered = {m["msg_id"] for m in messages if m["status"] == "delivered"}
    coalesced = [m for m in messages if m["status"] == "coalesced"]
    assert {m["status"] for m in messages} <= {"delivered", "coalesced"}
    assert coalesced and all(m["type"] == "import.progress" for m in coalesced)
    seen = {d.webhook_id for d in lab.receiver.verified() if d.json()["data"].get("job_id") == body["job_id"]}
    assert seen == delivered and len(events) == len(delivered)  # every kept event arrived, once after dedupe
    assert_seq_increasing(events)
    assert events[0]["type"] == "import.queued" and events[-1]["type"] == "import.completed"
    phases = [e["data"]["phase"] for e in events]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "queued",
        "preparing",
        "importing",
        "finalizing",
        "verifying",
        "done",
    ]
    assert image_present(docker_client, image)


def test_a_410_stops_callbacks_for_that_job_until_an_operator_resends_them(lab, docker_client):
    importer = lab.processes[0]
    path, _ = archive(lab, "gone.tar", 100_000, "none")
    body = lab.job(lab.image("gone"), {"path": path})
    lab.receiver.answer = lambda event: (410, {}) if event["data"].get("job_id") == body["job_id"] else (204, {})
    try:
        importer.submit(**body)
        assert importer.wait_state(body["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
        messages = wait_until(
            lambda: (
                (ms := importer.outbox(body["job_id"])["messages"]) and all(m["status"] == "gone" for m in ms) and ms
            ),
            30,
            what="every callback of the job to be gone",
        )
        tried = [d for d in lab.receiver.deliveries if d.json()["data"].get("job_id") == body["job_id"]]
        assert len(tried) == 1 and tried[0].status == 410
    finally:
        lab.receiver.answer = None
    resent = importer.client.post("/v1/outbox/resend", json={"job_id": body["job_id"]}).json()
    assert resent == {"requeued": len(messages)}
    events = completed_events(lab, body["job_id"])
    assert_seq_increasing(events)
    assert {e["data"]["seq"] for e in events} == {m["seq"] for m in messages}
    detail = importer.client.get(f"/v1/outbox/{messages[0]['msg_id']}").json()
    assert [a["status_code"] for a in detail["attempts"]] == [410, 204]
    assert [a["trigger"] for a in detail["attempts"]] == ["scheduled", "manual"]
