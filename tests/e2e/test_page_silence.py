"""A lab host that goes quiet is a doubt on the page, never a failure: the importer frozen (SIGSTOP) mid-import,
then resumed (SIGCONT). Its own stack, with silence limits of seconds instead of a minute."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.e2e.operator_page import OperatorPage
from tests.e2e.stack import HOST, Stack, rootfs_archive

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def quiet_stack(docker_host, tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e-silence"), docker_host, 3 * 1024 * 1024)
    stack.backend.env_extra.update({"FERRY_HOST_STALE_S": "4", "FERRY_LIVENESS_INTERVAL_S": "0.5"})
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


def test_a_frozen_importer_reads_as_silent_on_the_page_and_its_job_then_succeeds(browser, quiet_stack, tmp_path):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    operator = OperatorPage(context.new_page())
    pid = quiet_stack.importer.proc.pid
    try:
        operator.sign_in(quiet_stack.url, quiet_stack.backend.token("operator"))
        operator.upload(rootfs_archive(tmp_path / "frozen.tar.gz", 12 << 20))
        image = quiet_stack.image("frozen")
        card = operator.start_import(HOST, image)
        operator.wait_percent(card, 10)
        os.kill(pid, signal.SIGSTOP)
        try:
            # The card keeps the job unfinished and says in words how long the host has been silent ...
            card.locator(".stats").filter(has_text=re.compile(rf" · no word from {HOST} for \d+ s$")).wait_for(
                timeout=20_000
            )
            assert card.get_attribute("data-state") == "running" and card.get_attribute("data-doubt") == "true"
            # ... and the host list says "silent for N s", not "online" beside an old "Seen".
            operator.page.locator(f'#hosts li[data-host="{HOST}"] .host-liveness').filter(
                has_text=re.compile(r"^silent for \d+ s$")
            ).wait_for(timeout=20_000)
            operator.screenshot("importer-frozen")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert operator.wait_final(card, timeout_s=120) == "succeeded", card.text_content()
        assert card.get_attribute("data-doubt") == "false"
        job = quiet_stack.job(operator.job_id(card))
        assert job["state"] == "succeeded" and job["doubt"] is None and not job["presumed"]
        assert [e["type"] for e in quiet_stack.events(job["id"])].count("import.failed") == 0
        operator.page.locator(f'#hosts li[data-host="{HOST}"] .host-liveness').filter(
            has_text=re.compile("^online$")
        ).wait_for(timeout=20_000)
    finally:
        context.close()
