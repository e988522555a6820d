"""Bench: the historic import at national scale (issue 13 item 5).

Generates a year (``--referrals`` referrals and ``--episodes`` missing episodes across
``--authorities`` authorities, from ``--seed``: bench/import/dataset.py), imports it into a
fresh PostgreSQL database and prints the rate and the total time. The database is dropped
afterwards unless ``--keep`` (then bench/reports can time the reports on it).

    .venv/bin/python -m bench.import.run                         # the full year: 100k / 300k
    .venv/bin/python -m bench.import.run --referrals 10000 --episodes 30000

Aim: the full year in under an hour on the 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from mset_contract.vocab import AgencyType
from mset_platform.db import make_engine
from services.referral.identity import Identity
from services.referral.importer import HistoricImport, ImportSummary
from services.referral.migrate import upgrade
from services.referral.store import Store

# "import" is a keyword: the package is reached by name.
dataset = importlib.import_module("bench.import.dataset")

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(admin_url: str, keep: bool) -> Iterator[str]:
    name = f"mset_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(
    url: str, referrals: int, episodes: int, authorities: int, seed: int, batch: int
) -> tuple[ImportSummary, float, float]:
    """Generate the year and import it into ``url``: (summary, generate s, import s)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        store = Store(engine)
        identity = Identity(store)
        las = dataset.authorities(authorities)
        identity.create_agency(dataset.POLICE, AgencyType.police)
        for la in las:
            identity.create_agency(
                dataset.agency_of(la), AgencyType.childrens_social_care, authority=la
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "year.jsonl"
            t0 = time.perf_counter()
            dataset.write(path, referrals, episodes, authorities, seed)
            generated = time.perf_counter() - t0
            job = HistoricImport(store, None, las, batch_size=batch)
            done = 0
            t1, c1 = time.perf_counter(), time.process_time()

            def progress(n: int) -> None:
                nonlocal done
                done += n
                if done % 20000 == 0:
                    rate = done / (time.perf_counter() - t1)
                    print(f"  {done:,} rows, {rate:,.0f} rows/s", flush=True)

            summary = asyncio.run(job.run(path, dataset.agency_of(las[0]), progress=progress))
            imported = time.perf_counter() - t1
            # The machine is shared: the importer's own CPU time, and how busy it was.
            print(
                f"  importer CPU {time.process_time() - c1:.1f} s of {imported:.1f} s wall; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
        return summary, generated, imported
    finally:
        engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--referrals", type=int, default=100_000)
    p.add_argument("--episodes", type=int, default=300_000)
    p.add_argument("--authorities", type=int, default=150)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--admin-url", default=ADMIN_URL)
    p.add_argument("--keep", action="store_true", help="Keep the database (prints its URL).")
    a = p.parse_args()
    with fresh_database(a.admin_url, a.keep) as url:
        summary, generated, took = load(
            url, a.referrals, a.episodes, a.authorities, a.seed, a.batch_size
        )
        rows = summary.rows
        print(f"generated {rows:,} rows in {generated:.1f} s")
        print(
            f"imported {rows:,} rows ({summary.loaded:,} loaded, {summary.rejected_rows} "
            f"rejected) in {took:.1f} s: {rows / took:,.0f} rows/s"
        )
        full = 400_000 / (rows / took)
        print(f"at this rate the full year (400,000 rows) takes {full / 60:.1f} min")
        if summary.rejected:
            print("first rejections:", summary.rejected[:5])
        if a.keep:
            print(f"database kept: {url}")


if __name__ == "__main__":
    main()
