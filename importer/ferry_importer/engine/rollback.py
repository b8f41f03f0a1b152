"""Leave nothing behind: remember what the engine had before, and undo what a failed or cancelled job did.

Tags are put back where they pointed before (or removed when they did not exist) and images that the
job created are removed — never forced, so an image something else now uses is left alone.

What to undo is also written to a journal file before every engine request that could create it, so an
importer killed while the engine still works (a load finishing after the process died) undoes it when
it starts again (`undo_left_over`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from ferry_importer.engine.client import Engine
from ferry_importer.errors import ImporterError

log = logging.getLogger(__name__)


class Rollback:
    def __init__(self, engine: Engine, journal: Path | None = None, comment: str | None = None) -> None:
        self.engine = engine
        self.journal = journal
        self.comment = comment  # the Comment of a rootfs import this job made (found even when its id is not)
        self.import_started = False
        self.tags_before: dict[str, str | None] = {}  # ref → image id before the job (None: absent)
        self.ids_before: dict[str, bool] = {}  # image id → existed before the job
        self.created_ids: set[str] = set()
        self.problems: list[str] = []

    async def remember_tag(self, ref: str) -> None:
        if ref not in self.tags_before:
            found = await self.engine.inspect_image(ref)
            self.tags_before[ref] = found["Id"] if found else None
            self._write()

    async def remember_id(self, image_id: str) -> None:
        if image_id not in self.ids_before:
            self.ids_before[image_id] = await self.engine.inspect_image(image_id) is not None
            self._write()

    def created(self, image_id: str) -> None:
        if image_id not in self.created_ids:
            self.created_ids.add(image_id)
            self._write()

    def importing(self) -> None:
        """A rootfs import is about to start: from now on an image with our Comment may exist."""
        self.import_started = True
        self._write()

    def forget(self) -> None:
        """The job succeeded: nothing is to be undone, now or after a restart."""
        if self.journal is not None:
            self.journal.unlink(missing_ok=True)

    async def undo(self) -> list[str]:
        """Restore every remembered tag and remove created images; return what could not be undone."""
        for ref, before in self.tags_before.items():
            await self._restore_tag(ref, before)
        for image_id in sorted(self.created_ids):
            if self.ids_before.get(image_id):
                continue
            try:
                await self.engine.remove_image(image_id)
            except ImporterError as exc:
                self.problems.append(f"could not remove image {image_id}: {exc.message}")
        for problem in self.problems:
            log.warning("%s", problem)
        self.forget()
        return self.problems

    def _write(self) -> None:
        if self.journal is None:
            return
        state = {
            "tags_before": self.tags_before,
            "ids_before": self.ids_before,
            "created": sorted(self.created_ids),
            "comment": self.comment if self.import_started else None,
        }
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        partial = self.journal.with_suffix(".tmp")
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, self.journal)

    async def _restore_tag(self, ref: str, before: str | None) -> None:
        try:
            now = await self.engine.inspect_image(ref)
            now_id = now["Id"] if now else None
            if now_id == before:
                return
            if now_id and not self.ids_before.get(now_id, False):
                self.created_ids.add(now_id)
            if before is None:
                if now and now_id and self.ids_before.get(now_id) and len(now.get("RepoTags") or []) <= 1:
                    # removing the last tag would delete an image that existed before the job
                    self.problems.append(f"left tag {ref} on {now_id}, which existed before this job")
                    return
                await self.engine.remove_image(ref)
            else:
                repository, _, tag = ref.rpartition(":")
                await self.engine.tag(before, repository, tag)
        except ImporterError as exc:
            self.problems.append(f"could not restore tag {ref}: {exc.message}")


async def undo_left_over(engine: Engine, directory: Path) -> list[str]:
    """Undo what jobs of a process that died left in the engine, from their journals; return the job keys
    undone. A journal whose undo cannot reach the engine stays for the next start."""
    undone = []
    for path, state in await asyncio.to_thread(read_journals, directory):
        rollback = Rollback(engine, path, state.get("comment"))
        rollback.tags_before = dict(state.get("tags_before") or {})
        rollback.ids_before = dict(state.get("ids_before") or {})
        # Every image the job was about to bring in counts as created: undo never removes one that existed before.
        rollback.created_ids = set(state.get("created") or []) | {
            i for i, existed in rollback.ids_before.items() if not existed
        }
        try:
            if rollback.comment:
                rollback.created_ids |= await _images_with_comment(engine, rollback.comment)
            await rollback.undo()
        except ImporterError as exc:
            log.warning("could not undo what job %s left in the engine yet: %s", path.stem, exc.message)
            continue
        undone.append(path.stem)
    return undone


def read_journals(directory: Path) -> list[tuple[Path, dict]]:
    """The journals left in `directory`; unreadable ones (a torn write) and half-written temp files are removed."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("removing an unreadable rollback journal %s", path)
            path.unlink(missing_ok=True)
            continue
        if isinstance(state, dict):
            found.append((path, state))
    for leftover in directory.glob("*.tmp"):
        leftover.unlink(missing_ok=True)
    return found


async def _images_with_comment(engine: Engine, comment: str) -> set[str]:
    """Untagged images whose Comment is `comment`: a rootfs import whose answer never reached us."""
    found = set()
    for image in await engine.list_images({"dangling": ["true"]}):
        details = await engine.inspect_image(image["Id"])
        if details and details.get("Comment") == comment:
            found.add(details["Id"])
    return found
