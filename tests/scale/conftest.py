"""Scale-out fixtures: one Postgres, Redis, two backend replicas behind nginx for the whole run.

A second, quiet cluster (its own Redis and database, one replica, its own nginx) starts with the first scale
test and is left alone until the idle test, which runs last and only waits for whatever is left of
the idle minute: the idle time is paid once per run, while the other tests work.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.scale import servers
from tests.scale.cluster import Cluster
from tests.scale.quiet import QuietProbe
from tests.scale.servers import PostgresServer, RedisServer, Unavailable

IDLE_MARK = "idle_minute"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{IDLE_MARK}: waits out an idle minute; runs last so other tests fill it")


def pytest_collection_modifyitems(session, config, items):
    """Run the idle-minute test after everything else: its quiet cluster then idles while other tests run."""
    idle = [item for item in items if item.get_closest_marker(IDLE_MARK)]
    if idle:
        items[:] = [item for item in items if item not in idle] + idle


def _started(server):
    try:
        return server.start()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    try:
        return servers.nginx_binary()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres():
    server = _started(PostgresServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = _started(RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def web_page(tmp_path_factory) -> Path:
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>ferry</title><p>ferry operator page (static)</p>")
    return web


@pytest.fixture(scope="session")
def quiet(postgres, nginx_binary, tmp_path_factory, web_page):
    """The idle cluster: started early, then nothing touches its Redis until the idle test."""
    redis = _started(RedisServer(tmp_path_factory.mktemp("quiet-redis")))
    cluster = Cluster(
        tmp_path_factory.mktemp("quiet"), postgres.create_database("quiet"), redis.url, replicas=1, web_dir=web_page
    )
    cluster.redis = redis
    probe = None
    try:
        cluster.launch()
        probe = QuietProbe(cluster)  # waits for the replicas and warms up in its own thread
        yield probe
    finally:
        if probe is not None:
            probe.close()
        cluster.stop()
        redis.stop()


@pytest.fixture(scope="session")
def scale_cluster(postgres, redis_server, nginx_binary, tmp_path_factory, web_page, quiet):
    """Two replicas behind nginx; the quiet cluster launches at the same time (it is only awaited later)."""
    main = Cluster(tmp_path_factory.mktemp("cluster"), postgres.url, redis_server.url, web_dir=web_page)
    try:
        main.launch().wait_ready()
        yield main
    finally:
        main.stop()


@pytest.fixture
def cluster(scale_cluster):
    """The cluster with every replica answering (a test that killed one relaunches it on its way out)."""
    scale_cluster.wait_ready()
    yield scale_cluster
    scale_cluster.relaunch_dead()


def random_rootfs(path: Path, size: int, files: int = 4) -> Path:
    """A rootfs tarball of incompressible bytes (an import then really moves `size` bytes)."""
    chunk = max(1, size // files)
    with tarfile.open(path, "w") as tar:
        for directory in ("bin", "etc"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        (info := tarfile.TarInfo("etc/ferry-release")).size = 12
        tar.addfile(info, io.BytesIO(b"ferry scale\n"))
        for index in range(files):
            info = tarfile.TarInfo(f"bin/blob{index}")
            info.size, info.mode = chunk, 0o644
            tar.addfile(info, io.BytesIO(os.urandom(chunk)))
    return path
