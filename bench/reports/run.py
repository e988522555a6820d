"""Bench: every board report, for one authority and for the whole dataset, on PostgreSQL
(issue 13 item 5).

Loads a national-scale year with the historic import (bench/import/run.py: a fresh
database, dropped afterwards) unless ``--database-url`` names one kept by
``bench.import.run --keep``, then times each report (the referral service's own tables;
attendance is the meeting service's aggregate and is not timed here) for one authority and
for every authority rolled up, printing the figures.

    .venv/bin/python -m bench.reports.run                        # the full year: 100k / 300k
    .venv/bin/python -m bench.reports.run --referrals 10000 --episodes 30000

Aim: each report under one second.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from mset_contract.auth import Principal
from mset_contract.reports import ReportName
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from services.referral.report_store import ReportStore
from services.referral.reports import REGION_ALL, ReportQuery, ReportsDesk
from services.referral.store import Store

bench_import = importlib.import_module("bench.import.run")
dataset = importlib.import_module("bench.import.dataset")

SINCE = datetime(2024, 1, 1, tzinfo=UTC)
UNTIL = datetime(2025, 1, 1, tzinfo=UTC)
TIMED = [n for n in ReportName if n is not ReportName.attendance]


def analyst() -> Principal:
    return Principal(
        kind="user",
        agency_id=uuid.uuid4(),
        agency_name="Bench",
        agency_type=AgencyType.childrens_social_care,
        user_id=uuid.uuid4(),
        role=Role.analyst,
    )


def time_reports(url: str, n_authorities: int, repeats: int) -> list[tuple[str, str, float, int]]:
    """(report, scope, median seconds, rows counted in its first table's total)."""
    engine = make_engine(url)
    # After a bulk load the planner's statistics are those of empty tables, and the pages
    # are not yet marked all-visible (which the reports' index-only scans need), until
    # autovacuum's next pass (within minutes, in service); the bench does not wait for it.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    las = dataset.authorities(n_authorities)
    desk = ReportsDesk(
        ReportStore(Store(engine)),
        meetings=None,  # type: ignore[arg-type]  # attendance is not timed
        authorities=las,
        clock=lambda: UNTIL,
    )
    who = analyst()
    out = []
    try:
        for name in TIMED:
            for scope, q in (
                (las[0], ReportQuery(las[0], None, SINCE, UNTIL)),
                ("all", ReportQuery(None, REGION_ALL, SINCE, UNTIL)),
            ):
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    report = asyncio.run(desk.report(who, name, q))
                    times.append(time.perf_counter() - t0)
                first = report.tables[0]
                total = sum(first.total.counts.values()) if first.total else 0
                out.append((name.value, scope, statistics.median(times), total))
                print(f"  {name.value:13} {scope:8} {statistics.median(times):7.3f} s", flush=True)
    finally:
        engine.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="A database loaded by bench.import.run --keep.")
    p.add_argument("--referrals", type=int, default=100_000)
    p.add_argument("--episodes", type=int, default=300_000)
    p.add_argument("--authorities", type=int, default=150)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if a.database_url:
        figures = time_reports(a.database_url, a.authorities, a.repeats)
    else:
        with bench_import.fresh_database(bench_import.ADMIN_URL, keep=False) as url:
            summary, _, took = bench_import.load(
                url, a.referrals, a.episodes, a.authorities, a.seed, 500
            )
            print(f"loaded {summary.loaded:,} records in {took:.1f} s")
            figures = time_reports(url, a.authorities, a.repeats)
    slow = [f for f in figures if f[2] >= 1.0]
    print(f"{len(figures)} timings, slowest {max(f[2] for f in figures):.3f} s")
    print("all under one second" if not slow else f"over one second: {slow}")


if __name__ == "__main__":
    main()
