"""A docker-save load's `loading` events pass the receiver, the store and the snapshot as the importer signed them."""

from __future__ import annotations

import uuid

from backend.tests.support import event_data


async def test_a_loading_event_is_stored_with_its_layer_counts_and_the_snapshot_keeps_them(backend):
    importer = await backend.add_host("ld-" + uuid.uuid4().hex[:8])
    job = "job_" + uuid.uuid4().hex[:12]
    await importer.send("import.queued", event_data(job, importer.name, 1, state="queued", phase="queued", percent=0.0))
    layers = {"layers_done": 3, "layers_total": 7, "layer_bytes_done": 120_000_000, "layer_bytes_total": 270_000_000}
    response = await importer.send(
        "import.progress", event_data(job, importer.name, 2, phase="loading", percent=61.5, **layers)
    )
    assert response.status_code < 300, response.text
    async with backend.client(backend.token("viewer")) as http:
        snapshot = (await http.get(f"/api/imports/{job}")).json()
        stored = (await http.get(f"/api/imports/{job}/events")).json()
    assert snapshot["phase"] == "loading" and snapshot["percent"] == 61.5
    assert {key: stored[-1]["data"][key] for key in layers} == layers
    assert {key: snapshot[key] for key in layers} == layers  # a page or CLI that starts from the snapshot shows them
    assert snapshot["bytes_available"] is None
