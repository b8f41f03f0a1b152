"""The page keeps telling the truth when the network or the backend does not cooperate: a backend
killed mid-import, and a proxy that breaks websocket upgrades."""

from __future__ import annotations

import re
import signal

import pytest

from tests.e2e.stack import HOST, rootfs_archive

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]

# What Chromium itself logs when a request fails; the page's own code logs nothing.
WEBSOCKET_FAILED = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/socket\.io/\?EIO=4&transport=websocket' failed"
CONNECTION_REFUSED = r"^Failed to load resource: net::ERR_CONNECTION_REFUSED$"


def assert_climbed_to_100(values: list[float], minimum: int) -> None:
    assert len(values) >= minimum, f"the bar should pass through several values: {values}"
    assert values == sorted(values), f"the bar never moves back: {values}"
    assert values[-1] == 100, values


def test_backend_killed_mid_import_the_page_recovers_and_finishes(operator, stack, tmp_path):
    archive = rootfs_archive(tmp_path / "ceos-restart.tar.gz", 12 << 20)
    image = stack.image("restart")
    operator.upload(archive)
    card = operator.start_import(HOST, image)
    job_id = operator.job_id(card)
    operator.wait_percent(card, 10)

    stack.stop_backend(signal.SIGKILL)
    # Within seconds the page says the backend is gone and the job has gone quiet; the bar keeps its value.
    operator.page.locator("#transport").filter(has_text=re.compile("^Backend unreachable · retrying$")).wait_for(
        timeout=15_000
    )
    card.locator(".stats").filter(has_text=re.compile(r" · no update for \d+ s$")).wait_for(timeout=15_000)
    operator.screenshot("backend-down")
    stack.start_backend()

    assert operator.wait_final(card, timeout_s=120) == "succeeded", card.text_content()
    operator.page.locator("#transport").filter(has_text=re.compile("^Live$")).wait_for(timeout=20_000)
    operator.screenshot("backend-restarted-done")
    assert_climbed_to_100(operator.bar_values(operator.job_id(card)), minimum=4)
    history = operator.transport_history()
    assert history[-1] == "Live" and "Backend unreachable · retrying" in history[history.index("Live") :], history
    assert stack.image_present(image)

    # What the dead backend missed, the importer's outbox delivered again: the log is complete.
    job = stack.job(job_id)
    seqs = [event["seq"] for event in stack.events(job_id)]
    assert seqs == sorted(set(seqs)) and seqs[-1] == job["seq"], seqs
    assert stack.events(job_id)[-1]["type"] == "import.completed"
    retried = [m for m in stack.importer.outbox(job_id)["messages"] if m["attempts"] > 1]
    assert retried, "some callbacks needed more than one attempt while the backend was down"

    # The page's timeline counts each seq once.
    card.get_by_role("button", name=re.compile("^Details of ")).click()
    rows = operator.page.locator('#details tbody tr[data-source]:not([data-source="replayed"])')
    rows.nth(len(seqs) - 1).wait_for()
    shown = [int(row.locator("td").first.text_content()) for row in rows.all()]
    assert shown == seqs, (shown, seqs)
    assert operator.unexpected_errors(WEBSOCKET_FAILED, CONNECTION_REFUSED) == []


def test_a_proxy_that_refuses_websockets_polling_finishes_the_job(open_operator, stack, tmp_path):
    proxy = stack.proxy(refuse_websocket=True)
    operator = open_operator(proxy.url)
    operator.page.locator("#transport").filter(has_text="Polling · websocket unavailable").wait_for(timeout=15_000)

    archive = rootfs_archive(tmp_path / "ceos-polled.tar.gz", 12 << 20)
    image = stack.image("polled")
    operator.upload(archive)
    card = operator.start_import(HOST, image)
    assert operator.wait_final(card) == "succeeded", card.text_content()
    operator.screenshot("polling-done")
    assert_climbed_to_100(operator.bar_values(operator.job_id(card)), minimum=3)
    assert proxy.refused > 0
    assert "Live" not in operator.transport_history()
    assert stack.image_present(image)

    # The proxy is fixed: the page goes back to the socket by itself.
    proxy.refuse_websocket = False
    operator.page.locator("#transport").filter(has_text=re.compile("^Live$")).wait_for(timeout=20_000)
    # Chromium logs each refused handshake; nothing else may appear.
    assert operator.unexpected_errors(WEBSOCKET_FAILED) == []
