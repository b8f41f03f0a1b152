"""The hostile suite: one real backend for every test here (tests keep apart by unique host names and job ids).

Each test sends what a hostile or broken sender, uploader or client could send, then checks that the
answer is a 4xx with the error body and that everybody else is still served.
"""

from __future__ import annotations

import pytest

from backend.tests.support import Backend


@pytest.fixture(scope="session")
def hostile_backend(tmp_path_factory) -> Backend:
    web = tmp_path_factory.mktemp("hostile-web")
    (web / "index.html").write_text("<!doctype html><title>ferry</title><p>ferry operator page</p>")
    backend = Backend(
        tmp_path_factory.mktemp("hostile-backend"),
        env_extra={
            "FERRY_HOST_STALE_S": "3600",
            "FERRY_WEB_DIR": str(web),
            "FERRY_LOG_LEVEL": "info",  # access lines
            "FERRY_BODY_IDLE_S": "1",
            "FERRY_MAX_OPEN_BODIES": "100",
            "FERRY_LIVENESS_INTERVAL_S": "0.5",
        },
    )
    backend.start()
    yield backend
    backend.stop()
