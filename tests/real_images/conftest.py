"""The real Debian tree, its archives, and a Docker client on the test engine, shared by the real-image tests."""

from __future__ import annotations

import docker
import pytest

from tests.real_images.archives import Archives, archives
from tests.support.rootfs import RootfsUnavailable, rootfs


@pytest.fixture(scope="session")
def debian_tree():
    try:
        return rootfs()
    except RootfsUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def engine_client(docker_host) -> docker.DockerClient:
    client = docker.DockerClient(base_url=docker_host, timeout=600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def debian_archives(debian_tree, engine_client) -> Archives:
    return archives(debian_tree, engine_client)
