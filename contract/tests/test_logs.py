"""The shared log-line contract: text lines name host and job only when there are any."""

from __future__ import annotations

import logging
import logging.config

from ferry_contract.logs import bind, log_config


def test_text_lines_show_host_and_job_in_brackets_only_when_known(capsys):
    logging.config.dictConfig(log_config("info", "text", host=None))
    log = logging.getLogger("ferry.test")
    try:
        log.info("starting")
        log.info("one job", extra={"job_id": "job-9", "host": "lab2"})
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith(" INFO ferry.test starting")
    assert second.endswith(" INFO ferry.test [lab2 job-9] one job")


def test_the_process_host_is_the_default_and_a_bound_host_wins(capsys):
    import asyncio

    logging.config.dictConfig(log_config("info", "text", host="lab1"))
    log = logging.getLogger("ferry.test")

    async def bound() -> None:
        bind(job_id="job-1", host="lab7")
        log.info("bound")

    try:
        log.info("default")
        asyncio.run(bound())
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith("[lab1] default") and second.endswith("[lab7 job-1] bound")
