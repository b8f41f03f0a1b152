"""Import while the upload still arrives, in Chromium with a throttled upload, against the real backend, importer
and engine: Import is enabled during the upload, the engine takes bytes before the upload ends, the job card says
it waits for the upload, and the image arrives."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.e2e.stack import HOST, rootfs_archive

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]

UPLOAD_BPS = 1 << 20  # the browser's upload link: a 10 MiB archive takes about 10 s


def test_import_during_a_throttled_upload_takes_bytes_before_the_upload_ends(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-pipelined.tar.gz", 10 << 20)
    image = stack.image("pipelined")
    cdp = operator.page.context.new_cdp_session(operator.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BPS},
    )
    operator.page.locator("#file").set_input_files(archive)
    card = operator.start_import(HOST, image)  # Import is enabled while the upload runs
    job_id = operator.job_id(card)
    upload_id = stack.job(job_id)["upload_id"]

    deadline = time.monotonic() + 60
    while not any(e["data"]["bytes_done"] > 0 for e in stack.events(job_id)):
        assert time.monotonic() < deadline, stack.events(job_id)
        time.sleep(0.2)
    upload = httpx.get(
        f"{stack.url}/api/uploads/{upload_id}",
        headers={"Authorization": f"Bearer {stack.backend.admin_token}"},
        timeout=30,
    ).json()
    assert not upload["complete"] and upload["offset"] < upload["size"], upload  # bytes in the engine, upload going on

    assert operator.wait_final(card, timeout_s=120) == "succeeded", card.text_content()
    operator.page.get_by_text(re.compile(r"^Uploaded 10\.0 MiB")).wait_for(timeout=30_000)
    assert stack.image_present(image)
    phases = [e["data"]["phase"] for e in stack.events(job_id)]
    assert "waiting_for_upload" in phases and phases[-1] == "done"
    values = operator.bar_values(job_id)
    assert values == sorted(values) and values[-1] == 100, values
    waiting = [line for line in operator.status_lines(job_id) if line.startswith("Waiting for upload · ")]
    assert waiting and re.match(r"^Waiting for upload · \d+ % uploaded \(", waiting[0]), operator.status_lines(job_id)
    assert operator.console_errors == []


def test_cancel_upload_after_import_removes_the_upload_and_cancels_its_job(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-cancel-upload.tar.gz", 10 << 20)
    image = stack.image("cancel-upload")
    cdp = operator.page.context.new_cdp_session(operator.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BPS // 2},
    )
    operator.page.locator("#file").set_input_files(archive)
    card = operator.start_import(HOST, image)
    job_id = operator.job_id(card)
    upload_id = stack.job(job_id)["upload_id"]
    card.get_by_text(re.compile(r"^Waiting for upload · ")).wait_for(timeout=60_000)
    operator.page.get_by_role("button", name="Cancel upload").click()
    operator.page.get_by_text(re.compile(r"^Upload canceled and removed")).wait_for(timeout=30_000)
    assert operator.wait_final(card, timeout_s=60) == "canceled", card.text_content()
    gone = httpx.get(
        f"{stack.url}/api/uploads/{upload_id}",
        headers={"Authorization": f"Bearer {stack.backend.admin_token}"},
        timeout=30,
    )
    assert gone.status_code == 404
    assert not stack.image_present(image)
    assert operator.console_errors == []
