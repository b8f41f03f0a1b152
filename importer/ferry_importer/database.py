"""The importer's SQLite database (job store + outbox): one file in DATA_DIR, WAL, one writer thread.

Every statement runs on a single dedicated thread, so the event loop never blocks on disk and no two
transactions interleave inside this process; other processes (the `outbox` CLI) share the file
through WAL and the busy timeout. `synchronous=FULL` because an event must survive a crash once we
have said it is committed. The schema is versioned with `PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: jobs and the outbox with its attempt log.
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        ord INTEGER NOT NULL,
        request TEXT NOT NULL,
        image TEXT NOT NULL,
        state TEXT NOT NULL,
        phase TEXT NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0,
        snapshot TEXT,
        callback_url TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE UNIQUE INDEX jobs_ord ON jobs (ord);
    CREATE INDEX jobs_state ON jobs (state, ord);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        msg_id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        droppable INTEGER NOT NULL DEFAULT 0,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        requeued INTEGER NOT NULL DEFAULT 0,
        last_status INTEGER,
        last_error TEXT,
        finished_at REAL
    );
    CREATE INDEX outbox_pending ON outbox (status, job_id, seq);
    CREATE INDEX outbox_finished ON outbox (finished_at);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        started_at REAL NOT NULL,
        duration_ms REAL NOT NULL,
        status_code INTEGER,
        error TEXT,
        response TEXT,
        trigger TEXT NOT NULL
    );
    CREATE INDEX attempts_message ON attempts (message_id);
    """,
]


def connect(path: Path) -> sqlite3.Connection:
    """Open (and migrate) the database; usable from the thread that calls this."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(conn, *args) inside one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Database:
    """Async access: `await db.call(fn, *args)` runs fn(conn, *args) in one transaction on the DB thread."""

    def __init__(self, path: Path):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-db")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, connect, self.path)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._conn is None:
            raise RuntimeError("database is not open")
        loop = asyncio.get_running_loop()
        bound = functools.partial(fn, **kwargs) if kwargs else fn
        return await loop.run_in_executor(self._executor, transaction, self._conn, bound, *args)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
