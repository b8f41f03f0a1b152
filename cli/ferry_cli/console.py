"""The consoles every command prints through: stdout for results, stderr for notes and warnings."""

from __future__ import annotations

import os

from rich.console import Console

PIPE_WIDTH = 200  # tables written to a pipe or file keep long ids on one line


def _width(console: Console) -> int | None:
    return None if console.is_terminal or os.environ.get("COLUMNS") else PIPE_WIDTH


def stdout() -> Console:
    console = Console()
    if (width := _width(console)) is not None:
        console = Console(width=width)
    return console


def stderr() -> Console:
    console = Console(stderr=True)
    if (width := _width(console)) is not None:
        console = Console(stderr=True, width=width)
    return console
