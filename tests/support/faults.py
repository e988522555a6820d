"""Fault injection on the real stack: what ``tests/faults`` and ``bench/faults`` share.

The stack runs as separate processes (``deploy.supervise``, the parts of
``deploy.stack.plan()``), with a partner's webhook receiver (HTTP) and an SMTP server
(aiosmtpd) on loopback. A *round* creates its own agency and manager, subscribes the agency's
webhook to escalations, submits high-risk referrals through the referral API at a steady pace
(each one retried with the same body, as a partner would, until it is accepted), SIGKILLs one
part once half of them are accepted, starts it again, and then counts, per referral: did it
reach ``awaiting_pre_mset``, and did its escalation reach the manager's inbox, the webhook
receiver and the mailbox, and how many times each.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select

from deploy.stack import StackSettings, demo_credentials
from deploy.supervise import Supervisor
from mset_contract.events import ReferralEscalated
from mset_contract.referral import referral_example
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from tests.support.net import free_port, free_ports_spaced
from tests.support.pages import every_item

ESCALATED = str(ReferralEscalated.model_fields["type"].default)
MANAGERS_MAILBOX = "mset-managers@faults.test"
AWAITING = "awaiting_pre_mset"
ROOT = Path(__file__).resolve().parents[2]


# --- what the partner and the mail server receive ----------------------------------------


class Mailbox:
    """aiosmtpd handler: every message, by inbox item (``X-MSET-Inbox-Item``) and Message-ID.

    A mail system keeps one message per Message-ID: ``count`` is what the recipient has,
    ``received`` what the server was given (more when a message was sent again)."""

    def __init__(self) -> None:
        self.by_item: dict[str, Counter[str]] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content)
        with self.lock:
            ids = self.by_item.setdefault(str(msg["X-MSET-Inbox-Item"]), Counter())
            ids[str(msg["Message-ID"])] += 1
        return "250 OK"

    def count(self, item_id: str) -> int:
        with self.lock:
            return len(self.by_item.get(item_id, ()))

    def received(self, item_id: str) -> int:
        with self.lock:
            return sum(self.by_item.get(item_id, Counter()).values())


class Hooks:
    """The partner's webhook endpoint: escalation deliveries by case and event id.

    A receiver keeps one delivery per event id (``MSET-Event-Id``, the CloudEvent's id):
    ``for_case`` gives the events a case's escalations arrived as, each with the number of
    times it was posted (more than once when it was sent again)."""

    def __init__(self) -> None:
        self.by_event: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def record(self, headers: dict[str, str], body: bytes) -> None:
        doc = json.loads(body)
        if doc.get("type") != ESCALATED:
            return
        with self.lock:
            self.by_event[(str(doc["subject"]), headers.get("mset-event-id", ""))] += 1

    def for_case(self, case_id: str) -> dict[str, int]:
        with self.lock:
            return {e: n for (c, e), n in self.by_event.items() if c == case_id}


@contextmanager
def receivers() -> Iterator[tuple[Hooks, str, Mailbox, int]]:
    """A webhook receiver (its URL) and an SMTP server (its port), both on 127.0.0.1."""
    hooks, mailbox = Hooks(), Mailbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hooks.record({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        yield hooks, f"http://127.0.0.1:{http.server_address[1]}/hooks", mailbox, smtp_port
    finally:
        controller.stop()
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


# --- the stack ---------------------------------------------------------------------------


class RoundRobin:
    """A client's way over an API's replicas, without a load balancer: each call takes the
    next URL, so requests spread evenly, and a retry after a dead replica's refused
    connection goes to the next one."""

    def __init__(self, urls: list[str]) -> None:
        assert urls, "an API with no replica"
        self.urls = urls
        self._next = itertools.cycle(urls)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return next(self._next)


@dataclass
class FaultStack:
    settings: StackSettings
    hooks: Hooks
    hook_url: str
    mailbox: Mailbox
    sup: Supervisor | None = None  # None: the stack runs as one ``deploy.stack`` process
    _engines: dict[str, Engine] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.referral = RoundRobin(self._urls(self.settings.referral_port))
        self.notifications = RoundRobin(self._urls(self.settings.notifications_port))

    def _urls(self, port: int) -> list[str]:
        s = self.settings
        return [f"http://127.0.0.1:{s.replica_port(port, n)}" for n in range(1, s.replicas + 1)]

    @property
    def referral_url(self) -> str:
        """Replica 1's: the address the other services use (a load balancer's, in production)."""
        return self.referral.urls[0]

    @property
    def notifications_url(self) -> str:
        return self.notifications.urls[0]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def engine(self, service: str) -> Engine:
        """The service's database (a SQLite file, or the stack's one PostgreSQL database),
        opened once and kept until ``close``."""
        with self._lock:
            if service not in self._engines:
                self._engines[service] = make_engine(self.settings.service_database_url(service))
            return self._engines[service]

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def stack_settings(
    data_dir: Path, replicas: int = 1, database_url: str | None = None
) -> StackSettings:
    """Settings for a stack on free loopback ports: ``replicas`` of every API and worker,
    every service in ``database_url`` when given (a SQLite file each otherwise)."""
    step = 100

    def api_port() -> int:
        return free_ports_spaced(replicas, step)

    return StackSettings(
        data_dir=data_dir,
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        broker_port=free_port(),
        referral_port=api_port(),
        triage_port=api_port(),
        meeting_port=api_port(),
        notifications_port=api_port(),
        # Fixed metrics ports would clash with a stack running beside the tests.
        worker_metrics_base_port=0,
        codec_port=free_port(),
        # Every port chosen: a default one would clash with a stack running beside (make dev,
        # a bench).
        portal_port=free_port(),
        start_timeout=180.0,
        replicas=replicas,
        replica_port_step=step,
        database_url=database_url,
    )


def notifications_env(smtp_port: int) -> dict[str, str]:
    """E-mail for the managers' mailbox to the test SMTP server; webhook retries quick
    enough for a test to see them."""
    return {
        "MSET_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "MSET_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "MSET_NOTIFICATIONS_EMAIL_RECIPIENTS": json.dumps({"manager": MANAGERS_MAILBOX}),
        "MSET_NOTIFICATIONS_WEBHOOK_BACKOFF_SECONDS": "1",
        # The partner's receiver listens on 127.0.0.1: allowed explicitly (egress guard).
        "MSET_NOTIFICATIONS_EGRESS_ALLOW": "127.0.0.1",
        "MSET_NOTIFICATIONS_EMAIL_BACKOFF_SECONDS": "1",
    }


@contextmanager
def fault_stack(
    data_dir: Path,
    log_dir: Path,
    replicas: int = 1,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[FaultStack]:
    """Receivers, then every part of the stack (stopped by pid at the end, even on failure):
    ``replicas`` of every API and worker, every service in ``database_url`` when given,
    ``env`` on top of every part's environment."""
    with receivers() as (hooks, hook_url, mailbox, smtp_port):
        settings = stack_settings(data_dir, replicas, database_url)
        data_dir.mkdir(parents=True, exist_ok=True)
        demo_credentials(settings)  # the referral database and its first agency
        sup = Supervisor(settings, log_dir, env={**notifications_env(smtp_port), **(env or {})})
        stack = FaultStack(settings, hooks, hook_url, mailbox, sup)
        try:
            sup.start_all()
            yield stack
        finally:
            try:
                sup.stop_all()
            finally:
                stack.close()


def stack_env(settings: StackSettings, smtp_port: int) -> dict[str, str]:
    """The environment that makes ``python -m deploy.stack`` run on ``settings``' ports."""
    env = {**os.environ, **notifications_env(smtp_port), "MSET_DATA_DIR": str(settings.data_dir)}
    for name in (
        "temporal_port",
        "temporal_ui_port",
        "broker_port",
        "referral_port",
        "triage_port",
        "meeting_port",
        "notifications_port",
        "worker_metrics_base_port",
        "replicas",
        "replica_port_step",
        "codec_port",
        "portal_port",
    ):
        env[f"MSET_{name.upper()}"] = str(getattr(settings, name))
    if settings.database_url:
        env["MSET_DATABASE_URL"] = settings.database_url
    return env


def start_deploy_stack(env: dict[str, str], log: Path, within: float = 240.0) -> Popen[str]:
    """``python -m deploy.stack`` (what `make dev` runs), until its banner shows."""
    out = log.open("a")
    mark = log.stat().st_size
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.stack"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out.close()  # the child has its own copy
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with log.open() as f:
            f.seek(mark)
            if "Press Ctrl-C to stop." in f.read():
                return proc
        if proc.poll() is not None:
            raise RuntimeError(f"the stack exited with {proc.returncode}: see {log}")
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the stack was not up within {within:.0f} s: see {log}")


# --- a tenant: one agency, its manager, its webhook --------------------------------------


@dataclass
class Tenant:
    agency: str
    api_key: str
    manager_token: str


def new_tenant(stack: FaultStack, label: str) -> Tenant:
    from services.referral.identity import Identity
    from services.referral.store import Store

    name = f"Faults {label} {uuid.uuid4().hex[:6]}"
    identity = Identity(Store(stack.engine("referral")))
    agency = identity.create_agency(name, AgencyType.childrens_social_care)
    manager = identity.create_user(f"{name} manager", Role.manager, name)
    tenant = Tenant(name, agency.secret, manager.secret)
    resp = httpx.post(
        f"{stack.notifications()}/v1/webhooks",
        json={"url": f"{stack.hook_url}/{uuid.uuid4().hex[:8]}", "event_types": [ESCALATED]},
        headers={"X-API-Key": tenant.api_key},
        timeout=30,
    )
    resp.raise_for_status()
    return tenant


def high_risk_tool() -> dict[str, Any]:
    tool = referral_example()
    tool["partner_reference"] = f"FAULT-{uuid.uuid4().hex[:12]}"
    # A new child each time: a second referral of one child reassesses the open case.
    tool["child"]["agency_child_ref"] = f"FAULT-CHILD-{uuid.uuid4().hex[:10]}"
    tool["referrer_judgement"]["level"] = "high"
    return tool


# --- submitting ----------------------------------------------------------------------------


@dataclass
class Submissions:
    accepted: dict[str, str] = field(default_factory=dict)  # referral id -> case id
    refused: int = 0  # gave up on (never accepted within the deadline)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit_one(http: httpx.Client, stack: FaultStack, tenant: Tenant, within: float) -> Any:
    """POST one tool, again with the same body until it is accepted (202): what a partner's
    system does on a dropped connection or a 503. None if it never was."""
    tool = high_risk_tool()
    deadline = time.monotonic() + within
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            resp = http.post(
                f"{stack.referral()}/v1/referrals",
                json=tool,
                headers={"X-API-Key": tenant.api_key},
            )
            if resp.status_code == 202:
                return resp.json(), tries - 1
        except httpx.HTTPError:
            pass
        time.sleep(min(0.1 * tries, 1.0))
    return None, tries


def submit(
    stack: FaultStack,
    tenant: Tenant,
    count: int,
    rate: float,
    halfway: threading.Event,
    within: float = 180.0,
    workers: int = 4,
) -> Submissions:
    """Submit ``count`` referrals at ``rate`` a second (open loop, ``workers`` at a time);
    set ``halfway`` once half are accepted."""
    out = Submissions()
    next_at = [time.monotonic()]
    issued = [0]
    gate = threading.Lock()
    interval = 1 / rate if rate > 0 else 0.0

    def worker() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with gate:
                    if issued[0] >= count:
                        return
                    issued[0] += 1
                    at = next_at[0]
                    next_at[0] += interval
                time.sleep(max(0.0, at - time.monotonic()))
                body, retries = submit_one(http, stack, tenant, within)
                with out.lock:
                    out.retries += retries
                    if body is None:
                        out.refused += 1
                    else:
                        out.accepted[body["referral_id"]] = body["case_id"]
                    if len(out.accepted) + out.refused >= max(1, count // 2):
                        halfway.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    halfway.set()
    return out


# --- what reached where ------------------------------------------------------------------


@dataclass
class Outcome:
    """What the receivers have, as each keeps it (docs/decisions/0018): the inbox its items,
    the partner one delivery per event id, the mail system one message per Message-ID."""

    accepted: int
    reached: int  # referrals at awaiting_pre_mset with their escalation on every channel
    lost: list[str]  # what did not arrive, one line each
    duplicated: list[str]  # what the receiver has more than once (two items, events, mails)
    lost_referrals: int = 0  # referrals with anything lost
    duplicated_referrals: int = 0  # referrals with anything arriving twice
    # Sent again with the same key, which the receiver dropped: delivery is at least once.
    resent: list[str] = field(default_factory=list)
    # Sent more times than the ledger counted attempts: a send it did not know it made.
    uncounted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"accepted {self.accepted}, reached {self.reached}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, sent again (dropped by key) "
            f"{len(self.resent)}, uncounted {len(self.uncounted)}\n  "
            + "\n  ".join(
                [*self.lost[:10], *self.duplicated[:10], *self.uncounted[:10], *self.resent[:5]]
            )
        )


def _stage(http: httpx.Client, stack: FaultStack, tenant: Tenant, rid: str) -> str | None:
    try:
        resp = http.get(
            f"{stack.referral()}/v1/referrals/{rid}", headers={"X-API-Key": tenant.api_key}
        )
    except httpx.HTTPError:
        return None
    return str(resp.json()["stage"]) if resp.status_code == 200 else None


def manager_items(http: httpx.Client, stack: FaultStack, tenant: Tenant) -> dict[str, list[str]]:
    """The manager's inbox (first escalations, not re-escalations): case id -> item ids."""
    try:
        items = every_item(
            http,
            f"{stack.notifications()}/v1/inbox",
            params={"state": "all"},
            headers={"Authorization": f"Bearer {tenant.manager_token}"},
        )
    except httpx.HTTPError:  # a failed answer too (HTTPStatusError): not read this time
        return {}
    out: dict[str, list[str]] = {}
    for i in items:
        if i["target_role"] == "manager" and not i["reescalation_of"]:
            out.setdefault(i["case_id"], []).append(i["id"])
    return out


def db_manager_items(http: httpx.Client, stack: FaultStack, tenant: Tenant) -> dict[str, list[str]]:
    """``manager_items`` read from the notifications database instead of its API: one query
    where the bench's thousands of items would be tens of pages, asked again at every poll."""
    from services.notifications.store import InboxItem

    with stack.engine("notifications").connect() as conn:
        rows = conn.execute(
            select(InboxItem.case_id, InboxItem.id).where(
                InboxItem.target_role == "manager", InboxItem.reescalation_of.is_(None)
            )
        ).all()
    out: dict[str, list[str]] = {}
    for case, item in rows:
        out.setdefault(str(case), []).append(str(item))
    return out


def ledger_pending(stack: FaultStack) -> int:
    """Webhook deliveries and e-mails the notifications service has yet to send (when this
    is 0, nothing more can arrive, so a count is final)."""
    from services.notifications.store import EmailMessage, WebhookDelivery

    with stack.engine("notifications").connect() as conn:
        hooks = conn.scalar(select(func.count()).where(WebhookDelivery.status == "pending"))
        mails = conn.scalar(select(func.count()).where(EmailMessage.status == "pending"))
    return int(hooks or 0) + int(mails or 0)


def ledger_attempts(stack: FaultStack) -> tuple[dict[str, int], dict[str, int]]:
    """How many times the notifications service has tried each webhook delivery (by event
    id) and each e-mail (by inbox item): an attempt is counted before it is sent, so one
    lost to a kill is counted too."""
    from services.notifications.store import EmailMessage, WebhookDelivery

    with stack.engine("notifications").connect() as conn:
        hooks = conn.execute(
            select(WebhookDelivery.event_id, func.sum(WebhookDelivery.attempts)).group_by(
                WebhookDelivery.event_id
            )
        ).all()
        mails = conn.execute(
            select(EmailMessage.inbox_item_id, func.sum(EmailMessage.attempts)).group_by(
                EmailMessage.inbox_item_id
            )
        ).all()
    return {str(e): int(n) for e, n in hooks}, {str(i): int(n) for i, n in mails}


def outcome(
    stack: FaultStack,
    tenant: Tenant,
    subs: Submissions,
    within: float,
    items: Callable[[httpx.Client, FaultStack, Tenant], dict[str, list[str]]] = manager_items,
) -> Outcome:
    """Wait (up to ``within`` s) until every accepted referral's escalation is on every
    channel and nothing is left to send, and every referral is at its stage; then count.

    The channels are waited for first: asking a referral's stage is a workflow query, which
    the workflow worker answers beside its real work, so the stages are asked only after the
    flow has settled, each referral until it answers ``awaiting_pre_mset``."""
    deadline = time.monotonic() + within
    cases = set(subs.accepted.values())
    with httpx.Client(timeout=30) as http:
        inbox: dict[str, list[str]] = {}
        while True:
            inbox = items(http, stack, tenant)
            complete = (
                cases <= set(inbox)
                and all(stack.hooks.for_case(c) for c in cases)
                and all(stack.mailbox.count(i) for c in cases for i in inbox[c])
            )
            if (complete and ledger_pending(stack) == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        at_stage: set[str] = set()
        while True:
            for rid in subs.accepted:
                if rid not in at_stage and _stage(http, stack, tenant, rid) == AWAITING:
                    at_stage.add(rid)
            if len(at_stage) == len(subs.accepted) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    hook_attempts, mail_attempts = ledger_attempts(stack)
    lost: list[str] = []
    dup: list[str] = []
    resent: list[str] = []
    uncounted: list[str] = []
    reached = dup_referrals = 0
    for rid, case in subs.accepted.items():
        ok = True
        dups_before = len(dup)
        if rid not in at_stage:
            lost.append(f"referral {rid}: not at {AWAITING}")
            ok = False
        ids = inbox.get(case, [])
        if not ids:
            lost.append(f"case {case}: no manager inbox item")
            ok = False
        elif len(ids) > 1:
            dup.append(f"case {case}: {len(ids)} manager inbox items")
        hooks = stack.hooks.for_case(case)
        if not hooks:
            lost.append(f"case {case}: no webhook delivery")
            ok = False
        if len(hooks) > 1:
            dup.append(f"case {case}: {len(hooks)} distinct escalation events by webhook")
        for e, n in hooks.items():
            if n > 1:
                resent.append(f"case {case}: event {e} posted {n} times")
            if n > hook_attempts.get(e, 0):
                uncounted.append(
                    f"case {case}: event {e} posted {n} times, {hook_attempts.get(e, 0)} "
                    "attempts in the ledger"
                )
        for i in ids:
            n = stack.mailbox.count(i)
            if n == 0:
                lost.append(f"case {case}: no e-mail for item {i}")
                ok = False
            elif n > 1:
                dup.append(f"case {case}: {n} e-mails (distinct Message-IDs) for item {i}")
            sent = stack.mailbox.received(i)
            if sent > n:
                resent.append(f"case {case}: item {i}'s e-mail sent {sent} times")
            if sent > mail_attempts.get(i, 0):
                uncounted.append(
                    f"case {case}: item {i}'s e-mail sent {sent} times, "
                    f"{mail_attempts.get(i, 0)} attempts in the ledger"
                )
        reached += ok
        dup_referrals += len(dup) > dups_before
    return Outcome(
        len(subs.accepted),
        reached,
        lost,
        dup,
        len(subs.accepted) - reached,
        dup_referrals,
        resent,
        uncounted,
    )


# --- a round: submit, kill mid-flow, restart, count -----------------------------------------


@dataclass
class Round:
    fault: str
    subs: Submissions
    outcome: Outcome
    recovery_seconds: float
    exited: dict[str, int]  # parts down at the end that were not left down on purpose


def probe(stack: FaultStack, tenant: Tenant, within: float) -> str | None:
    """One referral, retried until accepted, until its escalation is in the inbox: the
    whole chain works again. The case id, or None."""
    deadline = time.monotonic() + within
    with httpx.Client(timeout=30) as http:
        body, _ = submit_one(http, stack, tenant, within)
        if body is None:
            return None
        while time.monotonic() < deadline:
            if body["case_id"] in manager_items(http, stack, tenant):
                return str(body["case_id"])
            time.sleep(0.1)
    return None


def fault_round(
    stack: FaultStack,
    fault: str,
    count: int,
    rate: float = 5.0,
    within: float = 240.0,
    items: Callable[[httpx.Client, FaultStack, Tenant], dict[str, list[str]]] = manager_items,
) -> Round:
    """``count`` high-risk referrals; ``fault`` (a part's name, or "" for none) is SIGKILLed
    when half are accepted and started again at once. Recovery: from the restart to the
    first referral submitted after it having its escalation in the inbox."""
    return _round(stack, [fault] if fault else [], True, count, rate, within, items)


def kill_round(
    stack: FaultStack,
    kill: Sequence[str],
    count: int,
    rate: float = 5.0,
    within: float = 240.0,
    items: Callable[[httpx.Client, FaultStack, Tenant], dict[str, list[str]]] = manager_items,
) -> Round:
    """``count`` high-risk referrals; every part in ``kill`` (one replica of each API and
    worker, say) is SIGKILLed at once when half are accepted, and left down: the rest of the
    run, and whatever the killed parts held, is the survivors' to finish. Recovery: from the
    kill to the first referral submitted after it having its escalation in the inbox."""
    return _round(stack, list(kill), False, count, rate, within, items)


def _round(
    stack: FaultStack,
    kill: list[str],
    restart: bool,
    count: int,
    rate: float,
    within: float,
    items: Callable[[httpx.Client, FaultStack, Tenant], dict[str, list[str]]],
) -> Round:
    sup = stack.sup
    assert sup is not None, "a fault round needs the parts as separate processes"
    label = "+".join(kill) if len(kill) < 3 else f"{len(kill)} parts"
    tenant = new_tenant(stack, label or "baseline")
    halfway = threading.Event()
    result: dict[str, Submissions] = {}
    sender = threading.Thread(
        target=lambda: result.setdefault("s", submit(stack, tenant, count, rate, halfway)),
        daemon=True,
    )
    sender.start()
    recovery = 0.0
    probe_tenant = new_tenant(stack, f"{label or 'baseline'} probe")
    if kill:
        halfway.wait(timeout=within)
        for name in kill:
            sup.kill(name)
        since = time.monotonic()
        if restart:
            for name in kill:
                sup.restart(name)
            since = time.monotonic()
        if probe(stack, probe_tenant, within) is None:
            recovery = float("nan")
        else:
            recovery = time.monotonic() - since
    sender.join(timeout=within + 60)
    subs = result.get("s", Submissions())
    out = outcome(stack, tenant, subs, within, items)
    down = {n: c for n, c in sup.exited().items() if restart or n not in kill}
    return Round(label, subs, out, recovery, down)


def assert_round(stack: FaultStack, r: Round, count: int) -> None:
    """What every fault round must show: no part down that was not left down, the chain
    working again after the fault, every referral accepted (a partner retrying with the same
    body), nothing lost, nothing a receiver has twice, nothing sent that the ledger did not
    count (docs/decisions/0018)."""
    sup = stack.sup
    assert sup is not None
    assert not r.exited, "parts down at the end (none should need a manual restart): " + ", ".join(
        f"{n} (code {c}):\n{sup.tail(n)}" for n, c in r.exited.items()
    )
    assert not math.isnan(r.recovery_seconds), f"after {r.fault}, the chain never worked again"
    assert r.subs.refused == 0 and len(r.subs.accepted) == count, r.subs
    assert not r.outcome.lost, f"{r.fault}: lost: {r.outcome.summary()}"
    assert not r.outcome.duplicated, f"{r.fault}: duplicated: {r.outcome.summary()}"
    assert not r.outcome.uncounted, f"{r.fault}: sent uncounted: {r.outcome.summary()}"
    print(f"{r.fault}: {r.outcome.summary()} recovery {r.recovery_seconds:.1f} s")
