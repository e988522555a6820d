"""Intake: what the referral API and the case workflow cost over bare Temporal, on the same
Temporal server, in one run, each pair measured under the same conditions.

    python -m bench.intake.run                       # starts the stack's parts (temporary dir)
    python -m bench.intake.run --submissions 500 --chains 200
    python -m bench.intake.run --running --data-dir data   # a stack you started (make dev)

1. Intake throughput: ``--submissions`` high-risk referrals POSTed to the referral API,
   ``--concurrency`` at a time, against as many bare ``client.start_workflow`` calls (a
   workflow type nobody runs, on a queue of its own, timing out by itself), at the same
   concurrency; quiet, then again with a CPU load beside it (one busy process per core).
2. Latency, submission to ``awaiting_pre_mset`` (the completion of the ``record_stage``
   activity that records it, from the workflow's history), p50/p95, for ``--chains`` referrals;
   against a bare workflow running the same chain of activities with empty bodies (facts on a
   referral queue, evaluate on a triage queue, publish on a notifications queue beside them,
   then two record_stage on the referral queue), and a bare workflow with one empty activity;
   the three kinds started in turn, ``--rate`` starts a second in all. The bare workflows run
   on three task queues of their own beside the real ones (the real workers poll the real
   queues and would take the bare tasks), served by workers in this process, on the same
   Temporal server.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from deploy.stack import StackSettings, demo_credentials, dev_keyring
from deploy.supervise import Supervisor
from mset_contract.temporal import (
    NOTIFICATIONS_PUBLISH_ACTIVITY,
    REFERRAL_RECORD_STAGE_ACTIVITY,
    REFERRAL_TRIAGE_FACTS_ACTIVITY,
    TRIAGE_EVALUATE_ACTIVITY,
    referral_workflow_id,
)
from mset_platform.codec import Keyring
from mset_platform.temporal import data_converter
from tests.support.faults import high_risk_tool, stack_settings

BARE = uuid.uuid4().hex[:6]
Q_WORKFLOWS = f"bench-bare-workflows-{BARE}"
Q_REFERRAL = f"bench-bare-referral-{BARE}"
Q_TRIAGE = f"bench-bare-triage-{BARE}"
Q_NOTIFICATIONS = f"bench-bare-notifications-{BARE}"
Q_NOBODY = f"bench-bare-nobody-{BARE}"
T = timedelta(seconds=30)


# --- the bare workflows (unsandboxed: a bench module, not workflow code) -----------------


@activity.defn(name=REFERRAL_TRIAGE_FACTS_ACTIVITY)
async def empty_facts(_: Any = None) -> None:
    return None


@activity.defn(name=TRIAGE_EVALUATE_ACTIVITY)
async def empty_evaluate(_: Any = None) -> None:
    return None


@activity.defn(name=NOTIFICATIONS_PUBLISH_ACTIVITY)
async def empty_publish(_: Any = None) -> None:
    return None


@activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
async def empty_record(_: Any = None) -> None:
    return None


@workflow.defn(name="bench.BareChain", sandboxed=False)
class BareChain:
    """The referral workflow's chain to awaiting_pre_mset, with empty activities: facts,
    evaluate, publish (beside the rest, as the outbox pump does), record triaged, record
    awaiting_pre_mset."""

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            REFERRAL_TRIAGE_FACTS_ACTIVITY, task_queue=Q_REFERRAL, start_to_close_timeout=T
        )
        await workflow.execute_activity(
            TRIAGE_EVALUATE_ACTIVITY, task_queue=Q_TRIAGE, start_to_close_timeout=T
        )
        publish = asyncio.ensure_future(
            workflow.execute_activity(
                NOTIFICATIONS_PUBLISH_ACTIVITY, task_queue=Q_NOTIFICATIONS, start_to_close_timeout=T
            )
        )
        for _ in range(2):
            await workflow.execute_activity(
                REFERRAL_RECORD_STAGE_ACTIVITY, task_queue=Q_REFERRAL, start_to_close_timeout=T
            )
        await publish


@workflow.defn(name="bench.BareOne", sandboxed=False)
class BareOne:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            REFERRAL_RECORD_STAGE_ACTIVITY, task_queue=Q_REFERRAL, start_to_close_timeout=T
        )


def bare_workers(client: Client) -> list[Worker]:
    return [
        Worker(client, task_queue=Q_WORKFLOWS, workflows=[BareChain, BareOne]),
        Worker(client, task_queue=Q_REFERRAL, activities=[empty_facts, empty_record]),
        Worker(client, task_queue=Q_TRIAGE, activities=[empty_evaluate]),
        Worker(client, task_queue=Q_NOTIFICATIONS, activities=[empty_publish]),
    ]


# --- helpers -------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def _burn() -> None:
    while True:
        pass


@contextmanager
def cpu_load() -> Iterator[None]:
    """One busy process per core, stopped by pid."""
    procs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() or 1)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


async def rate_of(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> float:
    """``n`` calls of ``one``, ``concurrency`` at a time: calls a second."""
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def record_stage_done(client: Client, workflow_id: str, nth: int) -> datetime | None:
    """When the ``nth`` record_stage activity of the workflow completed (history time)."""
    scheduled: dict[int, str] = {}
    seen = 0
    async for e in client.get_workflow_handle(workflow_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = e.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(sid) == REFERRAL_RECORD_STAGE_ACTIVITY:
                seen += 1
                if seen == nth:
                    return e.event_time.ToDatetime(tzinfo=UTC)
    return None


async def latencies(
    client: Client, started: dict[str, datetime], nth: int, within: float = 180.0
) -> list[float]:
    out: dict[str, float] = {}
    deadline = time.monotonic() + within
    while len(out) < len(started) and time.monotonic() < deadline:
        for wid, t0 in started.items():
            if wid not in out:
                done = await record_stage_done(client, wid, nth)
                if done is not None:
                    out[wid] = (done - t0).total_seconds() * 1000
        if len(out) < len(started):
            await asyncio.sleep(0.5)
    if len(out) < len(started):
        print(f"  ({len(started) - len(out)} never reached the stage within {within:.0f} s)")
    return list(out.values())


async def settled(client: Client, within: float = 600.0) -> None:
    backlog = (
        "WorkflowType='ReferralWorkflow' AND ExecutionStatus='Running' "
        "AND MsetStage!='awaiting_pre_mset'"
    )
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not (await client.count_workflows(backlog)).count:
            return
        await asyncio.sleep(1.0)


async def paced(count: int, rate: float, one: Callable[[], Awaitable[None]]) -> None:
    """Open loop: one call every 1/rate s, none waiting for the last."""
    tasks: list[asyncio.Future[None]] = []
    next_at = time.monotonic()
    for _ in range(count):
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += 1 / rate
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)


# --- the measurements ----------------------------------------------------------------------


async def measure(
    referral_url: str, temporal: str, api_key: str, keyring: Keyring, args: argparse.Namespace
) -> list[str]:
    # The stack's own payload keys: its workers could not read what this client writes
    # otherwise, nor this client their results.
    client = await Client.connect(temporal, data_converter=data_converter(keyring))
    key = {"X-API-Key": api_key}
    lines: list[str] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def submit() -> dict[str, Any]:
            while True:
                resp = await http.post(
                    f"{referral_url}/v1/referrals", json=high_risk_tool(), headers=key
                )
                if resp.status_code == 202:
                    return dict(resp.json())
                await asyncio.sleep(0.5)  # 503 under load: as a partner would, again

        async def api_one() -> None:
            await submit()

        async def bare_start() -> None:
            await client.start_workflow(
                "bench.Nobody",
                id=f"bench-nobody-{uuid.uuid4().hex}",
                task_queue=Q_NOBODY,
                execution_timeout=timedelta(minutes=1),
            )

        await api_one()  # warm: connections, caches, the first workflow
        await bare_start()
        n, c = args.submissions, args.concurrency
        lines.append(f"intake throughput, {n} submissions each, {c} at a time (per second):")
        for label in ("quiet", "with CPU load"):
            with cpu_load() if label != "quiet" else _nothing():
                api = await rate_of(n, c, api_one)
                bare = await rate_of(n, c, bare_start)
            lines.append(
                f"  {label:<14} referral API {api:7.1f}/s   bare start_workflow "
                f"{bare:7.1f}/s   ratio bare/API x{bare / api:.1f}"
            )

        real: dict[str, datetime] = {}

        async def real_one() -> None:
            t0 = datetime.now(UTC)
            body = await submit()
            real[referral_workflow_id(uuid.UUID(body["referral_id"]))] = t0

        # The intake runs left their workflows' chains queued: let them finish first, so the
        # latency runs start on an idle stack.
        await settled(client)
        workers = bare_workers(client)
        for w in workers:
            await w.__aenter__()
        try:
            chain: dict[str, datetime] = {}
            one: dict[str, datetime] = {}

            def starter(kind: str, into: dict[str, datetime]) -> Callable[[], Awaitable[None]]:
                async def start() -> None:
                    wid = f"bench-{kind}-{uuid.uuid4().hex}"
                    into[wid] = datetime.now(UTC)
                    await client.start_workflow(f"bench.{kind}", id=wid, task_queue=Q_WORKFLOWS)

                return start

            # The three kinds in turn, start by start, at ``rate`` in all: each meets the same
            # conditions (run one after the other, the first met the intake runs' leftovers
            # and the last an idle stack, which is not a comparison).
            kinds = itertools.cycle(
                [real_one, starter("BareChain", chain), starter("BareOne", one)]
            )
            await paced(3 * args.chains, args.rate, lambda: next(kinds)())
            lat_real = await latencies(client, real, 2)
            lat_chain = await latencies(client, chain, 2)
            lat_one = await latencies(client, one, 1)
        finally:
            for w in workers:
                await w.__aexit__(None, None, None)

    def row(name: str, v: list[float]) -> str:
        p50, p95 = statistics.median(v), pct(v, 95)
        return f"  {name:<44} n={len(v):<4} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms"

    def ratio(name: str, a: list[float], b: list[float]) -> str:
        p50 = statistics.median(a) / statistics.median(b)
        return f"  ratio {name}: p50 x{p50:.1f}   p95 x{pct(a, 95) / pct(b, 95):.1f}"

    lines.append(
        f"submission -> awaiting_pre_mset, {args.chains} of each kind in turn, "
        f"{args.rate:g} starts/s in all:"
    )
    lines.append(row("referral API + ReferralWorkflow (real)", lat_real))
    lines.append(row("bare chain (same activities, empty bodies)", lat_chain))
    lines.append(row("bare one-activity workflow", lat_one))
    lines.append(ratio("real / bare chain", lat_real, lat_chain))
    lines.append(ratio("bare chain / one activity", lat_chain, lat_one))
    return lines


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="latency runs: starts a second")
    parser.add_argument("--running", action="store_true", help="use a stack already running")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--referral-url", default="http://127.0.0.1:8000")
    parser.add_argument("--temporal", default="127.0.0.1:7233")
    args = parser.parse_args()

    if args.running:
        creds = json.loads((args.data_dir / "demo-credentials.json").read_text())
        keyring = dev_keyring(args.data_dir)
        lines = asyncio.run(
            measure(args.referral_url, args.temporal, creds["api_key"], keyring, args)
        )
    else:
        with tempfile.TemporaryDirectory(prefix="mset-bench-intake-") as tmp:
            settings: StackSettings = stack_settings(Path(tmp) / "data")
            settings.data_dir.mkdir(parents=True)
            creds = demo_credentials(settings)
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
        f"MSET intake bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
