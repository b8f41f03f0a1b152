"""Backend test fixtures: real `ferry-backend serve` processes on free ports, each with its own DATA_DIR."""

from __future__ import annotations

import pytest

from backend.tests.support import Backend


@pytest.fixture
def make_backend(tmp_path):
    started: list[Backend] = []

    def make(name: str = "backend", **env) -> Backend:
        backend = Backend(tmp_path / name, env_extra={k: str(v) for k, v in env.items()})
        started.append(backend)
        return backend.start()

    yield make
    for backend in started:
        backend.stop()


@pytest.fixture
def backend(make_backend) -> Backend:
    return make_backend()
