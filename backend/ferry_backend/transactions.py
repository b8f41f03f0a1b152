"""Sessions and write transactions of the backend's database. SQLAlchemy errors become StoreUnavailable here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from . import db
from .errors import StoreUnavailable

T = TypeVar("T")


class Store:
    """Sessions plus one rule: on SQLite, write transactions of this process run one at a time.

    SQLite allows one writer; a read-then-write transaction that loses the race fails instead of
    waiting. Serialising writers in-process avoids that; Postgres uses row locks instead.
    """

    def __init__(self, engine: AsyncEngine, sqlite_synchronous: str = "full"):
        self.engine = engine
        self.sqlite_synchronous = sqlite_synchronous
        self.sessionmaker = db.make_sessionmaker(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self._sync_engine: Engine | None = None  # SQLite: the batched callback writer's own connection
        self._writer: Connection | None = None
        self._committer: ThreadPoolExecutor | None = None

    @classmethod
    def from_url(cls, url: str, sqlite_synchronous: str = "full") -> Store:
        return cls(db.make_engine(url, sqlite_synchronous), sqlite_synchronous)

    async def migrate(self) -> None:
        try:
            await db.migrate(self.engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot migrate the database: {exc.__class__.__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._sync_engine is not None:
            if self._committer is not None:
                self._committer.shutdown(wait=True)
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self._sync_engine.dispose()
            self._committer = self._sync_engine = None
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.sessionmaker() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database error: {exc.__class__.__name__}") from exc

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        try:
            async with lock:
                async with self.sessionmaker() as session, session.begin():
                    yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database error: {exc.__class__.__name__}") from exc

    async def write_sync(self, fn: Callable[..., T], *args) -> T:
        """Run `fn(connection, *args)` (synchronous Core code) in one write transaction.

        On SQLite the statements run right here on a plain sqlite3 connection (no thread hop per
        statement, no lock convoy with a worker thread); only a commit that waits for the disk
        (synchronous=full) goes to a thread, so the event loop keeps serving meanwhile. On Postgres
        `fn` runs on the async connection (asyncpg needs no thread).
        """
        try:
            if not self.is_sqlite:
                async with self.engine.begin() as conn:
                    return await conn.run_sync(fn, *args)
            async with self._write_lock:
                return await self._write_sync_sqlite(fn, args)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database error: {exc.__class__.__name__}") from exc

    async def _write_sync_sqlite(self, fn, args):
        if self._writer is None:  # one connection kept open: no pool checkout and reset per transaction
            if self._sync_engine is None:
                url = self.engine.url.render_as_string(hide_password=False)
                self._sync_engine = db.make_sync_sqlite_engine(url, self.sqlite_synchronous)
                self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
            self._writer = self._sync_engine.connect()
        conn = self._writer
        transaction = conn.begin()
        try:
            result = fn(conn, *args)
            if self.sqlite_synchronous == "normal":  # no fsync: the commit is quick, a thread hop is not
                transaction.commit()
                return result
            # The thread runs sqlite3's own commit (C, the GIL released while it waits for the disk): as
            # little Python as possible there, so it does not fight the event loop for the GIL.
            commit = asyncio.get_running_loop().run_in_executor(
                self._committer, conn.connection.dbapi_connection.commit
            )
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                await asyncio.wait([commit])  # never touch the connection under a running commit
                raise
            transaction.commit()  # SQLAlchemy's bookkeeping; the database has nothing left to commit
            return result
        except BaseException as exc:
            if transaction.is_active:
                transaction.rollback()
            if isinstance(exc, SQLAlchemyError) and not isinstance(exc, IntegrityError):
                self._writer.close()  # whatever broke, the next transaction starts on a fresh connection
                self._writer = None
            raise
