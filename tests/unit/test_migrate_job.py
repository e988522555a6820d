"""``python -m services.<name>.migrate`` (the migration Jobs in deploy/k8s/base/jobs.yaml)
brings that service's tables to head from its database settings alone, and exits 0."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("service", ["referral", "meeting", "notifications"])
def test_the_migration_job_creates_the_services_tables(service: str, tmp_path: Path) -> None:
    db = tmp_path / f"{service}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSET_")}
    # Production, with none of the service's other secrets: the Job needs only its database.
    env |= {"MSET_ENVIRONMENT": "production", "DATABASE_URL": f"sqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}.migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert f"alembic_version_{service}" in tables
    assert any(t.startswith(f"{service}_") for t in tables)
