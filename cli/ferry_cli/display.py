"""How followed jobs are shown: live bars on a terminal, plain lines in logs, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from .formatting import describe, human_bytes, human_rate, printable
from .tracking import JobTrack

STATE_STYLES = {"succeeded": "green", "failed": "red", "canceled": "yellow"}
LINE_EVERY_S = 5.0
UPLOAD_LINE_EVERY_S = 2.0


def upload_line(offset: int, total: int, resumed: bool) -> str:
    note = (" (already uploaded)" if offset == total else " (resumed)") if resumed else ""
    return f"upload {100.0 * offset / total:5.1f}% {human_bytes(offset)} / {human_bytes(total)}{note}"


def uploaded_line(name: str, size: int, upload_id: str) -> str:
    return printable(f"uploaded {name} ({human_bytes(size)}) as {upload_id}")


class _BinaryColumn(ProgressColumn):
    """Sizes and rates in binary units, as the page and every other ferry line write them."""

    def __init__(self, render: Callable[[Task], str]) -> None:
        super().__init__()
        self._render = render

    def render(self, task: Task) -> Text:
        return Text(self._render(task))


def _label(track: JobTrack) -> str:
    return printable(track.host or track.job_id)


class _DetailColumn(ProgressColumn):
    """The job's description; the finalizing clock keeps running between events. The upload's bar: its bytes."""

    def render(self, task) -> Text:
        track: JobTrack | None = task.fields["track"]
        if track is None:
            rate = human_rate(task.speed) or ""
            return Text(f"{human_bytes(task.completed)} / {human_bytes(task.total)} {rate}".rstrip())
        clock = track.phase_clock(time.monotonic())
        return Text(printable(describe(track.view, clock)), style=STATE_STYLES.get(str(track.view.get("state")), ""))


class _StateBar(BarColumn):
    def render(self, task):
        bar = super().render(task)
        track = task.fields["track"]
        state = track.view.get("state") if track is not None else None
        if state in STATE_STYLES:
            bar.complete_style = bar.finished_style = STATE_STYLES[state]
        return bar


class BarsDisplay:
    """One rich bar per job (and one for the upload its jobs take their bytes from), refreshed ten times a second."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.fields[label]}", style="bold", markup=False),
            _StateBar(bar_width=30),
            TextColumn("{task.percentage:>5.1f}%"),
            _DetailColumn(),
            console=console,
            refresh_per_second=10,
        )
        self.tasks: dict[str, TaskID] = {}
        self.upload_task: TaskID | None = None

    def upload(self, offset: int, total: int, resumed: bool) -> None:
        """The upload's progress, from the thread that sends it (rich's Progress is thread-safe)."""
        if self.upload_task is None:
            self.upload_task = self.progress.add_task("", total=total, label="upload", track=None, upload=True)
            if resumed:
                what = "reusing the complete" if offset == total else f"resuming at {human_bytes(offset)} the"
                self.progress.console.print(f"{what} earlier upload", markup=False)
        self.progress.update(self.upload_task, completed=offset)

    def uploaded(self, name: str, size: int, upload_id: str) -> None:
        self.progress.console.print(uploaded_line(name, size, upload_id), highlight=False, markup=False)

    def start(self, tracks: list[JobTrack]) -> None:
        for track in tracks:
            self.tasks[track.job_id] = self.progress.add_task("", total=100, label=_label(track), track=track)
        self.progress.start()

    def event(self, track: JobTrack, event_type: str | None, data: dict | None) -> None:
        percent = float(track.view.get("percent") or 0.0)
        self.progress.update(self.tasks[track.job_id], completed=percent, label=_label(track))

    def status(self, message: str) -> None:
        self.progress.console.print(message, style="yellow", markup=False)

    def stop(self) -> None:
        self.progress.stop()


class LinesDisplay:
    """Plain lines: every change of state or phase, and the progress at most every few seconds."""

    def __init__(self, console: Console, every_s: float = LINE_EVERY_S):
        self.console = console
        self.every_s = every_s
        self._upload_at: float | None = None
        self._last: dict[str, tuple[str | None, str | None, bool, float]] = {}

    def start(self, tracks: list[JobTrack]) -> None:
        pass

    def upload(self, offset: int, total: int, resumed: bool) -> None:
        now = time.monotonic()
        first = self._upload_at is None
        if self._upload_at is None or offset == total or now - self._upload_at >= UPLOAD_LINE_EVERY_S:
            self._upload_at = now
            self.console.print(
                upload_line(offset, total, resumed and (first or offset == total)), highlight=False, markup=False
            )

    def uploaded(self, name: str, size: int, upload_id: str) -> None:
        self.console.print(uploaded_line(name, size, upload_id), highlight=False, markup=False)

    def event(self, track: JobTrack, event_type: str | None, data: dict | None) -> None:
        key = (track.view.get("state"), track.view.get("phase"), bool(track.view.get("doubt")))  # a doubt shows at once
        now = time.monotonic()
        last = self._last.get(track.job_id)
        if last is not None and last[:3] == key and now - last[3] < self.every_s:
            return
        self._last[track.job_id] = (*key, now)
        percent = float(track.view.get("percent") or 0.0)
        self.console.print(
            printable(f"{_label(track)} {track.job_id} {percent:5.1f}% {describe(track.view)}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def status(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        pass


class JsonDisplay:
    """One JSON object per event on stdout, `{"type", "data"}` as the callback carried it (the upload's own
    progress is not an event: it is not printed)."""

    def start(self, tracks: list[JobTrack]) -> None:
        pass

    def upload(self, offset: int, total: int, resumed: bool) -> None:
        pass

    def uploaded(self, name: str, size: int, upload_id: str) -> None:
        pass

    def event(self, track: JobTrack, event_type: str | None, data: dict | None) -> None:
        if event_type is not None:
            sys.stdout.write(json.dumps({"type": event_type, "data": data}, separators=(",", ":")) + "\n")
            sys.stdout.flush()

    def status(self, message: str) -> None:
        print(printable(message), file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass


def make_display(console: Console, as_json: bool):
    if as_json:
        return JsonDisplay()
    return BarsDisplay(console) if console.is_terminal else LinesDisplay(console)
