"""The operator page against the real backend, importer and engine: an import from the file picker to
the catalog (tidy at 1366×768 and 1920×1080, and still signed in after a reload), a failed import that
shows its code, a canceled one that leaves nothing behind."""

from __future__ import annotations

import re

import pytest

from tests.e2e.stack import HOST, corrupt_archive, rootfs_archive

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]


def test_upload_and_import_climb_to_100_and_reach_the_catalog(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-lab-4.35.1F.tar.gz", 12 << 20)
    image = stack.image("ceos")
    operator.upload(archive)
    card = operator.start_import(HOST, image)

    assert operator.wait_final(card) == "succeeded", card.text_content()
    operator.screenshot("import-succeeded")
    values = operator.bar_values(operator.job_id(card))
    assert len(values) >= 5, f"the bar should pass through several values: {values}"
    assert values == sorted(values), f"the bar never moves back: {values}"
    assert values[-1] == 100
    assert any(0 < v < 100 for v in values), values
    job = stack.job(operator.job_id(card))
    assert job["state"] == "succeeded"
    assert re.search(rf"Imported {re.escape(image)} · {job['result']['id'][7:19]} · \d", card.text_content())

    # The image is really in the engine, and the page's catalog lists it for the host.
    assert stack.image_present(image)
    operator.catalog_table(HOST).get_by_text(image).wait_for(timeout=30_000)
    operator.catalog_table(HOST).get_by_text(image).scroll_into_view_if_needed()
    operator.screenshot("catalog")

    # Removed from the host, it leaves the catalog at the next refresh.
    stack.remove_image(image)
    operator.page.locator("#catalog").get_by_role("button", name="Refresh").click()
    operator.catalog_table(HOST).get_by_text(image).wait_for(state="detached", timeout=30_000)
    assert operator.transport() == "Live"

    # Tidy at 1366×768 and wider: nothing scrolls sideways.
    assert operator.horizontal_overflow() == []
    operator.page.set_viewport_size({"width": 1920, "height": 1080})
    assert operator.horizontal_overflow() == []

    # A reload keeps the session: still signed in, the job's card still there with its outcome.
    operator.reload()
    assert operator.page.locator("#signin").is_hidden()
    assert operator.page.locator("#role").text_content() == "Signed in · operator"
    card = operator.card(image, HOST)
    card.wait_for()
    assert card.get_attribute("data-state") == "succeeded"
    assert operator.horizontal_overflow() == []
    assert operator.console_errors == []


def test_a_corrupt_archive_fails_with_its_code(operator, stack, tmp_path):
    archive = corrupt_archive(tmp_path / "broken.tar.xz")
    image = stack.image("broken")
    operator.upload(archive)
    card = operator.start_import(HOST, image)

    assert operator.wait_final(card) == "failed"
    job = stack.job(operator.job_id(card))
    code = job["error"]["code"]
    assert code in ("corrupt_compression", "truncated_compression"), job["error"]
    status = card.locator(".stats")
    assert status.text_content() == f"Failed: {job['error']['message']} ({code})"
    assert card.get_by_role("progressbar").get_attribute("data-tone") == "bad"
    operator.screenshot("import-failed")
    assert not stack.image_present(image), "nothing is left behind"
    assert operator.console_errors == []


def test_cancel_from_the_page_stops_the_import_and_leaves_no_image(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-cancel.tar.gz", 12 << 20)
    image = stack.image("canceled")
    operator.upload(archive)
    card = operator.start_import(HOST, image)
    operator.wait_percent(card, 5)
    card.get_by_role("button", name=f"Cancel {image} on {HOST}").click()
    card.get_by_role("button", name=f"Yes, cancel {image} on {HOST}").click()

    assert operator.wait_final(card) == "canceled", card.text_content()
    assert card.locator(".stats").text_content() == "Canceled"
    assert stack.job(operator.job_id(card))["state"] == "canceled"
    assert not stack.image_present(image), "a canceled import leaves no image behind"
    values = operator.bar_values(operator.job_id(card))
    assert values == sorted(values) and values[-1] < 100, values
    assert operator.console_errors == []
