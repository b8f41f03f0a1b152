"""The database: one async engine, sessions, SQLite pragmas, and migrations applied on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


SYNCHRONOUS = ("full", "normal")


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    """WAL (readers never block the writer), a busy timeout for other processes, and how hard a commit waits.

    `full`: a commit returns once it is on disk (survives a power cut). `normal`: once the OS has it
    (survives the process being killed; a power cut may lose the last commits, never corrupts).
    """
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def make_engine(url: str, sqlite_synchronous: str = "full") -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine.sync_engine, sqlite_synchronous)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sync_sqlite_engine(url: str, synchronous: str = "full") -> Engine:
    """A plain (pysqlite) engine on the same SQLite file, for the callback writer's batches.

    Its transactions start with BEGIN IMMEDIATE: the write lock is taken before the first read, so
    a batch reads and writes one consistent state even if another process writes the same file.
    """
    engine = create_engine(make_url(url).set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False},
                           pool_size=1, max_overflow=0)
    _sqlite_pragmas(engine, synchronous)

    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; safe with several replicas on Postgres)."""

    def _upgrade(sync_connection) -> None:
        cfg = _alembic_config()
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
