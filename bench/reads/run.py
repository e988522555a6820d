"""Status reads under a workflow backlog: the read model (``GET /v1/referrals/{id}``, as
served now) against the old path, a query of each case's workflow, in one run, interleaved
under the same backlog (issue 16, finding 5; docs/decisions/0022).

    python -m bench.reads.run                         # starts the stack's parts (temporary dir)
    python -m bench.reads.run --cases 200 --backlog-rate 12 --passes 3

1. ``--cases`` referrals are submitted and left at ``awaiting_pre_mset``.
2. A backlog is kept going: ``--backlog-rate`` submissions a second, open loop.
3. ``--passes`` times, a pass of reads of every case through the referral API, then a pass
   of queries of every case's workflow (``--concurrency`` at a time each), timed per read
   and per pass.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.intake.run import paced, pct
from deploy.stack import StackSettings, demo_credentials, dev_keyring
from deploy.supervise import Supervisor
from mset_contract.referral_workflow import ReferralState
from mset_contract.temporal import REFERRAL_STATE_QUERY, referral_workflow_id
from mset_platform.codec import Keyring
from mset_platform.temporal import data_converter
from tests.support.faults import high_risk_tool, stack_settings


async def timed_pass(
    ids: list[str], concurrency: int, one: Callable[[str], Awaitable[None]]
) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    each: list[float] = []

    async def run(i: str) -> None:
        async with gate:
            t0 = time.monotonic()
            await one(i)
            each.append((time.monotonic() - t0) * 1000)

    t0 = time.monotonic()
    await asyncio.gather(*(run(i) for i in ids))
    return time.monotonic() - t0, each


async def measure(
    referral_url: str, temporal: str, api_key: str, keyring: Keyring, args: argparse.Namespace
) -> list[str]:
    client = await Client.connect(temporal, data_converter=data_converter(keyring))
    key = {"X-API-Key": api_key}
    async with httpx.AsyncClient(timeout=120) as http:

        async def submit() -> str:
            while True:
                try:
                    resp = await http.post(
                        f"{referral_url}/v1/referrals", json=high_risk_tool(), headers=key
                    )
                except httpx.TransportError:
                    resp = None  # a connection dropped under load: as a partner would, again
                if resp is not None and resp.status_code == 202:
                    return str(resp.json()["referral_id"])
                await asyncio.sleep(0.5)  # 503 under load: as a partner would, again

        ids = [await submit() for _ in range(args.cases)]
        for rid in ids:  # every case at rest before the backlog starts
            while True:
                got = await http.get(f"{referral_url}/v1/referrals/{rid}", headers=key)
                if got.json()["stage"] == "awaiting_pre_mset":
                    break
                await asyncio.sleep(0.2)

        async def read_model(rid: str) -> None:
            resp = await http.get(f"{referral_url}/v1/referrals/{rid}", headers=key)
            assert resp.status_code == 200, resp.text

        async def query(rid: str) -> None:
            handle = client.get_workflow_handle(referral_workflow_id(uuid.UUID(rid)))
            await handle.query(
                REFERRAL_STATE_QUERY, result_type=ReferralState, rpc_timeout=timedelta(minutes=2)
            )

        async def backlog_one() -> None:
            await submit()

        count = int(args.backlog_rate * 3600)  # cancelled once the passes are done
        backlog = asyncio.ensure_future(paced(count, args.backlog_rate, backlog_one))
        await asyncio.sleep(args.warmup)  # let the backlog build before the first pass
        results: dict[str, list[tuple[float, list[float]]]] = {"read model": [], "query": []}
        try:
            for _ in range(args.passes):
                results["read model"].append(await timed_pass(ids, args.concurrency, read_model))
                results["query"].append(await timed_pass(ids, args.concurrency, query))
        finally:
            backlog.cancel()
            await asyncio.gather(backlog, return_exceptions=True)

    lines = [
        f"status reads of {args.cases} cases, {args.concurrency} at a time, "
        f"{args.passes} passes each, under a backlog of {args.backlog_rate:g} submissions/s:"
    ]
    for name, label in (
        ("read model", "GET /v1/referrals/{id} (read model)"),
        ("query", "workflow query (the old path)"),
    ):
        passes = [p for p, _ in results[name]]
        each = [v for _, e in results[name] for v in e]
        lines.append(
            f"  {label:<38} per read p50 {statistics.median(each):8.1f} ms   p95 "
            f"{pct(each, 95):8.1f} ms   per pass {min(passes):6.1f}-{max(passes):6.1f} s"
        )
    rm = [v for _, e in results["read model"] for v in e]
    q = [v for _, e in results["query"] for v in e]
    lines.append(
        f"  ratio query / read model: p50 x{statistics.median(q) / statistics.median(rm):.1f}"
        f"   p95 x{pct(q, 95) / pct(rm, 95):.1f}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--backlog-rate", type=float, default=12.0)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of backlog first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mset-bench-reads-") as tmp:
        settings: StackSettings = stack_settings(Path(tmp) / "data")
        settings.data_dir.mkdir(parents=True)
        creds: dict[str, Any] = demo_credentials(settings)
        sup = Supervisor(settings, Path(tmp) / "logs")
        print("starting the stack's parts in", tmp, flush=True)
        try:
            sup.start_all()
            lines = asyncio.run(
                measure(
                    f"http://127.0.0.1:{settings.referral_port}",
                    f"127.0.0.1:{settings.temporal_port}",
                    creds["api_key"],
                    dev_keyring(settings.data_dir),
                    args,
                )
            )
        finally:
            sup.stop_all()
    print()
    print(
        f"MSET status-read bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
