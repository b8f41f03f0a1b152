"""The whole path with real processes: tus upload → backend → importer → Docker engine → signed callbacks → socket.

`ferry-backend serve` and `ferry-importer serve` run as subprocesses, the importer imports into the real
engine, a python-socketio client watches. The backend is killed mid-import and the importer's outbox
brings it up to date; a cancel through the backend leaves nothing on the host.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.integration.support import images_labelled
from tests.support.images import image_present

pytestmark = [pytest.mark.engine, pytest.mark.slow]
DONE = ("import.completed", "import.failed", "import.canceled")


def running(watcher, job_id: str) -> bool:
    return any(
        d["job_id"] == job_id and d["state"] == "running" and d["phase"] == "importing" for _, d, _ in watcher.received
    )


def ended(watcher) -> bool:
    return any(name in DONE for name, _, _ in watcher.received)


def assert_monotonic(events: list[tuple[str, dict, dict]]) -> None:
    seqs = [d["seq"] for _, d, _ in events]
    percents = [d["percent"] for _, d, _ in events]
    assert seqs == sorted(set(seqs)), f"seqs not strictly increasing: {seqs}"
    assert percents == sorted(percents), f"percent went back: {percents}"
    assert all(d["bytes_done"] <= (d["bytes_total"] or d["bytes_done"]) for _, d, _ in events)


async def test_upload_is_imported_on_the_host_and_watched_to_completion(lab):
    image, label = lab.image("complete"), lab.label("complete")
    job = await lab.start_import(image, label)
    watcher = await lab.watch(job["id"])
    try:
        await watcher.wait_for(lambda: ended(watcher), timeout=180)
    finally:
        await watcher.close()
    assert watcher.order[0] == "ack"
    names = [name for name, _, _ in watcher.received]
    assert names[0] == "import.queued" and names[-1] == "import.completed", names
    assert "import.progress" in names
    assert_monotonic(watcher.received)
    phases = [d["phase"] for _, d, _ in watcher.received]
    assert "importing" in phases and phases[-1] == "done"
    final = watcher.received[-1][1]
    assert final["percent"] == 100.0 and final["image"]["ref"] == image
    assert watcher.seqs() == await lab.logged_seqs(job["id"])  # the client saw every logged event, once
    snapshot = await lab.snapshot(job["id"])
    assert snapshot["state"] == "succeeded" and snapshot["result"]["ref"] == image
    assert image_present(lab.engine, image)
    assert lab.engine.api.inspect_image(image)["Config"]["Labels"]["ferry.itest"] == label


@pytest.mark.fault
async def test_backend_killed_mid_import_catches_up_from_the_importers_outbox(lab):
    image, label = lab.image("killed"), lab.label("killed")
    job = await lab.start_import(image, label)
    first = await lab.watch(job["id"])
    await first.wait_for(lambda: running(first, job["id"]), timeout=120)
    last_seen = first.seqs()[-1]
    lab.backend.stop(signal.SIGKILL)  # mid-import, no graceful shutdown
    await first.close()
    await asyncio.sleep(2)  # the importer goes on; its callbacks now fail and wait in its outbox
    await asyncio.to_thread(lab.backend.start)
    second = await lab.watch(job["id"], after_seq=last_seen)
    try:
        await second.wait_for(lambda: ended(second), timeout=180)
    finally:
        await second.close()
    seen = first.received + second.received
    assert_monotonic(seen)
    assert [name for name, _, _ in seen][-1] == "import.completed"
    assert first.seqs() + second.seqs() == await lab.logged_seqs(job["id"])  # nothing missed, nothing twice
    snapshot = await lab.snapshot(job["id"])
    assert snapshot["state"] == "succeeded" and image_present(lab.engine, image)
    outbox = lab.importer.outbox(job["id"])
    assert all(m["status"] in ("delivered", "coalesced") for m in outbox), outbox
    assert any(m["attempts"] >= 2 for m in outbox), "no callback needed a second attempt: the kill missed the import"


async def test_cancel_through_the_backend_mid_import_leaves_no_image(lab):
    image, label = lab.image("canceled"), lab.label("canceled")
    job = await lab.start_import(image, label)
    watcher = await lab.watch(job["id"])
    try:
        await watcher.wait_for(lambda: running(watcher, job["id"]), timeout=120)
        async with lab.backend.client(lab.backend.token("operator")) as http:
            response = await http.delete(f"/api/imports/{job['id']}")
        assert response.status_code == 202, response.text
        await watcher.wait_for(lambda: ended(watcher), timeout=120)
    finally:
        await watcher.close()
    name, data, _ = watcher.received[-1]
    assert name == "import.canceled" and data["state"] == "canceled"
    assert_monotonic(watcher.received)
    assert (await lab.snapshot(job["id"]))["state"] == "canceled"
    assert not image_present(lab.engine, image)
    assert images_labelled(lab.engine, label) == []  # not even an untagged layer of it
    spool = lab.importer.data_dir / "spool"
    assert not spool.exists() or not [p for p in spool.iterdir() if job["id"] in p.name]
