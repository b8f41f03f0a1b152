"""The consoles every command prints through: stdout for results, stderr for notes and warnings."""

from __future__ import annotations

import os
from collections.abc import Iterable

from rich.console import Console
from rich.segment import Segment

from .formatting import printable

PIPE_WIDTH = 200  # tables written to a pipe or file keep long ids on one line


class SafeConsole(Console):
    """A rich Console that never writes a control character it did not make itself.

    Tables and lines escape what the backend sends already (formatting.printable); this is the net under
    them: rich's own styles and cursor moves are in styles and control segments, which pass untouched.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(printable(segment.text, keep_newlines=True), segment.style)
            for segment in buffer
        )


def _width(console: Console) -> int | None:
    return None if console.is_terminal or os.environ.get("COLUMNS") else PIPE_WIDTH


def stdout() -> Console:
    console = SafeConsole()
    if (width := _width(console)) is not None:
        console = SafeConsole(width=width)
    return console


def stderr() -> Console:
    console = SafeConsole(stderr=True)
    if (width := _width(console)) is not None:
        console = SafeConsole(stderr=True, width=width)
    return console
