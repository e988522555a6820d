"""Burst: submissions as fast as a partner can send them, and what the partner is answered.

    python -m bench.burst.run                        # 2,000 submissions, 64 in flight
    python -m bench.burst.run --count 200 --concurrency 64
    python -m bench.burst.run --start-timeout 0.5    # a tighter start bound: more 503s
    python -m bench.burst.run --replicas 2           # two of every API and worker

The stack's parts run as separate processes (``deploy.supervise``) on free ports in a
temporary directory, every service in a fresh PostgreSQL database (dropped afterwards;
``--sqlite`` for a file each, as ``make dev`` has). A partner sends ``--count`` referrals,
``--concurrency`` at a time, each with its own Idempotency-Key, spread over the referral
API's replicas in turn. A ``503`` is retried with the same key after its ``Retry-After``;
anything else that is not a ``202`` (another status, a refused connection, no answer within
``--http-timeout``) is retried with the same key after a second, as a partner's system does,
until ``--within`` runs out. Then every accepted referral is checked: its workflow exists and
is at ``awaiting_pre_mset`` (Temporal's visibility, waited for up to ``--within``), and no
other workflow was started in the run's authority (nothing twice).

The table: sent (submissions), then every answer by status (202; 503 with and without
Retry-After; other, including time-outs), never accepted (gave up), lost (accepted but no
workflow at the stage in time), doubled (workflows beyond one per accepted referral), and
the latency of every answer and of each submission from first send to its 202 (p50/p95).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from deploy.stack import dev_keyring
from mset_contract.referral import referral_example
from mset_contract.temporal import (
    LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
    REFERRAL_WORKFLOW,
    STAGE_SEARCH_ATTRIBUTE,
)
from mset_platform.temporal import data_converter
from tests.support.db import postgres_database
from tests.support.faults import AWAITING, FaultStack, fault_stack, new_tenant


@dataclass
class Tally:
    answers: Counter[str] = field(default_factory=Counter)  # "202", "503+RA", "other", ...
    answer_ms: list[float] = field(default_factory=list)
    accepted_ms: list[float] = field(default_factory=list)  # first send -> 202
    accepted: dict[str, str] = field(default_factory=dict)  # workflow id -> referral id
    gave_up: int = 0


def tool(authority: str) -> dict[str, Any]:
    t = referral_example()
    t["partner_reference"] = f"BURST-{uuid.uuid4().hex[:12]}"
    t["child"]["agency_child_ref"] = f"BURST-CHILD-{uuid.uuid4().hex[:10]}"
    t["child"]["local_authority"] = authority
    return t


async def send_one(
    http: httpx.AsyncClient,
    stack: FaultStack,
    key: str,
    body: dict[str, Any],
    t: Tally,
    deadline: float,
) -> None:
    idempotency = {"X-API-Key": key, "Idempotency-Key": str(uuid.uuid4())}
    first = time.perf_counter()
    while time.monotonic() < deadline:
        began = time.perf_counter()
        wait = 1.0
        try:
            resp = await http.post(
                f"{stack.referral()}/v1/referrals", json=body, headers=idempotency
            )
        except httpx.TimeoutException:
            t.answers["other: no answer in time"] += 1
        except httpx.TransportError as exc:
            t.answers[f"other: {type(exc).__name__}"] += 1
        else:
            t.answer_ms.append((time.perf_counter() - began) * 1000)
            if resp.status_code == 202:
                t.answers["202"] += 1
                t.accepted_ms.append((time.perf_counter() - first) * 1000)
                got = resp.json()
                t.accepted[got["workflow_id"]] = got["referral_id"]
                return
            if resp.status_code == 503 and resp.headers.get("Retry-After", "").isdigit():
                t.answers["503 with Retry-After"] += 1
                wait = float(resp.headers["Retry-After"])
            else:
                t.answers[f"other: {resp.status_code}"] += 1
        await asyncio.sleep(wait)
    t.gave_up += 1


async def at_stage(client: Client, authority: str, wanted: set[str], within: float) -> set[str]:
    """Workflow ids of ``wanted`` at awaiting_pre_mset, waited for up to ``within``."""
    query = (
        f"WorkflowType = '{REFERRAL_WORKFLOW}' "
        f"AND {LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name} = '{authority}' "
        f"AND {STAGE_SEARCH_ATTRIBUTE.name} = '{AWAITING}'"
    )
    deadline = time.monotonic() + within
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {w.id async for w in client.list_workflows(query)}
        if wanted <= seen:
            break
        await asyncio.sleep(2.0)
    return seen & wanted


async def burst(stack: FaultStack, args: argparse.Namespace) -> tuple[Tally, int, int, float]:
    tenant = new_tenant(stack, "burst")
    authority = f"burst-{uuid.uuid4().hex[:8]}"
    t = Tally()
    gate = asyncio.Semaphore(args.concurrency)
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    deadline = time.monotonic() + args.within
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=args.http_timeout, limits=limits) as http:

        async def one() -> None:
            async with gate:
                await send_one(http, stack, tenant.api_key, tool(authority), t, deadline)

        await asyncio.gather(*(one() for _ in range(args.count)))
    took = time.perf_counter() - started
    print(f"  sent in {took:.1f} s; checking every accepted referral ...", flush=True)

    # The stack's own payload keys: its workers' results are unreadable without them.
    client = await Client.connect(
        f"127.0.0.1:{stack.settings.temporal_port}",
        data_converter=data_converter(dev_keyring(stack.settings.data_dir)),
    )
    reached = await at_stage(client, authority, set(t.accepted), args.within)
    everything = (
        await client.count_workflows(
            f"WorkflowType = '{REFERRAL_WORKFLOW}' "
            f"AND {LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name} = '{authority}'"
        )
    ).count
    return t, len(reached), everything, took


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


@contextlib.contextmanager
def database(sqlite: bool) -> Iterator[str | None]:
    if sqlite:
        yield None
    else:
        with postgres_database() as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="submissions")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight at once")
    parser.add_argument("--replicas", type=int, default=1, help="of every API and worker")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file per service")
    parser.add_argument(
        "--start-timeout", type=float, default=None, help="MSET_REFERRAL_START_TIMEOUT_SECONDS"
    )
    parser.add_argument("--http-timeout", type=float, default=30.0, help="the partner's, s")
    parser.add_argument("--within", type=float, default=900.0, help="s to send, then to check")
    args = parser.parse_args()

    env = {}
    if args.start_timeout is not None:
        env["MSET_REFERRAL_START_TIMEOUT_SECONDS"] = str(args.start_timeout)
    with (
        tempfile.TemporaryDirectory(prefix="mset-bench-burst-") as tmp,
        database(args.sqlite) as url,
    ):
        print("starting the stack's parts in", tmp, flush=True)
        with fault_stack(
            Path(tmp) / "data", Path(tmp) / "logs", args.replicas, url, env=env
        ) as stack:
            print(f"{args.count} submissions, {args.concurrency} in flight ...", flush=True)
            t, reached, workflows, took = asyncio.run(burst(stack, args))

    accepted = len(t.accepted)
    print()
    print(
        f"MSET burst bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.count} submissions, {args.concurrency} in flight, "
        f"{args.replicas} replica(s) of each API and worker, "
        f"{'SQLite' if args.sqlite else 'PostgreSQL'}, start bound "
        f"{args.start_timeout if args.start_timeout is not None else 'default'} s"
    )
    rows: list[tuple[str, str]] = [
        ("sent", str(args.count)),
        *((f"answered {k}", str(n)) for k, n in sorted(t.answers.items())),
        ("accepted", f"{accepted}  ({accepted / took:.1f}/s over {took:.0f} s)"),
        ("never accepted (gave up)", str(t.gave_up)),
        ("lost (accepted, not at awaiting_pre_mset)", str(accepted - reached)),
        ("doubled (workflows beyond one each)", str(max(0, workflows - accepted))),
        (
            "answer latency p50 / p95",
            f"{statistics.median(t.answer_ms) if t.answer_ms else float('nan'):.0f} / "
            f"{pct(t.answer_ms, 95):.0f} ms",
        ),
        (
            "first send -> 202 p50 / p95",
            f"{statistics.median(t.accepted_ms) if t.accepted_ms else float('nan'):.0f} / "
            f"{pct(t.accepted_ms, 95):.0f} ms",
        ),
    ]
    for name, value in rows:
        print(f"  {name:<44}{value}")


if __name__ == "__main__":
    main()
