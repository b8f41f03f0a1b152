"""The operator page on a phone and at 800 px (running jobs first, nothing scrolls sideways), a job's
Details (when, from which file, by whom, and every delivery with its headers, body and answer), the
catalog's "made by" and Remove through the real importer and engine, and "keep me signed in"."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.operator_page import OperatorPage
from tests.e2e.stack import HOST, rootfs_archive

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}


def sign_in(page: OperatorPage, url: str, token: str, keep: bool = False) -> None:
    page.page.goto(url)
    page.page.get_by_label("Access token").fill(token)
    if keep:
        page.page.get_by_label("Keep me signed in on this browser").check()
    page.page.get_by_role("button", name="Sign in").click()
    page.page.get_by_role("heading", name="New import").wait_for()


def top(locator) -> float:
    return locator.bounding_box()["y"]


def test_on_a_phone_the_running_job_comes_first_and_nothing_scrolls_sideways(browser, stack, tmp_path):
    context = browser.new_context(viewport=PHONE)
    operator = OperatorPage(context.new_page())
    try:
        operator.sign_in(stack.url, stack.operator_token())
        operator.upload(rootfs_archive(tmp_path / "phone.tar.gz", 12 << 20))
        image = stack.image("phone")
        card = operator.start_import(HOST, image)
        operator.wait_percent(card, 1)
        page = operator.page
        page.evaluate("window.scrollTo(0, 0)")
        # The header is one line: the brand and Sign out side by side, no taller than a line of buttons.
        brand, sign_out = page.locator(".brand").bounding_box(), page.locator("#sign-out").bounding_box()
        assert abs((brand["y"] + brand["height"] / 2) - (sign_out["y"] + sign_out["height"] / 2)) < 6
        assert page.locator(".topbar").bounding_box()["height"] < 60
        # The running job is the first thing under the header, above the fold; the form comes after it.
        assert card.get_attribute("data-state") == "running"
        assert top(card) + 60 < PHONE["height"], top(card)
        assert top(page.locator("#progress")) < top(page.locator("#new-import"))
        assert not (overflow := operator.horizontal_overflow()), overflow
        operator.screenshot("phone-running")

        page.set_viewport_size({"width": 800, "height": 600})
        page.evaluate("window.scrollTo(0, 0)")
        assert top(card) + 60 < 600, top(card)
        assert not (overflow := operator.horizontal_overflow()), overflow

        assert operator.wait_final(card) == "succeeded", card.text_content()
        page.set_viewport_size(PHONE)
        operator.catalog_table(HOST).get_by_text(image, exact=True).wait_for(timeout=30_000)
        # Details, its deliveries opened, and the catalog with its images still fit the phone.
        card.get_by_role("button", name=f"Details of {image} on {HOST}").click()
        page.locator("#details").get_by_role("button", name="Show deliveries").click()
        group = page.locator("tr.delivery-group").first
        group.wait_for()
        group.get_by_role("button").click()
        page.locator("tr.delivery:visible").first.get_by_role("button").click()
        page.locator("tr.delivery-detail:visible").first.wait_for()
        assert not (overflow := operator.horizontal_overflow()), overflow
        operator.screenshot("phone-finished")
        assert operator.console_errors == []
    finally:
        context.close()


def test_details_say_when_from_which_file_and_by_whom_and_open_every_delivery(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-details.tar.gz", 12 << 20)
    image = stack.image("details")
    operator.upload(archive)
    card = operator.start_import(HOST, image)
    assert operator.wait_final(card) == "succeeded", card.text_content()
    page = operator.page
    card.get_by_role("button", name=f"Details of {image} on {HOST}").click()
    details = page.locator("#details")
    details.get_by_role("heading", name=f"{image} on {HOST}").wait_for()

    def summary(term: str) -> str:
        return details.locator(f"dl.summary dt:text-is('{term}') + dd").text_content()

    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (UTC|GMT[+-]?[\d:]*|[A-Z]{2,5})$")
    assert stamp.match(summary("Started")), summary("Started")
    assert stamp.match(summary("Ended")), summary("Ended")
    assert re.fullmatch(r"\d+ s|\d+ min \d\d s", summary("Duration")), summary("Duration")
    assert summary("Source file") == archive.name
    assert summary("Started by") == "test-operator"

    # Deliveries: runs of applied progress fold into one row; each delivery opens to what was sent and answered.
    details.get_by_role("button", name="Show deliveries").click()
    group = details.locator("tr.delivery-group").first
    group.wait_for()
    label = group.get_by_role("button").text_content()
    run = re.fullmatch(r"progress applied ×(\d+), seq (\d+)–(\d+)", label)
    assert run, label
    count, first, last = map(int, run.groups())
    assert count >= 3 and last - first + 1 == count, label
    members = details.locator("tr.delivery[data-verdict='applied']:visible")
    shown = members.count()
    group.get_by_role("button").click()
    assert members.count() == shown + count
    group.get_by_role("button").click()  # and folds again
    assert members.count() == shown

    completed = details.locator("tr.delivery", has=page.get_by_role("cell", name="completed", exact=True))
    completed.get_by_role("button").click()
    opened = completed.locator("xpath=following-sibling::tr[1]")
    assert "webhook-signature: v1," in opened.locator("[data-part='headers']").text_content()
    body = opened.locator("[data-part='body']").text_content()
    assert '"type": "import.completed"' in body and operator.job_id(card) in body
    assert opened.get_by_role("heading", name="Answer: HTTP 200").is_visible()
    assert '"verdict": "applied"' in opened.locator("[data-part='answer']").text_content()
    operator.screenshot("details-deliveries")
    assert operator.console_errors == []


def test_the_catalog_says_which_job_made_an_image_and_removes_it_unless_a_running_job_uses_it(
    operator, stack, tmp_path
):
    image = stack.image("removal")
    operator.upload(rootfs_archive(tmp_path / "first.tar.gz", 4 << 20))
    first = operator.start_import(HOST, image)
    assert operator.wait_final(first) == "succeeded"
    first_id = operator.job_id(first)
    page = operator.page
    row = operator.catalog_table(HOST).locator("tr", has=page.get_by_text(image, exact=True))
    row.wait_for(timeout=30_000)
    made_by = row.get_by_role("button", name=re.compile("^Details of the job that made"))
    assert made_by.text_content().startswith(first_id[:12])
    made_by.click()
    page.locator("#details").get_by_role("heading", name=f"{image} on {HOST}").wait_for()
    page.locator("#details").get_by_role("button", name="Close").click()

    # A second import to the same name is running: the host keeps the image and says why.
    operator.upload(rootfs_archive(tmp_path / "second.tar.gz", 24 << 20))
    page.get_by_label(HOST, exact=True).check()
    page.get_by_label("Image", exact=True).fill(image)
    page.get_by_role("button", name="Import", exact=True).click()
    second = page.locator(f'.job-card:not([data-job="{first_id}"])', has=page.get_by_text(f"{image} on {HOST}"))
    operator.wait_percent(second, 1)
    row.get_by_role("button", name=f"Remove {image} from {HOST}").click()
    row.get_by_role("button", name=f"Yes, remove {image} from {HOST}").click()
    page.locator("#catalog").get_by_text(re.compile(r"^Not removed: .*\(image_in_use\)$")).wait_for(timeout=15_000)
    assert second.get_attribute("data-state") == "running", "refused while the second import ran"
    assert stack.image_present(image)

    # Once it is done, Remove takes the image off the host through the engine.
    assert operator.wait_final(second) == "succeeded", second.text_content()
    page.locator("#catalog").get_by_role("button", name="Refresh").click()
    row.get_by_role("button", name=f"Remove {image} from {HOST}").click()
    row.get_by_role("button", name=f"Yes, remove {image} from {HOST}").click()
    page.locator("#catalog").get_by_text(f"Removed {image} from {HOST}.").wait_for(timeout=15_000)
    row.wait_for(state="detached", timeout=15_000)
    assert not stack.image_present(image)
    listed = httpx.get(
        f"{stack.url}/api/images", headers={"Authorization": f"Bearer {stack.operator_token()}"}, timeout=30
    ).json()
    assert image not in {t for group in listed for i in group["images"] for t in i["tags"]}
    assert operator.unexpected_errors(r"status of 409 \(Conflict\)") == []  # the refusal, answered 409


def test_keep_me_signed_in_reaches_other_tabs_only_when_asked_and_sign_out_forgets_it(browser, stack):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        first = OperatorPage(context.new_page())
        sign_in(first, stack.url, stack.operator_token())
        second = OperatorPage(context.new_page())
        second.page.goto(stack.url)
        second.page.get_by_label("Access token").wait_for()  # off by default: another tab asks again
        assert second.page.locator("#signin").is_visible()

        first.page.get_by_role("button", name="Sign out").click()
        sign_in(first, stack.url, stack.operator_token(), keep=True)
        second.page.reload()
        second.page.get_by_role("heading", name="New import").wait_for()  # kept: signed in by itself
        assert second.page.locator("#role").text_content() == "Signed in · operator"
        third = OperatorPage(context.new_page())
        third.page.goto(stack.url)
        third.page.get_by_role("heading", name="New import").wait_for()

        third.page.get_by_role("button", name="Sign out").click()
        third.page.get_by_label("Access token").wait_for()
        assert third.page.evaluate("() => [localStorage.length, sessionStorage.getItem('ferry.token')]") == [0, None]
        fourth = OperatorPage(context.new_page())
        fourth.page.goto(stack.url)
        fourth.page.get_by_label("Access token").wait_for()
        assert fourth.page.locator("#signin").is_visible()
        for tab in (first, second, third, fourth):
            assert tab.console_errors == []
    finally:
        context.close()
