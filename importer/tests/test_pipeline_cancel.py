"""Cancellation is task cancellation: the engine request is aborted, the reader thread stops, nothing stays."""

import asyncio
import os
import threading
import time

import pytest
from silent_server import SilentServer
from stub_engine import StubEngine

from archives import tar_bytes, write
from conftest import leftovers
from ferry_contract.urls import parse_prefix
from ferry_importer import CollectingReporter, Engine, ImportSpec, LocalFileSource, Options, run_import
from ferry_importer.sources.url import UrlSource
from tests.support.images import image_present

pytestmark = pytest.mark.engine


class SlowFile:
    """Reads like a slow disk or network: small reads with a pause each."""

    def __init__(self, raw, delay: float) -> None:
        self.raw, self.delay = raw, delay

    def read(self, size: int = -1) -> bytes:
        time.sleep(self.delay)
        return self.raw.read(min(size if size > 0 else 1 << 16, 1 << 16))

    def close(self) -> None:
        self.raw.close()


class SlowSource(LocalFileSource):
    def open(self):
        return SlowFile(super().open(), delay=0.01)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ferry-archive-reader"]


async def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_cancelling_mid_import_aborts_the_engine_request_and_leaves_nothing(
    engine, tmp_path, name, token, cleanup, docker_client
):
    path = write(tmp_path / "rootfs.tar", tar_bytes({"blob": os.urandom(20_000_000), "t": token.encode()}))
    reporter = CollectingReporter()
    spec = ImportSpec(image=f"{name}:cancel", changes=[f"LABEL ferry.test={token}"])
    task = asyncio.create_task(
        run_import(
            spec, SlowSource(path), engine=engine, reporter=reporter, options=Options(data_dir=tmp_path / "data")
        )
    )
    await wait_for(lambda: any(e.data.bytes_done > 2_000_000 for e in reporter.events))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(e.type != "import.progress" for e in reporter.events)  # the caller reports import.canceled
    await reporter.canceled()
    assert reporter.events[-1].type == "import.canceled"
    assert reporter.events[-2].data.bytes_done < path.stat().st_size
    await wait_for(lambda: not reader_threads(), timeout=5)
    assert leftovers(docker_client, token) == [] and not image_present(docker_client, f"{name}:cancel")


async def test_cancelling_after_the_last_byte_waits_for_the_engine_and_removes_its_image(tmp_path):
    path = write(tmp_path / "rootfs.tar", tar_bytes({"blob": os.urandom(1_000_000)}))
    reporter = CollectingReporter()
    with StubEngine(tmp_path / "stub.sock", mode="slow", finalize_seconds=1.5) as stub:
        async with Engine(stub.host) as engine:
            task = asyncio.create_task(
                run_import(
                    ImportSpec(image="stub/image:1"),
                    LocalFileSource(path),
                    engine=engine,
                    reporter=reporter,
                    options=Options(data_dir=tmp_path / "data"),
                )
            )
            await wait_for(lambda: any(e.data.phase == "finalizing" for e in reporter.events))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        created = [ref for ref in stub.deleted if ref.startswith("sha256:")]
        assert len(created) == 1  # the image the engine made after we cancelled is gone again
        assert "stub/image:1" not in stub.images


async def test_cancelling_while_finalizing_on_the_real_engine_leaves_nothing(
    engine, tmp_path, name, token, cleanup, docker_client
):
    path = write(tmp_path / "rootfs.tar", tar_bytes({"blob": os.urandom(4_000_000), "t": token.encode()}))
    outer: list[asyncio.Task] = []

    class CancelOnFinalizing(CollectingReporter):
        async def emit(self, event):
            self.events.append(event)
            if event.data.phase == "finalizing":
                outer[0].cancel()  # the caller cancels the job the moment the engine has every byte

    reporter = CancelOnFinalizing()
    spec = ImportSpec(image=f"{name}:late", changes=[f"LABEL ferry.test={token}"])
    task = asyncio.create_task(
        run_import(
            spec, LocalFileSource(path), engine=engine, reporter=reporter, options=Options(data_dir=tmp_path / "data")
        )
    )
    outer.append(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any(e.data.phase == "finalizing" for e in reporter.events)
    assert leftovers(docker_client, token) == [] and not image_present(docker_client, f"{name}:late")


async def test_cancelling_while_a_url_source_is_probed_hangs_up_at_once(engine, tmp_path):
    server = SilentServer()  # accepts the probe's connection and never answers
    try:
        source = UrlSource(server.url("a.tar"), prefixes=[parse_prefix(server.url())], timeout_s=60)
        reporter = CollectingReporter()
        task = asyncio.create_task(
            run_import(
                ImportSpec(image="ferry-test/never:1"),
                source,
                engine=engine,
                reporter=reporter,
                options=Options(data_dir=tmp_path / "data"),
            )
        )
        await wait_for(lambda: len(reporter.events) >= 2)  # the opening snapshot, then the ticker's
        assert {e.data.phase for e in reporter.events} == {"preparing"} and not server.hangups
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(lambda: server.hangups, timeout=5)
        assert server.hangups[0] - cancelled_at < 2
    finally:
        server.close()
