"""The CLI's human output: a live progress bar on stderr (phase, percent, bytes, rate, ETA)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferry_importer.progress import Snapshot
from ferry_importer.reporting import EventReporter

if TYPE_CHECKING:
    from rich.progress import TaskID


def human_bytes(size: float | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"


def describe(snapshot: Snapshot) -> str:
    """The text after the bar: bytes, rate and ETA while streaming; layers and layer bytes while the engine
    loads them; elapsed seconds otherwise."""
    if snapshot.phase == "loading" and snapshot.layers_done is not None:
        of = f"/{snapshot.layers_total}" if snapshot.layers_total is not None else ""
        parts = [f"layers {snapshot.layers_done}{of}"]
        if snapshot.layer_bytes_done is not None:
            parts.append(f"{human_bytes(snapshot.layer_bytes_done)}/{human_bytes(snapshot.layer_bytes_total)}")
    else:
        parts = [f"{human_bytes(snapshot.bytes_done)}/{human_bytes(snapshot.bytes_total)}"]
    if snapshot.phase == "waiting_for_upload" and snapshot.bytes_available is not None:
        parts.append(f"upload {human_bytes(snapshot.bytes_available)} arrived")
    if snapshot.rate_bps:
        parts.append(f"{human_bytes(snapshot.rate_bps)}/s")
    if snapshot.eta_s is not None:
        parts.append(f"ETA {int(snapshot.eta_s) // 60}:{int(snapshot.eta_s) % 60:02d}")
    if snapshot.phase in ("finalizing", "verifying") and snapshot.phase_elapsed_s is not None:
        parts.append(f"{snapshot.phase_elapsed_s:.0f} s")
    return "  ".join(parts)


class BarReporter(EventReporter):
    def __init__(self, console=None, **kwargs) -> None:
        from rich.console import Console  # only the progress bar needs rich
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        super().__init__(**kwargs)
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description:<11}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None

    def _show(self, snapshot: Snapshot) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task(str(snapshot.phase), total=100, detail="")
        assert self.task is not None
        self.bar.update(
            self.task, description=str(snapshot.phase), completed=snapshot.percent, detail=describe(snapshot)
        )

    async def emit(self, event) -> None:
        data = event.data
        snapshot = Snapshot(
            phase=data.phase,
            bytes_done=data.bytes_done,
            bytes_total=data.bytes_total,
            percent=data.percent,
            rate_bps=data.rate_bps,
            eta_s=data.eta_s,
            phase_elapsed_s=data.phase_elapsed_s,
            layers_done=data.layers_done,
            layers_total=data.layers_total,
            layer_bytes_done=data.layer_bytes_done,
            layer_bytes_total=data.layer_bytes_total,
            bytes_available=data.bytes_available,
        )
        self._show(snapshot)
        if event.type != "import.progress" and self.task is not None:
            outcome = {"import.completed": "done", "import.failed": "failed", "import.canceled": "canceled"}
            self.bar.update(self.task, description=outcome.get(event.type, str(data.phase)))
            self.bar.stop()
