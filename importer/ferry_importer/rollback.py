"""Leave nothing behind: remember what the engine had before, and undo what a failed or cancelled job did.

Tags are put back where they pointed before (or removed when they did not exist) and images that the
job created are removed — never forced, so an image something else now uses is left alone.
"""

from __future__ import annotations

import logging

from .engine import Engine
from .errors import ImporterError

log = logging.getLogger(__name__)


class Rollback:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tags_before: dict[str, str | None] = {}  # ref → image id before the job (None: absent)
        self.ids_before: dict[str, bool] = {}  # image id → existed before the job
        self.created_ids: set[str] = set()
        self.problems: list[str] = []

    async def remember_tag(self, ref: str) -> None:
        if ref not in self.tags_before:
            found = await self.engine.inspect_image(ref)
            self.tags_before[ref] = found["Id"] if found else None

    async def remember_id(self, image_id: str) -> None:
        if image_id not in self.ids_before:
            self.ids_before[image_id] = await self.engine.inspect_image(image_id) is not None

    def created(self, image_id: str) -> None:
        self.created_ids.add(image_id)

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
        return self.problems

    async def _restore_tag(self, ref: str, before: str | None) -> None:
        try:
            now = await self.engine.inspect_image(ref)
            now_id = now["Id"] if now else None
            if now_id == before:
                return
            if now_id and not self.ids_before.get(now_id, False):
                self.created_ids.add(now_id)
            if before is None:
                if now_id and self.ids_before.get(now_id) and len(now.get("RepoTags") or []) <= 1:
                    # removing the last tag would delete an image that existed before the job
                    self.problems.append(f"left tag {ref} on {now_id}, which existed before this job")
                    return
                await self.engine.remove_image(ref)
            else:
                repository, _, tag = ref.rpartition(":")
                await self.engine.tag(before, repository, tag)
        except ImporterError as exc:
            self.problems.append(f"could not restore tag {ref}: {exc.message}")
