"""Session-wide fixtures shared by every test folder: the Docker engine."""

from __future__ import annotations

import os

import pytest

from tests.support import engine

ENGINE_NAME = os.environ.get("FERRY_TEST_ENGINE", "test")


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of a running engine; a private one is started for the session when none answers."""
    try:
        host, started = engine.up(ENGINE_NAME)
    except engine.EngineUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = previous
    if started:
        engine.down(ENGINE_NAME)
