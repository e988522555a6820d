"""Databases: the engine, the UTC datetime column type and the session scope.

A SQLite file by default, PostgreSQL when the URL says so; the same code runs on both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    TypeDecorator,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_SECONDS = 30


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def with_driver(url: str) -> str:
    """The URL with the PostgreSQL driver we ship (psycopg 3) named when it names none.

    ``postgresql://`` (what CloudNativePG's ``<cluster>-app`` Secret holds as ``uri``, and
    what most tools write) means psycopg2 to SQLAlchemy, which is not installed;
    ``postgres://`` is not a dialect SQLAlchemy knows at all.
    """
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url.removeprefix(bare)
    return url


def make_engine(url: str) -> Engine:
    url = with_driver(url)
    if url.startswith("sqlite"):
        _owner_only(url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API and the worker (two processes) share the file safely;
            # foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cur.close()

        return engine
    # A pooled connection may have been closed by the server (restart, idle timeout).
    return create_engine(url, pool_pre_ping=True)


def _owner_only(url: str) -> None:
    """Create the SQLite file readable by its owner alone (0600), or make it so.

    It holds children's safeguarding records; the process umask (often 022) would leave it
    world-readable. SQLite gives its -wal and -shm files the database file's mode.
    """
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def ping(engine: Engine) -> None:
    """Raises if the database cannot be reached (the health check)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class SessionStore:
    """The base of every service's ``Store``: its engine and one transaction per ``session``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back if it
        raises."""
        with self._sessions.begin() as s:
            yield s
