"""Backend logs are JSON lines naming the job and lab host they are about, and the replica that wrote them."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import uuid

from backend.tests.support import free_port, job_state, wait_until
from ferry_backend.logs import bind, log_config


def test_lines_carry_the_job_and_host_bound_by_the_task_that_logs_them(capsys):
    logging.config.dictConfig(log_config("info", "json", replica="r1"))
    log = logging.getLogger("ferry.test")

    async def handle(job: str, host: str) -> None:
        bind(job_id=job, host=host)
        await asyncio.sleep(0)
        log.warning("handling %s", job)

    async def main() -> None:
        log.info("outside any job")
        await asyncio.gather(handle("job-1", "lab1"), handle("job-2", "lab2"))  # each task keeps its own context
        log.info("after the jobs")
        log.info("explicit", extra={"job_id": "job-3", "host": "lab3"})

    try:
        asyncio.run(main())
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["message"], line["job_id"], line["host"]) for line in lines] == [
        ("outside any job", None, None),
        ("handling job-1", "job-1", "lab1"),
        ("handling job-2", "job-2", "lab2"),
        ("after the jobs", None, None),
        ("explicit", "job-3", "lab3"),
    ]
    assert all(line["replica"] == "r1" and line["logger"] == "ferry.test" and "time" in line for line in lines)


async def test_a_serving_backend_logs_a_failed_dispatch_as_json_with_job_and_host(backend):
    async with backend.client(backend.token("viewer")) as http:
        assert (await http.get("/openapi.json")).status_code == 200  # building it once warned on stderr (not JSON)
    host = await backend.add_host(f"logs-{uuid.uuid4().hex[:6]}", url=f"http://127.0.0.1:{free_port()}")
    async with backend.client(backend.token("operator")) as http:
        job = (
            await http.post(
                "/api/imports", json={"source_url": "http://files.lab/x.tar", "hosts": [host.name], "image": "x:1"}
            )
        ).json()["jobs"][0]

    async def failed():
        return (await job_state(backend, job["id"]))["state"] == "failed"

    await wait_until(failed)
    text = (backend.data_dir / "backend.log").read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    about = [r for r in records if r.get("job_id") == job["id"]]
    assert about and all(r["host"] == host.name and r["level"] == "WARNING" for r in about)
    assert any("dispatch" in r["message"] for r in about)
    assert len({r["replica"] for r in records}) == 1
    assert not [r for r in records if r["level"] == "WARNING" and r["logger"] == "py.warnings"]


def test_a_content_stream_broken_off_on_purpose_is_one_warning_and_other_errors_keep_their_traceback(capsys):
    from ferry_backend.content import UploadAbandoned, UploadGone

    logging.config.dictConfig(log_config("info", "json", replica="r1"))
    log = logging.getLogger("uvicorn.error")
    try:
        for exc in (ExceptionGroup("task group", [UploadAbandoned("up-1")]), UploadGone("up-2"), ValueError("bug")):
            try:
                raise exc
            except Exception as caught:  # noqa: BLE001 - logged as uvicorn logs a failed response
                log.error("Exception in ASGI application\n", exc_info=caught)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    abandoned, removed, bug = lines
    assert (abandoned["level"], abandoned["message"]) == (
        "WARNING",
        "the content stream of upload up-1 ended: the upload was abandoned",
    )
    assert "exc_info" not in abandoned and removed["message"].endswith("the upload was removed")
    assert bug["level"] == "ERROR" and "ValueError: bug" in bug["exc_info"]
