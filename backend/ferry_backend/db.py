"""The database: one async engine, sessions, SQLite pragmas, and migrations applied on start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
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
    engine = create_engine(
        make_url(url).set(drivername="sqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
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


def alembic_config():
    from alembic.config import Config  # alembic is only needed when the schema must change

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration, without loading alembic: files are named `<revision>_<what>.py`, revisions increase."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except DBAPIError:  # a new database: no version table yet
            return None


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; safe with several replicas on Postgres).

    A database already at the newest revision is left alone without importing alembic: most starts.
    """
    if await current_revision(engine) == head_revision():
        return

    def _upgrade(sync_connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
