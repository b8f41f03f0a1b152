"""What a cancelled import does before it ends: abort the engine request, or — when the engine already has
every byte — let it finish (bounded) so what it creates is known, then undo it all. A second cancel (a second
click, a shutdown while cancelling) cannot cut this short: an abandoned load would land in the engine after
the job ended."""

from __future__ import annotations

import asyncio

from ferry_importer.archive.layout import LoadPlan
from ferry_importer.engine.rollback import Rollback
from ferry_importer.engine.transfer import LoadOutcome, cancel_and_wait


async def finish_cancelled(
    task: asyncio.Task, rollback: Rollback, plan: LoadPlan, *, all_sent: bool, timeout: float
) -> None:
    """Clean up in a task of its own; further cancels of the caller wait for it instead of cutting it."""
    cleanup = asyncio.create_task(_undo(task, rollback, plan, all_sent=all_sent, timeout=timeout))
    while not cleanup.done():
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            continue  # the job is cancelled already; the clean-up still has to finish
    cleanup.result()


async def _undo(task: asyncio.Task, rollback: Rollback, plan: LoadPlan, *, all_sent: bool, timeout: float) -> None:
    if all_sent and not task.done():
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except BaseException:  # noqa: BLE001 - a timeout or an engine error
            pass
    if not task.done():
        await cancel_and_wait(task)
    note_created(task, rollback, plan)
    await rollback.undo()


def note_created(task: asyncio.Task, rollback: Rollback, plan: LoadPlan) -> None:
    """Tell the rollback what a finished engine request created (and the images the archive names)."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return
    result = task.result()
    if isinstance(result, str):
        rollback.created(result)
    elif isinstance(result, LoadOutcome):
        for image_id in result.image_ids:
            rollback.created(image_id)
    for image in plan.images:
        if image.image_id:
            rollback.created(image.image_id)
