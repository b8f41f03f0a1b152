"""A docker-save archive on the real engine: after the last byte the bar follows the layers the engine loads."""

import asyncio
import io
import os
import tarfile

import docker
import pytest
from test_pipeline_cancel import SlowSource
from test_pipeline_progress import check_invariants

from archives import docker_archive_from_layers, tar_bytes, write
from conftest import leftovers
from ferry_importer import CollectingReporter, ImportSpec, LocalFileSource, Options, run_import
from ferry_importer.load_share import load_weight
from ferry_importer.pace import PaceFile, learned_weight
from tests.support.images import image_present

pytestmark = pytest.mark.engine


def build(client, dockerfile: str, files: dict[str, bytes], tag: str) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _ = client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, forcerm=True)
    return image.id


def save(client, ref: str, path):
    with open(path, "wb") as fh:
        for chunk in client.api.get_image(ref):
            fh.write(chunk)
    return path


def remove(client, ref: str) -> None:
    try:
        client.api.remove_image(ref, force=True)
    except docker.errors.APIError:
        pass


def saved_three_layers(client, tag: str, token: str, layer_bytes: int, path):
    """A docker-save archive of a FROM-scratch image of three random layers, the image removed again: every
    layer is new to the engine when the archive is loaded."""
    files = {f"f{i}": os.urandom(layer_bytes) for i in range(3)}
    build(client, f"FROM scratch\nLABEL ferry.test={token}\nCOPY f0 /f0\nCOPY f1 /f1\nCOPY f2 /f2\n", files, tag)
    save(client, tag, path)
    remove(client, tag)
    return path


def phases(events) -> list[str]:
    seen: list[str] = []
    for event in events:
        if not seen or seen[-1] != event.data.phase:
            seen.append(event.data.phase)
    return seen


def check_layers(events, total: int) -> None:
    counts = [e.data.layers_done for e in events if e.data.layers_done is not None]
    loaded = [e.data.layer_bytes_done for e in events if e.data.layer_bytes_done is not None]
    assert counts == sorted(counts) and counts[-1] == total
    assert loaded == sorted(loaded) and loaded[-1] == events[-1].data.layer_bytes_total
    assert {e.data.layers_total for e in events if e.data.layers_total is not None} == {total}


async def test_a_save_archive_shows_the_engine_loading_its_layers_with_counts_and_rising_percent(
    run, tmp_path, name, token, cleanup, docker_client
):
    tag = f"{name}:layers"
    cleanup.append(tag)
    # Loading events come at most every 0.1 s after the first layer line: 96 MiB keep the engine loading
    # for about 0.5 s here (9 MiB gave only two here: one on a faster engine).
    path = saved_three_layers(docker_client, tag, token, 32 << 20, tmp_path / "three.tar")

    image, events = await run(path)
    assert not isinstance(image, Exception), image
    check_invariants(events, path.stat().st_size)
    assert phases(events)[-3:] == ["loading", "verifying", "done"]
    loading = [e for e in events if e.data.phase == "loading"]
    assert loading[-1].data.percent > loading[0].data.percent  # the bar moves while the engine loads
    assert loading[0].data.percent < 99.0 and all(e.data.layers_total == 3 for e in loading)
    assert loading[-1].data.layer_bytes_total >= 96 << 20
    check_layers(events, 3)
    assert events[-1].data.layers_done == 3 and events[-1].data.percent == 100.0


async def test_layers_the_engine_already_has_count_as_done_and_the_bar_never_goes_back(
    run, tmp_path, name, token, cleanup, docker_client
):
    base, top = f"{name}:base", f"{name}:top"
    cleanup.extend([top, base])
    base_id = build(
        docker_client,
        f"FROM scratch\nLABEL ferry.test={token}\nCOPY a /a\nCOPY b /b\n",
        {"a": os.urandom(2 << 20), "b": os.urandom(2 << 20)},
        base,
    )
    build(docker_client, f"FROM {base_id}\nCOPY c /c\n", {"c": os.urandom(2 << 20)}, top)
    path = save(docker_client, top, tmp_path / "top.tar")
    remove(docker_client, top)  # the two base layers stay in the engine

    image, events = await run(path)
    assert not isinstance(image, Exception), image
    check_invariants(events, path.stat().st_size)
    loading = [e for e in events if e.data.phase == "loading"]
    assert loading and loading[0].data.layers_done >= 2  # skipped the moment the engine moved past them
    check_layers(events, 3)

    # again, with every layer present: nothing to load, yet it ends at 100 without a step back
    image, events = await run(path, force=True)
    assert not isinstance(image, Exception), image
    check_invariants(events, path.stat().st_size)
    assert "loading" not in phases(events)
    before_verify = [e for e in events if e.data.phase == "verifying"][0]
    assert before_verify.data.layers_done == 3 and before_verify.data.percent == 99.0


@pytest.mark.parametrize("cancels", [1, 2], ids=["once", "again-during-the-clean-up"])
async def test_cancelling_while_the_engine_loads_layers_leaves_nothing(
    engine, tmp_path, name, token, cleanup, docker_client, cancels
):
    tag = f"{name}:cancelled"
    cleanup.append(tag)
    path = saved_three_layers(docker_client, tag, token, (2 << 20) if cancels == 1 else (8 << 20), tmp_path / "c.tar")
    outer: list[asyncio.Task] = []
    second: list[int] = []

    def cancel_again() -> None:
        second.append(outer[0].cancelling())
        outer[0].cancel()  # a second click while the job waits for the engine to finish the load

    class CancelOnLoading(CollectingReporter):
        async def emit(self, event):
            self.events.append(event)
            if event.data.phase == "loading" and not outer[0].cancelling():
                outer[0].cancel()  # the engine has every byte, so the job waits for it, then undoes it
                if cancels == 2:
                    asyncio.get_running_loop().call_later(0.02, cancel_again)

    reporter = CancelOnLoading()
    task = asyncio.create_task(
        run_import(
            ImportSpec(),
            LocalFileSource(path),
            engine=engine,
            reporter=reporter,
            options=Options(data_dir=tmp_path / "data"),
        )
    )
    outer.append(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any(e.data.phase == "loading" for e in reporter.events)
    assert second == [1] * (cancels - 1), "the second cancel arrived while the first one was being handled"
    await asyncio.sleep(1)  # an abandoned load would still land in the engine after the job ended
    assert leftovers(docker_client, token) == [] and not image_present(docker_client, tag)


async def test_after_a_load_the_host_splits_the_next_loads_percent_by_its_own_pace(
    run, tmp_path, name, token, cleanup, docker_client
):
    tag = f"{name}:pace"
    cleanup.append(tag)
    path = saved_three_layers(docker_client, tag, token, 16 << 20, tmp_path / "pace.tar")
    keeper = PaceFile(tmp_path / "data")

    image, events = await run(path)
    assert not isinstance(image, Exception), image
    first = [e for e in events if e.data.phase == "finalizing"][0]
    assert first.data.percent == pytest.approx(100 * (1 - load_weight("none")), abs=0.1)  # the table, at first
    learned = learned_weight(keeper.read(), "none")
    assert learned is not None, "the host kept how fast it streamed and loaded"

    remove(docker_client, tag)
    image, events = await run(path)
    assert not isinstance(image, Exception), image
    second = [e for e in events if e.data.phase == "finalizing"][0]
    assert second.data.percent == pytest.approx(100 * (1 - learned), abs=0.1)
    check_invariants(events, path.stat().st_size)
    assert events[-1].data.percent == 100.0


async def test_a_save_whose_layers_the_engine_has_fills_the_bar_while_it_streams_not_after(
    run, tmp_path, name, token, cleanup, docker_client
):
    tag = f"{name}:named"
    cleanup.append(tag)
    layers = [tar_bytes({f"f{i}": os.urandom(3 << 20)}) for i in range(3)]
    path = write(
        tmp_path / "oci.tar", docker_archive_from_layers(layers, [tag], style="oci", labels={"ferry.test": token})
    )
    image, _ = await run(path)
    assert not isinstance(image, Exception), image

    # again, on a host that has never loaded anything, from a slow disk: the archive names its layers by diff id
    fresh = tmp_path / "fresh"
    image, events = await run(path, source=SlowSource(path), options=Options(data_dir=fresh), force=True)
    assert not isinstance(image, Exception), image
    check_invariants(events, path.stat().st_size)
    last = [e.data for e in events if e.data.phase == "importing"][-1]
    streamed = 100.0 * last.bytes_done / path.stat().st_size
    # the bar follows the stream to its end (nothing is left to load) instead of stopping at the stream's share
    # (30 % of the bytes here: the table's split for an uncompressed archive) and jumping to 99 after the last byte
    assert last.percent >= 0.9 * streamed, (last.percent, streamed)
    assert "loading" not in phases(events)
    pace = PaceFile(fresh).read()
    assert pace.load_bps and not pace.stream_bps  # measured before the load; this load taught nothing
