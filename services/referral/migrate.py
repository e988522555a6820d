"""Bring the referral service's tables to the latest migration.

The API, the worker and the `mset` command all migrate at start-up, often at the same moment
on a fresh database. A lock serialises them — an advisory lock on PostgreSQL (held until the
migration's transaction ends), a lock file beside a SQLite file — so the second finds the
schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

_PG_LOCK_KEY = 0x4D534554524546  # "MSETREF"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "services.referral:migrations")
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


def upgrade(engine: Engine) -> None:
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
