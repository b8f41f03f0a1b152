"""CLI test fixtures: two real backends per session (a source and a fresh replay target), started in
parallel because each start costs seconds on a busy host; tests keep apart by unique host and job names."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cli.tests.support import Backend, new_secret, unique


@dataclass
class Host:
    name: str
    secret: str


@pytest.fixture(scope="session")
def backends(tmp_path_factory) -> tuple[Backend, Backend]:
    started = [Backend(tmp_path_factory.mktemp(name)).launch() for name in ("source", "target")]
    try:
        for backend in started:
            backend.wait_ready()
        yield tuple(started)
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture(scope="session")
def backend(backends) -> Backend:
    """Where simulations and imports run."""
    return backends[0]


@pytest.fixture(scope="session")
def target(backends) -> Backend:
    """A second backend that has never seen the jobs of `backend`: replays go here."""
    return backends[1]


@pytest.fixture
def host(backend) -> Host:
    """A host registered on the source backend with a known webhook secret."""
    registered = Host(unique("lab"), new_secret())
    backend.add_host(registered.name, registered.secret)
    return registered


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Upload URLs remembered for resuming go to a per-test cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
