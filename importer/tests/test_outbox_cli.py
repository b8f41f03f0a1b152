"""`ferry-importer outbox list|redeliver|recover` against the outbox of a real serve process."""

from __future__ import annotations

import json
import subprocess

import pytest

from archives import rootfs_files, tar_bytes, write
from ferry_importer.cli_serve import parse_since
from importer.tests.service_process import BIN, Lab, assert_seq_increasing
from importer.tests.service_support import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]


def outbox_cli(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), "outbox", *args, "--data-dir", str(lab.data_dir)], capture_output=True, text=True, timeout=60
    )


def listed(lab: Lab, *args: str) -> list[dict]:
    done = outbox_cli(lab, "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def lab(tmp_path, docker_host, docker_client):
    world = Lab(tmp_path, docker_host)
    world.importer(outbox_expire_s=1.5, heartbeat_s=30)
    yield world
    world.close(docker_client)


def test_recover_redelivers_what_failed_while_the_backend_was_down(lab):
    importer = lab.processes[0]
    path = write(lab.roots / "down.tar.gz", tar_bytes(rootfs_files(200_000)), "gzip")
    body = lab.job(lab.image("down"), {"path": str(path)})
    importer.submit(**body)  # the receiver is not running: every delivery fails until it expires
    assert importer.wait_state(body["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
    given_up = wait_until(
        lambda: (
            (ms := listed(lab, "--job", body["job_id"]))
            and all(m["status"] in ("expired", "coalesced") for m in ms)
            and ms
        ),
        30,
        what="the job's callbacks to expire",
    )
    failed = listed(lab, "--failed", "--job", body["job_id"])
    assert {m["msg_id"] for m in failed} == {m["msg_id"] for m in given_up if m["status"] == "expired"}
    assert all(a["trigger"] == "scheduled" and a["status_code"] is None for m in failed for a in m["attempts"])

    lab.receiver.start()
    done = outbox_cli(lab, "recover", "--since", "1h")
    assert done.returncode == 0 and f"requeued {len(failed)} callback(s)" in done.stdout, done.stdout + done.stderr
    events = wait_until(
        lambda: (ev := lab.receiver.events(body["job_id"])) and len(ev) == len(failed) and ev,
        30,
        what="the recovered callbacks",
    )
    assert_seq_increasing(events)
    assert events[0]["type"] == "import.queued" and events[-1]["type"] == "import.completed"
    after = wait_until(
        lambda: (ms := listed(lab, "--job", body["job_id"])) and all(m["status"] != "pending" for m in ms) and ms,
        30,
        what="the outbox to drain",
    )
    for message in (m for m in after if m["status"] == "delivered"):
        assert message["attempts"][-1]["trigger"] == "manual" and message["attempts"][-1]["status_code"] == 204
    assert listed(lab, "--failed", "--job", body["job_id"]) == []

    final = next(m for m in after if m["type"] == "import.completed")
    done = outbox_cli(lab, "redeliver", final["msg_id"])
    assert done.returncode == 0, done.stderr
    copies = wait_until(
        lambda: (ds := [d for d in lab.receiver.verified() if d.webhook_id == final["msg_id"]]) and len(ds) == 2 and ds,
        30,
        what="the redelivered copy",
    )
    assert copies[0].body == copies[1].body  # same event, same webhook-id: a receiver dedupes it
    assert outbox_cli(lab, "redeliver", "msg_unknown").returncode == 1


def test_since_takes_durations_and_iso_times():
    now = 1_000_000.0
    assert parse_since("2h", now) == now - 7200
    assert parse_since("30m", now) == now - 1800
    assert parse_since("1d", now) == now - 86400
    assert parse_since("1970-01-01T00:00:10+00:00", now) == 10
    with pytest.raises(Exception, match="duration"):
        parse_since("yesterday", now)
