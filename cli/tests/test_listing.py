"""jobs, hosts, images (tables and --json) and the configuration errors every command shares."""

from __future__ import annotations

import json
import math

from cli.tests.support import drive, free_port, run_ferry, unique


def test_jobs_and_hosts_json_parse_and_show_what_the_backend_has(backend, host):
    job_id = unique("listed")
    driver = drive(backend, host.name, host.secret, job_id, speed=math.inf)
    driver.join(30)
    assert not driver.failures
    jobs = run_ferry("jobs", "--host", host.name, "--json", backend=backend)
    assert jobs.returncode == 0, jobs.stderr
    listed = json.loads(jobs.stdout)
    assert [(j["id"], j["state"], j["percent"]) for j in listed] == [(job_id, "succeeded", 100.0)]
    none_running = run_ferry("jobs", "--host", host.name, "--state", "running", "--json", backend=backend)
    assert json.loads(none_running.stdout) == []
    hosts = run_ferry("hosts", "--json", backend=backend)
    assert hosts.returncode == 0, hosts.stderr
    mine = next(h for h in json.loads(hosts.stdout) if h["name"] == host.name)
    assert mine["alive"] is True and mine["running"] == []  # callbacks count as signs of life


def test_tables_show_jobs_hosts_and_images(backend, host):
    job_id = unique("table")
    drive(backend, host.name, host.secret, job_id, speed=math.inf).join(30)
    jobs = run_ferry("jobs", "--host", host.name, backend=backend)
    assert jobs.returncode == 0 and job_id in jobs.stdout and "succeeded" in jobs.stdout
    hosts = run_ferry("hosts", backend=backend)
    assert hosts.returncode == 0 and host.name in hosts.stdout
    images = run_ferry("images", "--json", backend=backend)
    assert images.returncode == 0, images.stderr
    catalog = {entry["host"]: entry for entry in json.loads(images.stdout)}
    assert any("lab/watched:1" in image["tags"] for image in catalog[host.name]["images"])


def test_configuration_errors_have_distinct_exit_codes_and_one_line_messages(backend):
    cases = {
        "unreachable": (
            run_ferry("jobs", env={"FERRY_URL": f"http://127.0.0.1:{free_port()}", "FERRY_TOKEN": "t"}),
            3,
            "[backend_unreachable]",
        ),
        "no token": (run_ferry("jobs", env={"FERRY_URL": backend.url}), 4, "[missing_token]"),
        "bad token": (run_ferry("hosts", backend=backend, token="not-a-token"), 4, "[unauthorized]"),
        "unknown job": (run_ferry("events", "no-such-job", backend=backend), 6, "[job_not_found]"),
        "bad url": (run_ferry("jobs", "--url", "ftp://example", "--token", "t"), 2, "[invalid_url]"),
    }
    for name, (done, code, marker) in cases.items():
        assert done.returncode == code, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ferry: ") and marker in lines[0], (name, done.stderr)
