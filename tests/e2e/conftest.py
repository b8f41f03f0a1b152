"""End-to-end fixtures: one real stack (backend, importer, engine) and one Chromium for the whole
package; a fresh browser context (a new tab session: no token, no tracked jobs) per test."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.operator_page import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, OperatorPage
from tests.e2e.stack import WEB_DIR, Stack

# The backend → importer link: slow enough that a 12 MiB archive takes a few seconds to import, so
# the bar passes through many values and a restart can land mid-import.
LINK_RATE_BPS = float(os.environ.get("FERRY_E2E_LINK_BPS", 3 * 1024 * 1024))


@pytest.fixture(scope="package")
def stack(docker_host, tmp_path_factory):
    if not (WEB_DIR / "app.js").is_file():
        pytest.fail(f"the page is not built in {WEB_DIR}: run `make setup`", pytrace=False)
    stack = Stack(tmp_path_factory.mktemp("e2e"), docker_host, LINK_RATE_BPS)
    try:
        stack.start()
    except BaseException:
        stack.close()
        raise
    yield stack
    stack.close()


@pytest.fixture(scope="package")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"no Chromium at {CHROMIUM} (make system-deps installs Debian's; CHROMIUM=… to use another)", pytrace=False
        )
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_operator(browser, stack, request):
    """Open the page at 1366×768 in a fresh context and sign in (as an operator unless `role` says
    otherwise); `url` another origin (a proxy) than the backend's. On failure the pages' screenshots
    and the services' logs are kept."""
    opened: list[tuple[object, OperatorPage]] = []

    def open_page(url: str | None = None, role: str = "operator") -> OperatorPage:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = OperatorPage(context.new_page())
        opened.append((context, page))
        page.sign_in(url or stack.url, stack.backend.token(role))
        return page

    yield open_page
    report = getattr(request.node, "rep_call", None)
    for index, (context, page) in enumerate(opened):
        if report is not None and report.failed:
            page.screenshot(f"failed-{request.node.name}-{index}")
            print("console errors:", page.console_errors)
        context.close()
    if report is not None and report.failed:
        print(stack.logs())


@pytest.fixture
def operator(open_operator) -> OperatorPage:
    """The page, signed in as an operator, straight at the backend."""
    return open_operator()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
