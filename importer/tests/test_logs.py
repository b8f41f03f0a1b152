"""Service logs are JSON lines carrying host and job_id; a real serve process writes them."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from archives import rootfs_files, tar_bytes, write
from ferry_importer.logs import current_job, log_config
from importer.tests.service_process import Lab
from importer.tests.service_support import wait_until


def test_json_lines_carry_host_and_the_job_in_progress(capsys):
    logging.config.dictConfig(log_config("lab7", "info", "json"))
    try:
        logging.getLogger("ferry_importer.test").info("outside a job")
        token = current_job.set("job-42")
        logging.getLogger("ferry_importer.test").warning("inside %s", "a job")
        current_job.reset(token)
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"], line["host"], line["job_id"]) for line in lines] == [
        ("INFO", "outside a job", "lab7", None),
        ("WARNING", "inside a job", "lab7", "job-42"),
    ]
    assert lines[0]["logger"] == "ferry_importer.test" and "time" in lines[0]


@pytest.mark.engine
def test_a_serve_process_logs_its_jobs_as_json_with_their_id(tmp_path, docker_host, docker_client):
    lab = Lab(tmp_path, docker_host)
    try:
        importer = lab.importer()  # the receiver is down: delivery failures are logged inside the job's context
        path = write(lab.roots / "a.tar", tar_bytes(rootfs_files(50_000)), "none")
        body = lab.job(lab.image("logs"), {"path": str(path)})
        importer.submit(**body)
        importer.wait_state(body["job_id"], {"succeeded", "failed"})

        def job_lines():
            records = [json.loads(line) for line in importer.log().splitlines() if line.startswith("{")]
            return [r for r in records if r.get("job_id") == body["job_id"]] or None

        lines = wait_until(job_lines, 20, what="log lines of the job")
        assert all(r["host"] == "lab1" and r["level"] in {"INFO", "WARNING", "ERROR"} for r in lines)
        assert any("retry" in r["message"] for r in lines)
        assert all(line.startswith("{") for line in importer.log().splitlines() if line.strip())
    finally:
        lab.close(docker_client)
