"""The engine client: real engine for the normal path, MockTransport only for failures the engine
cannot be made to produce on demand (an errorDetail in the middle of a stream, a dropped connection)."""

import json

import httpx
import pytest

from ferry_importer.engine.client import Engine
from ferry_importer.errors import EngineError, EngineUnreachable, InsufficientDisk


async def _body(chunks):
    for chunk in chunks:
        yield chunk


@pytest.mark.engine
async def test_the_real_engine_answers_version_info_and_missing_images(engine):
    version = await engine.version()
    assert version["ApiVersion"]
    assert (await engine.info())["DockerRootDir"]
    assert await engine.inspect_image("ferry-test/never-there:nope") is None
    assert await engine.remove_image("ferry-test/never-there:nope") is False


async def test_an_unsupported_docker_host_is_refused_clearly():
    with pytest.raises(EngineUnreachable) as caught:
        Engine("ssh://lab-host")
    assert "unix://" in caught.value.message


async def test_a_missing_socket_is_engine_unreachable(tmp_path):
    async with Engine(f"unix://{tmp_path}/none.sock") as engine:
        with pytest.raises(EngineUnreachable):
            await engine.version()


async def test_error_detail_in_the_middle_of_a_200_stream_is_a_failure():
    lines = (
        b'{"stream":"Loading layer"}\r\n{"progressDetail":{"current":1}}\r\n'
        b'{"errorDetail":{"message":"failed to register layer: archive/tar: invalid tar header"},'
        b'"error":"failed to register layer: archive/tar: invalid tar header"}\r\n'
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        async for _ in request.stream:
            pass
        return httpx.Response(200, content=lines)

    seen = []
    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(EngineError) as caught:
            async with engine.post_stream("/images/load", {"quiet": "0"}, _body([b"x" * 10])) as messages:
                async for message in messages:
                    seen.append(message)
    assert len(seen) == 2
    assert "invalid tar header" in caught.value.message


async def test_an_engine_out_of_disk_mid_stream_is_insufficient_disk():
    lines = (
        b'{"stream":"Loading layer"}\r\n'
        b'{"errorDetail":{"message":"failed to register layer: write /x: no space left on device"}}\r\n'
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        async for _ in request.stream:
            pass
        return httpx.Response(200, content=lines)

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(InsufficientDisk) as caught:
            async with engine.post_stream("/images/load", {"quiet": "0"}, _body([b"x" * 10])) as messages:
                async for _ in messages:
                    pass
    assert caught.value.code == "insufficient_disk" and "no space left" in caught.value.detail


# What the engine was writing when the disk filled decides only the words, never the code.
_DISK_FULL_ANSWERS = {
    "a layer, mid-stream": (
        "stream",
        200,
        "failed to register layer: write /var/lib/docker/vfs/dir/x/usr/bin/y: no space left on device",
    ),
    "a temp file, refused": (
        "stream",
        500,
        "write /var/lib/docker/tmp/docker-import-1234/fs.tar: no space left on device",
    ),
    "repositories.json, on tagging": (
        "tag",
        500,
        "open /var/lib/docker/image/vfs/.tmp-repositories.json3312: No space left on device",
    ),
    "a quota, on tagging": ("tag", 500, "write /var/lib/docker/image/vfs/repositories.json: disk quota exceeded"),
}


@pytest.mark.parametrize("shape", sorted(_DISK_FULL_ANSWERS))
async def test_any_engine_answer_that_says_the_disk_is_full_is_insufficient_disk(shape):
    where, status, words = _DISK_FULL_ANSWERS[shape]

    async def handler(request: httpx.Request) -> httpx.Response:
        async for _ in request.stream:
            pass
        if status == 200:
            return httpx.Response(
                200,
                content=b'{"status":"Loading layer"}\r\n'
                + json.dumps({"errorDetail": {"message": words}}).encode()
                + b"\r\n",
            )
        return httpx.Response(status, json={"message": words})

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(InsufficientDisk) as caught:
            if where == "tag":
                await engine.tag("sha256:" + "a" * 64, "lab/ceos", "4.35")
            else:
                async with engine.post_stream("/images/create", {"fromSrc": "-"}, _body([b"x"])) as messages:
                    async for _ in messages:
                        pass
    assert caught.value.code == "insufficient_disk"
    assert words in caught.value.detail


async def test_an_engine_error_that_is_not_about_disk_stays_engine_error():
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            500, json={"message": "open /var/lib/docker/image/vfs/repositories.json: permission denied"}
        )

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(EngineError) as caught:
            await engine.tag("sha256:" + "a" * 64, "lab/ceos", "4.35")
    assert caught.value.code == "engine_error"


async def test_an_http_error_carries_the_engines_message():
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "invalid reference format"})

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(EngineError) as caught:
            async with engine.post_stream("/images/create", {"fromSrc": "-"}, _body([b"x"])) as messages:
                async for _ in messages:
                    pass
    assert "invalid reference format" in caught.value.message


async def test_a_dropped_connection_mid_answer_is_engine_error():
    async def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(EngineError) as caught:
            await engine.info()
    assert caught.value.code == "engine_error"


async def test_unreadable_engine_output_is_engine_error():
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>proxy error</html>\n")

    async with Engine("unix:///unused", transport=httpx.MockTransport(handler)) as engine:
        with pytest.raises(EngineError):
            async with engine.post_stream("/images/load", {}, _body([b"x"])) as messages:
                async for _ in messages:
                    pass
