"""Fixtures for the notifications tests: the real referral API (identity and introspection),
the notifications API and worker (Temporal activity worker + Kafka consumers) against the
real broker, the Temporal dev server and a real database (SQLite and PostgreSQL), an SMTP
server (aiosmtpd) and a partner's webhook receiver (a real HTTP server).

One stack per module and database kind: a Tansu consumer group takes about 3 s to join, so
tests share the consumers and isolate themselves by their own agencies, cases and topics.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.events import (
    AnyEvent,
    MsetEvent,
    Published,
    PublishEvents,
)
from mset_contract.temporal import NOTIFICATIONS_PUBLISH_ACTIVITY
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from services.notifications.api import create_app as notifications_app
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store
from services.notifications.worker import NotificationsWorker
from services.referral.api import create_app as referral_app
from services.referral.identity import Identity
from services.referral.migrate import upgrade as referral_upgrade
from services.referral.store import Store as ReferralStore
from tests.integration.conftest import referral_settings
from tests.support.db import postgres_database
from tests.support.net import free_port
from tests.support.servers import serve
from tests.support.wait import DEFAULT_TIMEOUT

T = TypeVar("T")

MANAGERS_MAILBOX = "mset-managers@northshire.test"
CHAIRS_MAILBOX = "mset-chairs@northshire.test"


# --- a workflow that publishes through the real activity ---------------------------------


class PublishRequest(BaseModel):
    events: list[AnyEvent]
    task_queue: str


# Unsandboxed: a test helper whose module imports pytest and servers; the real workflows
# (re-escalation) run sandboxed in the notifications worker.
@workflow.defn(name="tests.PublishThroughActivity", sandboxed=False)
class PublishThroughActivity:
    @workflow.run
    async def run(self, req: PublishRequest) -> Published:
        return await workflow.execute_activity(
            NOTIFICATIONS_PUBLISH_ACTIVITY,
            PublishEvents(events=req.events),
            task_queue=req.task_queue,
            result_type=Published,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                maximum_interval=timedelta(seconds=1),
            ),
        )


# --- databases, SMTP, webhook receiver ---------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"], name="notif_db")
def notif_db_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One fresh database per module and kind, shared by the referral and notifications
    services (their tables and migration version tables are their own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('notif') / 'mset.db'}"
        return
    with postgres_database() as url:
        yield url


class Mailbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def find(self, needle: str) -> list[tuple[list[str], Message]]:
        with self._lock:
            return [(to, m) for to, m in self.messages if needle in str(m["Subject"])]


@dataclass
class Smtp:
    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture(scope="module", name="smtp_server")
def smtp_server_fixture() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp("127.0.0.1", port, mailbox)
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A partner's webhook endpoint: ``/hooks/<name>`` answers ``status[name]`` (204 unless
    told otherwise) and records every request."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)

    def at(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/hooks/{name}"]


@pytest.fixture(scope="module", name="webhook_receiver")
def webhook_receiver_fixture() -> Iterator[Receiver]:
    app = FastAPI()
    receiver = Receiver(url="")

    @app.post("/hooks/{name}")
    async def hook(name: str, request: Request) -> Response:
        body = await request.body()
        receiver.received.append(Received(request.url.path, dict(request.headers), body))
        return Response(status_code=receiver.status.get(name, 204))

    with serve(app) as url:
        receiver.url = url
        yield receiver


# --- the stack ---------------------------------------------------------------------------


@dataclass
class NotificationsStack:
    settings: NotificationsSettings
    store: Store
    identity: Identity
    referral_url: str
    url: str
    client: Client
    worker: NotificationsWorker
    publisher_queue: str
    smtp: Smtp
    receiver: Receiver

    def http(self, credential: str | None = None, base: str | None = None) -> httpx.AsyncClient:
        headers: dict[str, str] = {}
        if credential and credential.startswith("msetk_"):
            headers["X-API-Key"] = credential
        elif credential:
            headers["Authorization"] = f"Bearer {credential}"
        return httpx.AsyncClient(base_url=base or self.url, headers=headers, timeout=30)

    def referral_http(self, credential: str) -> httpx.AsyncClient:
        return self.http(credential, base=self.referral_url)

    async def publish(self, events: list[MsetEvent]) -> Published:
        """Publish through the real ``notifications.publish`` activity, called by a workflow
        as every MSET workflow calls it."""
        return await self.client.execute_workflow(
            PublishThroughActivity.run,
            PublishRequest.model_validate(
                {
                    "events": [e.model_dump() for e in events],
                    "task_queue": self.settings.task_queue,
                }
            ),
            id=f"test-publish-{uuid.uuid4()}",
            task_queue=self.publisher_queue,
        )

    def agency(self, type_: AgencyType = AgencyType.childrens_social_care) -> tuple[str, str]:
        """A new agency: (name, API key)."""
        name = f"Agency {uuid.uuid4().hex[:10]}"
        return name, self.identity.create_agency(name, type_).secret

    def user(self, role: Role, agency_name: str, authorities: tuple[str, ...] = ()) -> str:
        """A new staff user's token; ``authorities``: the local authorities they serve."""
        return self.identity.create_user(
            f"{role.value} {uuid.uuid4().hex[:6]}", role, agency_name, authorities
        ).secret

    def agency_id(self, name: str) -> uuid.UUID:
        with self.identity.store.session() as s:
            agency = self.identity.store.agency_by_name(s, name)
            assert agency is not None
            return agency.id

    def read_topic(self, topic: str, within: float = DEFAULT_TIMEOUT) -> list[ConsumerRecord]:
        """Every record of a topic, read without a consumer group (no join delay)."""
        return read_topic(self.settings.broker, topic, within)


def read_topic(broker: str, topic: str, within: float = DEFAULT_TIMEOUT) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + within
        parts: set[int] | None = None
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.1)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[ConsumerRecord] = []
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def notifications_settings(
    database_url: str, broker: str, temporal: str, smtp: Smtp, **kw: Any
) -> NotificationsSettings:
    tag = uuid.uuid4().hex[:10]
    return NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "broker": broker,
            "temporal_address": temporal,
            "task_queue": f"test-notifications-{tag}",
            # Own topics and groups: no other test's events, no other test's offsets.
            "events_topic": f"mset.events.test-{tag}",
            "dead_letter_topic": f"mset.events.test-{tag}.dlq",
            "topic_partitions": 3,
            "consumer_group_prefix": f"test-{tag}",
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            # Long enough that a test acknowledging an item on a loaded machine still does so
            # before its timer fires; the re-escalation test waits this out once.
            "reescalate_after_seconds": 20,
            "webhook_backoff_seconds": 0.2,
            "webhook_max_attempts": 3,
            "webhook_park_after_failures": 3,
            # A local receiver in this busy process: a slow answer must not read as a failure.
            "webhook_timeout_seconds": 10,
            "email_recipients": {"manager": MANAGERS_MAILBOX, "chair": CHAIRS_MAILBOX},
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "email_backoff_seconds": 0.2,
            "dispatch_poll_seconds": 0.05,
            "public_base_url": "https://mset.test",
            # The receivers are plain http on 127.0.0.1: a partner's private endpoint, which
            # only an operator's explicit allow-list lets webhooks reach.
            "webhook_require_https": False,
            "egress_allow": ["127.0.0.1"],
            **kw,
        }
    )


@pytest.fixture(scope="module", name="notifications")
async def notifications_fixture(
    notif_db: str,
    broker: str,
    temporal_dev: WorkflowEnvironment,
    smtp_server: Smtp,
    webhook_receiver: Receiver,
) -> AsyncIterator[NotificationsStack]:
    client = temporal_dev.client
    temporal = client.service_client.config.target_host
    engine = make_engine(notif_db)
    notifications_upgrade(engine)
    r_engine = make_engine(notif_db)
    referral_upgrade(r_engine)
    identity = Identity(ReferralStore(r_engine))
    settings = notifications_settings(notif_db, broker, temporal, smtp_server)
    store = Store(engine)
    publisher_queue = f"test-publisher-{uuid.uuid4().hex[:8]}"
    with (
        serve(referral_app(referral_settings(notif_db, temporal))) as referral_url,
        serve(notifications_app(settings.model_copy(update={"referral_url": referral_url}))) as url,
    ):
        async with (
            Worker(client, task_queue=publisher_queue, workflows=[PublishThroughActivity]),
            NotificationsWorker(settings, store, client) as worker,
        ):
            assert await worker.wait_ready(30), "consumers did not join their groups"
            yield NotificationsStack(
                settings=settings,
                store=store,
                identity=identity,
                referral_url=referral_url,
                url=url,
                client=client,
                worker=worker,
                publisher_queue=publisher_queue,
                smtp=smtp_server,
                receiver=webhook_receiver,
            )
    engine.dispose()
    r_engine.dispose()
