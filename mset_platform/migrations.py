"""Bringing a service's tables to its latest migration, safely from several processes.

The API, the worker and tools all migrate at start-up, often at the same moment on a fresh
database. One lock serialises them, and the second finds the schema at head and does
nothing:

- PostgreSQL: ``pg_advisory_xact_lock`` with a key derived from the service's name, held
  until the migration's transaction ends (PostgreSQL DDL is transactional).
- SQLite: an exclusive ``fcntl`` lock on a file beside the database. SQLite has no advisory
  lock and creates tables outside a transaction, so a lock inside the database would not do.

Each service keeps its own version table and owns only the tables named with its prefix, so
services can share one database without touching each other's tables.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text

from mset_platform.db import make_engine
from mset_platform.process import configure_logging, refusing_to_start
from mset_platform.settings import DatabaseSettings
from mset_platform.tracing import service_name

log = logging.getLogger("mset.migrations")


@dataclass(frozen=True)
class Migrations:
    """A service's migrations: ``service`` names its tables' prefix, its version table and
    its lock; ``script_location`` is where alembic finds them (``package:folder``)."""

    service: str
    script_location: str

    @property
    def lock_key(self) -> int:
        """A signed 64-bit advisory-lock key, the same in every process of this service."""
        digest = hashlib.sha256(f"mset-migrations:{self.service}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", self.script_location)
        return cfg

    def upgrade(self, engine: Engine) -> None:
        cfg = self.config()
        with _file_lock(engine), engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def open(self, database_url: str, auto_migrate: bool = True) -> Engine:
        """The service's engine, its tables brought to head first when ``auto_migrate``."""
        engine = make_engine(database_url)
        if auto_migrate:
            self.upgrade(engine)
        return engine

    def main(self, env_prefix: str) -> None:
        """``python -m services.<name>.migrate``: bring the tables to head once and exit.

        A deployment runs this as a Job before the service's processes start (they then run
        with ``auto_migrate`` off), so a schema change is applied once, by one process, and a
        failed migration stops the rollout instead of every pod. Reads only the database
        settings (``<env_prefix>DATABASE_URL``, else ``DATABASE_URL``): the Job needs no
        other secret of the service's.
        """
        with refusing_to_start(f"{self.service} migrations"):
            settings = MigrationSettings(_env_prefix=env_prefix)
        configure_logging(settings.environment, service_name(f"{self.service} migrations"))
        engine = make_engine(settings.database_url)
        try:
            self.upgrade(engine)
        finally:
            engine.dispose()
        log.info("%s tables are at the latest migration", self.service)


class MigrationSettings(DatabaseSettings):
    """A migration's settings: the database only (it never talks to Temporal, so it holds
    no payload keys)."""

    payload_keys_required: ClassVar[bool] = False


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


def run_env(service: str, metadata: MetaData) -> None:
    """The body of every service's alembic ``env.py`` (migrations run programmatically, on
    the connection ``Migrations.upgrade`` passes in)."""
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Each service keeps its own version table, so services can share one database.
        version_table=f"alembic_version_{service}",
        # Only this service's tables: another service's, in a shared database, are not ours.
        include_name=lambda name, type_, _parent: (
            type_ != "table" or (name or "").startswith(f"{service}_")
        ),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
