"""The shared database helpers: what every service's SQLite file looks like on disk."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from mset_platform.db import make_engine


def test_a_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # Created under the usual umask (022), which would leave it world-readable; and an
    # existing file left world-readable by an older version is tightened.
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.db"
        existing = tmp_path / "existing.db"
        existing.touch(mode=0o644)
        for path in (fresh, existing):
            engine = make_engine(f"sqlite:///{path}")
            try:
                with engine.begin() as conn:
                    conn.execute(text("CREATE TABLE t (x INTEGER)"))
                    conn.execute(text("INSERT INTO t VALUES (1)"))
                    # The write-ahead log exists while the connection is open.
                    modes = {
                        p.name: oct(p.stat().st_mode & 0o777)
                        for p in tmp_path.iterdir()
                        if p.name.startswith(path.name)
                    }
            finally:
                engine.dispose()
            assert f"{path.name}-wal" in modes
            assert modes == dict.fromkeys(modes, "0o600"), modes
    finally:
        os.umask(old)
