"""Escalation latency: from a partner's API submission of a high-risk referral to the
manager's inbox item, p50 and p95, beside the broker's own produce-to-consume latency
measured in the same run on the same broker (the floor any Kafka pipeline sits on).

    python -m bench.notifications.run             # starts the whole stack (deploy.stack) on
                                                  # free ports in a temporary data directory
    python -m bench.notifications.run --count 50  # fewer referrals
    python -m bench.notifications.run --rate 0    # back to back (default: 5 a second)

    # against a stack you started (`make dev`): its data directory holds the demo agency
    python -m bench.notifications.run --running --data-dir data

The chain measured is the real one: referral API → ReferralWorkflow (Temporal) → triage
rules (activity) → notifications.publish (activity, Kafka acks=all) → inbox consumer →
inbox item in the database. The latency of each referral is the item's ``created_at`` (set
by the consumer) minus the moment just before its POST, both on this machine's clock.
Referrals are submitted at a steady pace (``--rate``, default 5 a second; real MSET volumes
are a few a day), open loop: the next POST does not wait for the last item.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from mset_contract.events import EVENTS_TOPIC, ReferralEscalated, high_risk_escalation, to_kafka
from mset_contract.referral import referral_example
from mset_contract.vocab import Role
from services.notifications.settings import NotificationsSettings
from tests.support.pages import every_item
from tests.support.stack import STACK_PORTS, stack_env

ESCALATED = ReferralEscalated.model_fields["type"].default.encode()
ROOT = Path(__file__).resolve().parents[2]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Stack:
    referral_url: str
    notifications_url: str
    broker: str
    data_dir: Path
    proc: subprocess.Popen[str] | None = None
    log: IO[str] | None = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log is not None:
            self.log.close()


def start_stack(data_dir: Path) -> Stack:
    # Every port chosen (the portal's, the codec server's and the workers' metrics too): a
    # default one would clash with a stack running beside (make dev, another bench).
    env = {**stack_env(data_dir), "PYTHONUNBUFFERED": "1"}
    ports = {name: int(env[f"MSET_{name}"]) for name in STACK_PORTS}
    log_path = data_dir / "stack.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.stack"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(
        referral_url=f"http://127.0.0.1:{ports['REFERRAL_PORT']}",
        notifications_url=f"http://127.0.0.1:{ports['NOTIFICATIONS_PORT']}",
        broker=f"127.0.0.1:{ports['BROKER_PORT']}",
        data_dir=data_dir,
        proc=proc,
        log=log,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if "Press Ctrl-C to stop." in log_path.read_text():
            return stack
        if proc.poll() is not None:
            stack.stop()
            lines = [ln for ln in log_path.read_text().splitlines() if "temporal |" not in ln]
            raise SystemExit("the stack exited:\n" + "\n".join(lines[-40:]))
        time.sleep(0.5)
    stack.stop()
    raise SystemExit("the stack did not start within 180 s")


def credentials(data_dir: Path) -> tuple[str, str]:
    """The demo agency's API key, and a manager of that agency (created here, once)."""
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    from mset_platform.db import make_engine
    from services.referral.identity import Identity
    from services.referral.store import Store

    engine = make_engine(f"sqlite:///{(data_dir / 'referral.db').resolve()}")
    try:
        manager = Identity(Store(engine)).create_user(
            f"Bench manager {uuid.uuid4().hex[:6]}", Role.manager, creds["agency"]
        )
    finally:
        engine.dispose()
    return creds["api_key"], manager.secret


def wait_consumers_ready(stack: Stack, key: str, token: str, within: float = 60.0) -> None:
    """One warm-up referral, until its inbox item shows: every part has started, topics
    exist, the consumer group has joined (Tansu answers JoinGroup after half the session)."""
    with httpx.Client(timeout=30) as http:
        tool = _tool()
        resp = http.post(
            f"{stack.referral_url}/v1/referrals", json=tool, headers={"X-API-Key": key}
        )
        resp.raise_for_status()
        case = resp.json()["case_id"]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if case in _items(http, stack, token):
                return
            time.sleep(0.2)
    raise SystemExit("the warm-up escalation never reached the inbox")


def _tool() -> dict[str, Any]:
    tool = referral_example()
    tool["partner_reference"] = f"BENCH-{uuid.uuid4().hex[:12]}"
    # A new child each time: a second referral of the same child is a reassessment of the
    # open case, whose high-risk escalation was already sent.
    tool["child"]["agency_child_ref"] = f"BENCH-CHILD-{uuid.uuid4().hex[:10]}"
    tool["referrer_judgement"]["level"] = "high"
    return tool


def _items(http: httpx.Client, stack: Stack, token: str) -> dict[str, datetime]:
    items = every_item(
        http,
        f"{stack.notifications_url}/v1/inbox",
        params={"state": "all"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return {
        i["case_id"]: datetime.fromisoformat(i["created_at"])
        for i in items
        if i["target_role"] == "manager" and not i["reescalation_of"]
    }


@dataclass
class Chain:
    submitted: dict[str, datetime]  # case id -> just before its POST
    in_inbox: dict[str, datetime]  # case id -> the manager's item's created_at

    def latencies(self) -> list[float]:
        return [(self.in_inbox[c] - t).total_seconds() * 1000 for c, t in self.submitted.items()]


def escalation_latency(stack: Stack, key: str, token: str, count: int, rate: float) -> Chain:
    sent: dict[str, datetime] = {}
    seen: dict[str, datetime] = {}
    interval = 1 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    with httpx.Client(timeout=30) as http:
        for _ in range(count):
            # An open-loop pace: the next submission does not wait for the last escalation.
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
            tool = _tool()
            started = datetime.now(UTC)
            resp = http.post(
                f"{stack.referral_url}/v1/referrals", json=tool, headers={"X-API-Key": key}
            )
            resp.raise_for_status()
            sent[resp.json()["case_id"]] = started
            # Read the inbox as we go (newest 200 first), so no item scrolls out of view.
            if len(sent) % 50 == 0:
                seen.update({c: t for c, t in _items(http, stack, token).items() if c in sent})
        deadline = time.monotonic() + 120
        while len(seen) < len(sent) and time.monotonic() < deadline:
            seen.update({c: t for c, t in _items(http, stack, token).items() if c in sent})
            time.sleep(0.2)
    missing = len(sent) - len(seen)
    if missing:
        raise SystemExit(f"{missing} escalations never reached the inbox")
    return Chain(sent, seen)


def on_the_broker(broker: str, topic: str, cases: set[str]) -> dict[str, datetime]:
    """When each case's escalation was written to the events topic: the record's timestamp,
    set by the producer in the publish activity."""
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: dict[str, datetime] = {}
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    case = (r.key or b"").decode()
                    if case in cases and dict(r.headers).get("ce_type") == ESCALATED:
                        out.setdefault(case, datetime.fromtimestamp(r.timestamp / 1000, UTC))
        return out
    finally:
        consumer.close()


def broker_latency(broker: str, count: int, partitions: int = 6) -> list[float]:
    """Produce (acks=all, idempotent, one at a time) → consume (a consumer group configured
    as the inbox consumer is) of records shaped like an escalation event, on its own topic."""
    s = NotificationsSettings(environment="development")  # a bench beside `make dev`
    topic = f"bench.baseline.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=s.session_timeout_ms,
        heartbeat_interval_ms=s.heartbeat_interval_ms,
        fetch_max_wait_ms=s.fetch_max_wait_ms,
    )
    received: dict[bytes, float] = {}
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for r in records:
                    received[dict(r.headers)["ce_id"]] = now
                    consumer.commit()

    while not consumer.assignment():  # join the group before the clock starts
        consumer.poll(timeout_ms=100)
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", enable_idempotence=True)
    sent: dict[bytes, float] = {}
    for _ in range(count):
        event = high_risk_escalation(uuid.uuid4(), uuid.uuid4(), "northshire", datetime.now(UTC))
        rec = to_kafka(event)
        sent[str(event.id).encode()] = time.perf_counter()
        producer.send(topic, key=rec.key, value=rec.value, headers=rec.headers).get(10)
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    producer.close()
    consumer.close()
    return [(received[k] - sent[k]) * 1000 for k in sent if k in received]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument(
        "--rate",
        type=float,
        default=5.0,
        help="referrals per second (0: as fast as the API answers, one at a time)",
    )
    parser.add_argument("--running", action="store_true", help="use a stack already running")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--referral-url", default="http://127.0.0.1:8000")
    parser.add_argument("--notifications-url", default="http://127.0.0.1:8003")
    parser.add_argument("--broker", default="127.0.0.1:9092")
    args = parser.parse_args()
    if args.count > 200:
        parser.error("--count is at most 200 (the inbox answers 200 items at a time)")

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.running:
        stack = Stack(args.referral_url, args.notifications_url, args.broker, args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mset-bench-")
        print("starting the stack (deploy.stack) in", tmp.name, flush=True)
        stack = start_stack(Path(tmp.name))
    try:
        key, token = credentials(stack.data_dir)
        wait_consumers_ready(stack, key, token)
        pace = f"{args.rate:g}/s" if args.rate > 0 else "back to back"
        print(f"submitting {args.count} high-risk referrals ({pace}) ...", flush=True)
        run = escalation_latency(stack, key, token, args.count, args.rate)
        published = on_the_broker(stack.broker, EVENTS_TOPIC, set(run.submitted))
        print(f"measuring the broker with {args.count} records ...", flush=True)
        raw = broker_latency(stack.broker, args.count)
    finally:
        stack.stop()
        if tmp is not None:
            tmp.cleanup()

    chain = run.latencies()
    to_broker = [
        (published[c] - t).total_seconds() * 1000
        for c, t in run.submitted.items()
        if c in published
    ]
    to_inbox = [
        (run.in_inbox[c] - published[c]).total_seconds() * 1000
        for c in run.submitted
        if c in published
    ]
    c50, c95 = statistics.median(chain), pct(chain, 95)
    b50, b95 = statistics.median(raw), pct(raw, 95)
    print()
    print(
        f"MSET notifications bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print(
        f"escalation latency, API submission -> manager's inbox item, {pace} "
        "(referral API, ReferralWorkflow, triage, publish, Kafka, inbox consumer):"
    )
    print(f"  n={len(chain)}  p50 {c50:8.1f} ms   p95 {c95:8.1f} ms   max {max(chain):8.1f} ms")
    if to_broker:
        print("  of which: submission -> escalation on the broker (API, workflow, triage, publish)")
        print(
            f"  n={len(to_broker)}  p50 {statistics.median(to_broker):8.1f} ms   "
            f"p95 {pct(to_broker, 95):8.1f} ms"
        )
        print("  and: on the broker -> inbox item (fetch, validate, DB transaction, commit)")
        print(
            f"  n={len(to_inbox)}  p50 {statistics.median(to_inbox):8.1f} ms   "
            f"p95 {pct(to_inbox, 95):8.1f} ms"
        )
    print("baseline, the broker's own produce -> consume (acks=all, consumer group), same run:")
    print(f"  n={len(raw)}  p50 {b50:8.1f} ms   p95 {b95:8.1f} ms   max {max(raw):8.1f} ms")
    print(f"ratio chain / broker:  p50 x{c50 / b50:.1f}   p95 x{c95 / b95:.1f}")


if __name__ == "__main__":
    main()
