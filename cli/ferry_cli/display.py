"""How followed jobs are shown: live bars on a terminal, plain lines in logs, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.text import Text

from .formatting import describe, printable
from .tracking import JobTrack

STATE_STYLES = {"succeeded": "green", "failed": "red", "canceled": "yellow"}
LINE_EVERY_S = 5.0


def _label(track: JobTrack) -> str:
    return printable(track.host or track.job_id)


class _DetailColumn(ProgressColumn):
    """The job's description; the finalizing clock keeps running between events."""

    def render(self, task) -> Text:
        track: JobTrack = task.fields["track"]
        clock = track.phase_clock(time.monotonic())
        return Text(printable(describe(track.view, clock)), style=STATE_STYLES.get(str(track.view.get("state")), ""))


class _StateBar(BarColumn):
    def render(self, task):
        bar = super().render(task)
        state = task.fields["track"].view.get("state")
        if state in STATE_STYLES:
            bar.complete_style = bar.finished_style = STATE_STYLES[state]
        return bar


class BarsDisplay:
    """One rich bar per job, refreshed ten times a second."""

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
        self._last: dict[str, tuple[str | None, str | None, bool, float]] = {}

    def start(self, tracks: list[JobTrack]) -> None:
        pass

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
    """One JSON object per event on stdout, `{"type", "data"}` as the callback carried it."""

    def start(self, tracks: list[JobTrack]) -> None:
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
