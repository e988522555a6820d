"""Bring the notifications service's tables to the latest migration.

The API and the worker both migrate at start-up, and the stack starts them together: on a
fresh database two upgrades would race to create the same tables. A lock serialises them
(an advisory lock on PostgreSQL, a lock file beside the SQLite file); the second finds the
schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

# Any fixed 64-bit number, unique to this service's migrations.
_PG_LOCK_KEY = 0x4D5345544E4F54  # "MSETNOT"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "services.notifications:migrations")
    return cfg


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _advisory_lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Held until the migration's transaction ends (PostgreSQL DDL is transactional).
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def upgrade(engine: Engine) -> None:
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        _advisory_lock(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
