"""What one import is asked to do (`ImportSpec`) and how the importer runs it (`Options`): the inputs of
`pipeline.run_import`, shared by the CLI and the service."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferry_contract import ArchiveFormat
from ferry_importer.datadir import free_bytes


@dataclass
class ImportSpec:
    """What to import: the target name, how, and with which `docker import --change` lines."""

    image: str | None = None
    format: ArchiveFormat | str = ArchiveFormat.AUTO
    changes: list[str] = field(default_factory=list)
    force: bool = False
    expected_sha256: str | None = None  # verified at the end of the stream, before the engine may commit


@dataclass
class Options:
    data_dir: Path | None = None  # the fast-path index; default: datadir.default_data_dir()
    stall_timeout: float = 300.0
    cleanup_timeout: float = 60.0  # how long a cancel waits for an engine that already has every byte
    chunk_size: int = 1 << 20
    queue_chunks: int = 4
    decode_threads: int = field(default_factory=lambda: default_decode_threads())  # for multi-block xz files
    spooled_to: dict[str, Path] = field(default_factory=dict)  # where a job writes archive bytes (none: streamed)
    disk_probe: Callable[[Path], int | None] = free_bytes
    job_id: str | None = None  # names the job in the engine (a rootfs import's Comment) and its rollback journal
    journal_dir: Path | None = None  # where the rollback journal is kept (none: undo only while this process lives)


def import_comment(job_id: str | None) -> str:
    """The Comment a rootfs import gets: with the job's id, so what a dead process left can be found."""
    return f"imported by ferry-importer (job {job_id})" if job_id else "imported by ferry-importer"


def default_decode_threads() -> int:
    """Two xz decoding threads only where there are cores to spare: on a 2-core host the engine's own
    work already takes the second core, and parallel decoding only adds overhead."""
    return 2 if (os.cpu_count() or 1) >= 4 else 1
