"""Operator tools seen in the page: `ferry simulate` (signed callbacks, no Docker) drives the bars;
the job timeline's Replay shows a job's story again without changing it, and its deliveries list
what the backend received."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from backend.tests.support import new_secret

pytestmark = [pytest.mark.engine, pytest.mark.browser, pytest.mark.slow]  # the shared stack runs the engine

FERRY = Path(sys.executable).with_name("ferry")


@pytest.fixture
def sim_host(stack):
    """A host registered for simulations only: callbacks signed with its secret, no importer behind it."""
    name, secret = f"sim-{uuid.uuid4().hex[:6]}", new_secret()
    response = httpx.post(
        stack.url + "/api/hosts",
        json={"name": name, "url": "http://127.0.0.1:9", "token": "simulated-importer", "webhook_secret": secret},
        headers={"Authorization": f"Bearer {stack.backend.admin_token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return name, secret


def simulate(stack, host: str, secret: str, job_id: str, image: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(FERRY),
            "simulate",
            "--to",
            stack.url,
            "--host",
            host,
            "--secret",
            secret,
            "--job-id",
            job_id,
            "--image",
            image,
            "--seed",
            "7",
            "--speed",
            "5",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_simulated_imports_drive_the_bars_to_their_end(operator, stack, sim_host):
    host, secret = sim_host
    ok_id, bad_id = f"sim-ok-{uuid.uuid4().hex[:6]}", f"sim-bad-{uuid.uuid4().hex[:6]}"
    runs = [
        simulate(stack, host, secret, ok_id, "lab/simulated:1"),
        simulate(stack, host, secret, bad_id, "lab/broken:1", "--fail", "insufficient_disk"),
    ]

    # Jobs this page did not start get a card while they run, and keep it with their outcome.
    page = operator.page
    ok_card, bad_card = (page.locator(f'.job-card[data-job="{job_id}"]') for job_id in (ok_id, bad_id))
    assert operator.wait_final(ok_card) == "succeeded"
    assert operator.wait_final(bad_card) == "failed"
    operator.screenshot("simulated")
    for run in runs:
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0, output  # every callback was accepted
    values = operator.bar_values(ok_id)
    assert len(values) >= 5 and values == sorted(values) and values[-1] == 100, values
    assert "Imported lab/simulated:1 · " in ok_card.text_content()
    assert re.search(r"Failed: .+ \(insufficient_disk\)", bad_card.locator(".stats").text_content())
    # The backend knows these jobs only from their callbacks: it calls their image "unknown" until a
    # completion names it. The page names them by that image, else by their id.
    assert stack.job(bad_id)["image"] == "unknown"
    assert ok_card.locator(".job-title").text_content() == f"lab/simulated:1 on {host}"
    assert bad_card.locator(".job-title").text_content() == f"job {bad_id} on {host}"
    # Simulated jobs are marked, and left out of the jobs list until asked for.
    assert ok_card.locator('.tag[data-origin="simulated"]').text_content() == "simulated"
    assert page.locator(f'#jobs tr[data-job="{bad_id}"]').count() == 0
    page.get_by_label("simulated and replayed").check()
    page.locator(f'#jobs tr[data-job="{bad_id}"] td').first.filter(has_text=f"job {bad_id}").wait_for()
    assert page.locator(f'#jobs tr[data-job="{bad_id}"] .tag').text_content() == "simulated"
    assert operator.console_errors == []


def test_replay_shows_the_story_again_and_changes_nothing(operator, stack, sim_host):
    host, secret = sim_host
    job_id = f"sim-replay-{uuid.uuid4().hex[:6]}"
    run = simulate(stack, host, secret, job_id, "lab/replayed:1")
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    before = stack.job(job_id)
    stored = [event["seq"] for event in stack.events(job_id)]

    page = operator.page
    page.get_by_label("simulated and replayed").check()
    row = page.locator(f'#jobs tr[data-job="{job_id}"]')
    row.get_by_role("button", name=re.compile("^Details of ")).click()
    timeline = page.locator("#details tbody tr")
    page.locator('#details tbody tr:not([data-source="replayed"])').nth(len(stored) - 1).wait_for()
    replay = page.get_by_role("button", name="Play back", exact=True)
    assert replay.is_visible(), "the backend has the replay endpoint: the page offers it"

    page.get_by_label("Playback speed").select_option("max")
    replay.click()
    page.locator('#details tbody tr[data-source="replayed"]').nth(len(stored) - 1).wait_for(timeout=15_000)
    page.get_by_text(re.compile(rf"^Playing back {len(stored)} stored events")).wait_for()
    operator.screenshot("timeline-replayed")
    assert page.locator("#details tr.replay-group").count() == 1
    rows = [
        (r.get_attribute("data-source"), int(r.locator("td").first.text_content()))
        for r in timeline.all()
        if r.get_attribute("data-source")
    ]
    assert [seq for source, seq in rows if source != "replayed"] == stored, "each counted event once, in order"
    assert [seq for source, seq in rows if source == "replayed"] == stored, "each replayed event once, in order"

    # What the backend received: one applied delivery per event, in the same order (a run of progress
    # deliveries is folded into one row: its members are there, hidden until it is opened).
    page.get_by_role("button", name="Show deliveries").click()
    deliveries = page.locator("#details table.deliveries tbody tr.delivery")
    deliveries.nth(len(stored) - 1).wait_for(state="attached")
    assert [int(r.locator("td").nth(2).text_content()) for r in deliveries.all()] == stored
    assert {r.get_attribute("data-verdict") for r in deliveries.all()} == {"applied"}
    page.get_by_text(f"{len(stored)} deliveries: {len(stored)} applied.").wait_for()
    page.locator("#details .deliveries-section").scroll_into_view_if_needed()
    operator.screenshot("timeline-deliveries")

    # Nothing moved: the backend's snapshot, the page's summary and the list row.
    assert stack.job(job_id) == before
    assert page.locator("#details .summary").get_by_text(re.compile("^succeeded · Done · 100.0 %$")).is_visible()
    assert row.locator(".badge").text_content() == "succeeded"
    assert operator.console_errors == []


def test_a_viewer_watches_live_but_gets_no_operator_controls(open_operator, stack, sim_host):
    viewer = open_operator(role="viewer")
    page = viewer.page
    page.get_by_text("This token may watch imports but not start them (viewer role).").wait_for()
    assert page.locator("#file").count() == 0 and page.get_by_role("button", name="Import", exact=True).count() == 0

    host, secret = sim_host
    job_id = f"sim-viewer-{uuid.uuid4().hex[:6]}"
    run = simulate(stack, host, secret, job_id, "lab/watched:1")
    card = page.locator(f'.job-card[data-job="{job_id}"]')
    card.wait_for()
    assert card.get_by_role("button", name=re.compile("^Cancel")).count() == 0, "viewers cannot cancel"
    assert viewer.wait_final(card) == "succeeded"
    assert run.wait(60) == 0
    values = viewer.bar_values(job_id)
    assert len(values) >= 5 and values == sorted(values) and values[-1] == 100, values

    card.get_by_role("button", name=re.compile("^Details of ")).click()
    page.locator("#details tbody tr[data-source]").first.wait_for()
    assert not page.get_by_role("button", name="Play back", exact=True).is_visible()
    assert not page.get_by_role("button", name="Show deliveries").is_visible()
    viewer.screenshot("viewer")
    assert viewer.console_errors == []
