"""`ferry simulate`: a synthetic import as signed callbacks into a real backend, and the scenario's rules."""

from __future__ import annotations

import json

import pytest

from cli.tests.support import new_secret, run_ferry, unique
from ferry_cli.simulate import FAILURES, TICK_S, scenario
from ferry_contract import make_import_event, parse_callback

SIZE = 50_000_000


def simulate(backend, host, job_id: str, *extra: str, secret: str | None = None):
    return run_ferry(
        "simulate",
        "--to",
        backend.url,
        "--host",
        host.name,
        "--secret",
        secret or host.secret,
        "--job-id",
        job_id,
        "--speed",
        "max",
        "--size",
        str(SIZE),
        "--seed",
        "7",
        "--json",
        *extra,
    )


def test_simulated_import_ends_succeeded_with_every_callback_applied(backend, host):
    job_id = unique("sim")
    done = simulate(backend, host, job_id)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    steps = scenario(job_id=job_id, host=host.name, image="lab/simulated:1", size=SIZE, seed=7)
    assert summary == {
        "job_id": job_id,
        "host": host.name,
        "outcome": "completed",
        "sent": len(steps),
        "accepted": {"applied": len(steps)},
        "refused": {},
        "not_sent": 0,
    }
    snapshot = backend.snapshot(job_id)
    assert (snapshot["state"], snapshot["phase"], snapshot["percent"], snapshot["seq"]) == (
        "succeeded",
        "done",
        100.0,
        len(steps),
    )
    assert snapshot["result"]["ref"] == "lab/simulated:1" and snapshot["result"]["id"].startswith("sha256:")
    phases = [e["data"]["phase"] for e in backend.events(job_id)]
    assert list(dict.fromkeys(phases)) == ["queued", "preparing", "importing", "finalizing", "verifying", "done"]


def test_simulated_failure_ends_failed_with_its_code_in_its_phase(backend, host):
    job_id = unique("simfail")
    done = simulate(backend, host, job_id, "--fail", "engine_error")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "failed"
    snapshot = backend.snapshot(job_id)
    assert snapshot["state"] == "failed" and snapshot["phase"] == "finalizing"
    assert snapshot["error"]["code"] == "engine_error" and snapshot["error"]["message"]


def test_simulate_with_a_wrong_secret_is_refused_stops_and_stores_nothing(backend, host):
    job_id = unique("simbad")
    done = simulate(backend, host, job_id, secret=new_secret())
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["refused"] == {"bad_signature": 1} and summary["sent"] == 1 and summary["not_sent"] > 0
    assert "refused" in done.stderr and "bad_signature" in done.stderr
    assert backend.get(f"/api/imports/{job_id}").status_code == 404


# --- the scenario, as pure data ----------------------------------------------------------------------


@pytest.mark.parametrize("fail", [None, "engine_error", "corrupt_compression", "source_not_found", "my_own_code"])
def test_every_simulated_event_is_a_valid_contract_callback(fail):
    steps = scenario(job_id="j1", host="h1", image="lab/x:1", size=SIZE, seed=1, fail=fail)
    for step in steps:
        body = make_import_event(step.type, step.data).model_dump_json()
        assert parse_callback(body).data.seq == step.data.seq
    assert [s.data.seq for s in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].type == ("import.completed" if fail is None else "import.failed")


@pytest.mark.parametrize("seed", range(5))
def test_simulated_progress_never_moves_back_and_is_never_silent(seed):
    steps = scenario(job_id="j1", host="h1", image="lab/x:1", size=600_000_000, seed=seed)
    percents = [s.data.percent for s in steps]
    assert percents == sorted(percents) and max(percents[:-1]) <= 99.0 and percents[-1] == 100.0
    gaps = [b.at - a.at for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= TICK_S + 1e-9
    rates = {round(s.data.rate_bps / 1e6) for s in steps if s.data.phase == "importing"}
    assert len(rates) > 3, "the rate changes during the import"


def test_finalizing_holds_at_99_percent_while_its_elapsed_seconds_rise():
    steps = scenario(job_id="j1", host="h1", image="lab/x:1", size=SIZE, seed=3, finalizing_s=4.0)
    final = [s.data for s in steps if s.data.phase == "finalizing"]
    elapsed = [d.phase_elapsed_s for d in final]
    assert len(final) >= 8 and elapsed == sorted(elapsed) and elapsed[-1] >= 4.0
    assert {d.percent for d in final} == {99.0} and all(d.bytes_done == SIZE for d in final)


def test_a_simulated_load_counts_layers_while_the_bar_keeps_climbing():
    steps = scenario(job_id="j1", host="h1", image="lab/x:1", size=SIZE, seed=4, layers=5)
    phases = list(dict.fromkeys(s.data.phase for s in steps))
    assert phases == ["queued", "preparing", "importing", "loading", "finalizing", "verifying", "done"]
    loading = [s.data for s in steps if s.data.phase == "loading"]
    counts = [d.layers_done for d in loading]
    assert len(loading) >= 4 and counts == sorted(counts) and counts[-1] == 5
    assert {d.layers_total for d in loading} == {5} and loading[-1].layer_bytes_done == loading[-1].layer_bytes_total
    assert loading[0].percent < loading[-1].percent <= 99.0
    percents = [s.data.percent for s in steps]
    assert percents == sorted(percents) and max(b.at - a.at for a, b in zip(steps, steps[1:])) <= TICK_S + 1e-9
    for step in steps:
        parse_callback(make_import_event(step.type, step.data).model_dump_json())


@pytest.mark.parametrize("code", sorted(FAILURES))
def test_each_known_failure_happens_in_the_phase_where_it_really_does(code):
    steps = scenario(job_id="j1", host="h1", image="lab/x:1", size=SIZE, seed=2, fail=code)
    last = steps[-1].data
    assert last.state == "failed" and last.error.code == code and last.phase == FAILURES[code][0]
