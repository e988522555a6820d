"""Fresh PostgreSQL databases for tests, on the server at 127.0.0.1:5432, and databases that
start with every service's tables already at head (copied from one migrated once a session).

Why copies: bringing the three services' tables to head takes one to four seconds per
PostgreSQL database on a busy CI machine (about a second on SQLite), and more than half the
integration tests start with exactly that; copying a migrated database takes a fraction of
it. Tests of the migrations themselves still get an empty database (``database_url`` in
tests/conftest.py decides which)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from mset_platform.db import make_engine

POSTGRES_ADMIN_URL = os.environ.get(
    "MSET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_BASE = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")


def _drop(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_database(template: str | None = None, dropper: Dropper | None = None) -> Iterator[str]:
    """A new database for the duration of the block (a copy of ``template`` if named), dropped
    afterwards (by ``dropper`` if given). PostgreSQL must be reachable: the suite fails rather
    than quietly testing SQLite alone."""
    name = f"mset_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"{_BASE}/{name}"
    finally:
        if dropper is None:
            _drop(name)
        else:
            dropper.drop(name)


class Dropper:
    """Drops finished tests' databases in a thread of its own: the next test starts while the
    server removes the last one's files (a second or two on a busy machine, per database).
    Each database is the test's alone and every connection to it is closed or forced off, so
    nothing of it reaches another test. ``wait`` reports any drop that failed."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-db")
        self._pending: list[Future[None]] = []

    def drop(self, name: str) -> None:
        self._pending.append(self._pool.submit(_drop, name))

    def wait(self) -> None:
        try:
            for f in self._pending:
                f.result()
        finally:
            self._pool.shutdown(wait=True)


def migrate_everything(url: str) -> None:
    """Every service's tables at head, in one database (each service owns its own tables and
    version table, so they share a database as the stack's may)."""
    # Imported here: tests/support is imported by tiers that never touch a database.
    from services.meeting.migrate import upgrade as meeting_upgrade
    from services.notifications.migrate import upgrade as notifications_upgrade
    from services.referral.migrate import upgrade as referral_upgrade

    engine = make_engine(url)
    try:
        referral_upgrade(engine)
        notifications_upgrade(engine)
        meeting_upgrade(engine)
    finally:
        engine.dispose()


@contextmanager
def migrated_postgres_template() -> Iterator[tuple[str, Dropper]]:
    """A PostgreSQL database with every service's tables at head, to copy (its name), and the
    dropper its copies use; dropped, after every copy, at the end."""
    name = f"mset_template_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dropper = Dropper()
    try:
        # Disposed before any copy: PostgreSQL copies a database only while nobody is in it.
        migrate_everything(f"{_BASE}/{name}")
        yield name, dropper
    finally:
        try:
            dropper.wait()
        finally:
            _drop(name)


def migrated_sqlite_template(folder: Path) -> Path:
    """A SQLite file with every service's tables at head, to copy."""
    path = folder / "template.db"
    migrate_everything(f"sqlite:///{path}")
    # The engine is disposed: the last connection closed checkpointed the write-ahead log
    # into the file, so the file alone is the whole database.
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def copy_sqlite(template: Path, to: Path) -> str:
    shutil.copyfile(template, to)
    return f"sqlite:///{to}"
