"""The API and the worker migrate the meeting tables at the same moment on start-up, as two
processes on one database: all must start, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect

from mset_platform.db import make_engine

MIGRATE = (
    "import sys; from services.meeting.migrate import upgrade; "
    "from mset_platform.db import make_engine; upgrade(make_engine(sys.argv[1]))"
)


def test_concurrent_start_ups_all_migrate(database_url: str) -> None:
    # Processes, not threads: alembic's migration context is process-global.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=60), p.stderr.read().decode() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0, 0, 0], [err[-600:] for _, err in results]
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"meeting_meetings", "meeting_agenda_items", "alembic_version_meeting"} <= tables
