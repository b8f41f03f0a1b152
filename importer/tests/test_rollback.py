"""The rollback journal on the real engine: what a dead process's job left is undone from the journal alone."""

from __future__ import annotations

import json

import pytest

from archives import rootfs_files, tar_bytes
from ferry_importer.engine.rollback import Rollback, undo_left_over
from ferry_importer.engine.transfer import Activity, import_rootfs
from ferry_importer.pipeline import import_comment

pytestmark = pytest.mark.engine


async def _import(engine, comment: str, token: str) -> str:
    """A rootfs import as the pipeline sends it, with `comment` as its message."""

    async def body():
        yield tar_bytes(rootfs_files(50_000))

    return await import_rootfs(engine, body(), [f"LABEL ferry.test={token}"], Activity(), comment)


async def test_an_untagged_rootfs_import_whose_answer_never_came_is_found_by_its_comment_and_removed(
    engine, docker_client, token, tmp_path
):
    journal = tmp_path / "rollback" / "job-dead.json"
    rollback = Rollback(engine, journal, import_comment("job-dead"))
    rollback.importing()  # what the pipeline writes just before POST /images/create
    mine = await _import(engine, import_comment("job-dead"), token)
    other = await _import(engine, import_comment("job-alive"), token)  # another job's import stays

    assert await undo_left_over(engine, journal.parent) == ["job-dead"]
    assert await engine.inspect_image(mine) is None
    assert await engine.inspect_image(other) is not None
    assert list(journal.parent.iterdir()) == []
    docker_client.api.remove_image(other)


async def test_a_tag_the_dead_job_moved_is_put_back_and_an_image_that_existed_before_is_kept(
    engine, docker_client, token, tmp_path
):
    before = await _import(engine, "an operator's own image", token)
    docker_client.api.tag(before, f"ferry-test/kept-{token}", "1")
    ref = f"ferry-test/kept-{token}:1"
    rollback = Rollback(engine, tmp_path / "rollback" / "job-dead.json")
    await rollback.remember_tag(ref)
    await rollback.remember_id(before)
    after = await _import(engine, "the dead job's load", token)
    docker_client.api.tag(after, f"ferry-test/kept-{token}", "1")  # the engine finished after the kill
    rollback.created(after)

    assert await undo_left_over(engine, tmp_path / "rollback") == ["job-dead"]
    assert (await engine.inspect_image(ref))["Id"] == before
    assert await engine.inspect_image(after) is None
    docker_client.api.remove_image(ref)


async def test_an_unreadable_journal_is_dropped_and_the_others_still_run(engine, tmp_path):
    directory = tmp_path / "rollback"
    directory.mkdir()
    (directory / "job-torn.json").write_bytes(b'{"tags_bef')
    (directory / "job-torn.tmp").write_bytes(b"{")
    assert await undo_left_over(engine, directory) == []
    assert list(directory.iterdir()) == []


async def test_a_successful_job_leaves_no_journal(engine, tmp_path):
    journal = tmp_path / "rollback" / "job-ok.json"
    rollback = Rollback(engine, journal)
    await rollback.remember_tag("ferry-test/never-there:1")
    assert json.loads(journal.read_text())["tags_before"] == {"ferry-test/never-there:1": None}
    rollback.forget()
    assert not journal.exists()
