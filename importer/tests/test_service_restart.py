"""Restart safety on real processes: SIGKILL mid-job, SIGTERM with a queue, and the outbox across both."""

from __future__ import annotations

import os
import uuid

import pytest

from archives import docker_archive_from_layers, image_id_of, rootfs_files, tar_bytes, write
from importer.tests.service_process import Lab, assert_seq_increasing, labelled
from importer.tests.service_support import wait_until
from tests.support.images import image_present

pytestmark = [pytest.mark.engine, pytest.mark.timeout(240)]

SLOW_BPS = 1_000_000
SLOW_SIZE = 3_000_000


@pytest.fixture
def lab(tmp_path, docker_host, docker_client):
    world = Lab(tmp_path, docker_host)
    yield world
    world.close(docker_client)


def terminal_events(lab: Lab, job_id: str) -> list[dict]:
    return wait_until(
        lambda: (
            (events := lab.receiver.events(job_id))
            and events[-1]["type"] in ("import.completed", "import.failed", "import.canceled")
            and events
        ),
        60,
        what=f"the terminal callback of {job_id}",
    )


@pytest.mark.fault
def test_sigkill_mid_job_then_restart_drains_the_outbox_and_reports_the_job_failed(lab, docker_client):
    importer = lab.importer()
    write(lab.roots / "big.tar.gz", tar_bytes(rootfs_files(SLOW_SIZE)), "gzip")
    lab.files.throttle_bps = SLOW_BPS
    image = lab.image("killed")
    body = lab.job(image, {"url": lab.files.url("big.tar.gz")})
    importer.submit(**body)  # the receiver is down: every event waits in the outbox
    importer.wait_bytes(body["job_id"])
    spool = lab.data_dir / "spool" / body["job_id"]
    (spool / "partial.bin").write_bytes(b"x" * 1000)  # a temp file the dead job would leave behind
    importer.kill()
    assert lab.spool_entries() == [body["job_id"]]

    restarted = lab.importer()
    job = restarted.job(body["job_id"])
    assert job["state"] == "failed" and job["error"]["code"] == "importer_restarted", job
    assert lab.spool_entries() == []
    assert not image_present(docker_client, image)
    assert labelled(docker_client, lab.token) == []
    pending = [m for m in restarted.outbox(body["job_id"])["messages"] if m["status"] == "pending"]
    assert pending and pending[0]["seq"] == 1  # nothing was delivered before the crash

    lab.receiver.start()
    events = terminal_events(lab, body["job_id"])
    assert_seq_increasing(events)
    assert events[0]["type"] == "import.queued"
    assert events[-1]["type"] == "import.failed"
    assert events[-1]["data"]["error"]["code"] == "importer_restarted"
    assert any(e["data"]["bytes_done"] > 0 for e in events)  # progress from before the crash arrived too
    wait_until(lambda: restarted.outbox()["counts"]["pending"] == 0, 30, what="the outbox to drain")


@pytest.mark.fault
def test_sigterm_fails_the_running_job_and_the_queued_one_runs_after_the_restart(lab, docker_client):
    lab.receiver.start()
    importer = lab.importer(max_concurrent=1)
    write(lab.roots / "big.tar.gz", tar_bytes(rootfs_files(SLOW_SIZE)), "gzip")
    small = write(lab.roots / "small.tar", tar_bytes(rootfs_files(100_000)))
    lab.files.throttle_bps = SLOW_BPS
    running = lab.job(lab.image("stopped"), {"url": lab.files.url("big.tar.gz")})
    waiting = lab.job(lab.image("waits"), {"path": str(small)})
    importer.submit(**running)
    importer.wait_bytes(running["job_id"])
    assert importer.submit(**waiting).json()["state"] == "queued"
    assert importer.stop() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "Application shutdown complete" in importer.log()

    events = terminal_events(lab, running["job_id"])  # sent during the graceful stop
    assert events[-1]["data"]["error"]["code"] == "interrupted"
    assert not image_present(docker_client, running["image"])
    assert lab.spool_entries() == []

    restarted = lab.importer(max_concurrent=1)
    job = restarted.wait_state(waiting["job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    queued_events = terminal_events(lab, waiting["job_id"])
    assert_seq_increasing(queued_events)
    assert queued_events[0]["type"] == "import.queued" and queued_events[-1]["type"] == "import.completed"
    assert restarted.job(running["job_id"])["state"] == "failed"
    assert image_present(docker_client, waiting["image"])


@pytest.mark.fault
def test_an_importer_killed_while_the_engine_finishes_a_load_undoes_the_load_when_it_starts_again(lab, docker_client):
    lab.receiver.start()
    importer = lab.importer()
    tag = lab.image("loaded-after-kill")
    layers = [tar_bytes({f"blob{i}.bin": os.urandom(24 * 1024 * 1024)}) for i in range(3)]
    saved = docker_archive_from_layers(layers, [tag], style="hex-tar")
    archive = write(lab.roots / "save.tar", saved)
    job_id = f"job-{uuid.uuid4().hex[:10]}"
    importer.submit(
        job_id=job_id,
        image=tag,
        source={"path": str(archive)},
        format="load",
        callback_url=lab.receiver.url("/api/callbacks/lab1"),
    )
    seen = wait_until(
        lambda: (job := importer.job(job_id))["phase"] in ("loading", "finalizing", "verifying", "done") and job,
        60,
        interval=0.01,
        what="the engine to have every byte",
    )
    importer.kill()
    assert seen["state"] == "running", f"the kill must land while the engine loads: {seen}"
    # The engine goes on without us: the image and its tag arrive after the importer died.
    wait_until(lambda: image_present(docker_client, tag), 60, what="the engine to finish the load")
    assert list((lab.data_dir / "rollback").glob("*.json")), "what to undo was written down before the engine had it"

    restarted = lab.importer()
    job = restarted.job(job_id)
    assert job["state"] == "failed" and job["error"]["code"] == "importer_restarted", job
    assert not image_present(docker_client, tag)
    assert not image_present(docker_client, image_id_of(saved)), "the loaded image and its layers are gone"
    assert list((lab.data_dir / "rollback").glob("*")) == []
