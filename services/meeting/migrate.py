"""Bring the meeting service's tables to the latest migration.

The API and the worker both migrate at start-up, often at the same moment, on the same
database. On PostgreSQL an advisory lock makes the second wait for the first. SQLite has no
such lock and creates tables outside a transaction, so the loser of a race fails on its first
CREATE (the version table) having changed nothing; it waits and tries again, and then finds
the schema already at head.
"""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

# pg_advisory_xact_lock key: "meet" in ASCII. Held until the migration's transaction ends.
_PG_LOCK_KEY = 0x6D656574
ATTEMPTS = 5


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "services.meeting:migrations")
    return cfg


def _upgrade_once(engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def upgrade(engine: Engine) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _upgrade_once(engine)
            return
        except DBAPIError:
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.3 * attempt)  # the other process is migrating: let it finish
