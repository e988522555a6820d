"""Outages delay, never lose. The broker: the publish activity fails while it is down,
Temporal retries it, and the events arrive once it is back. The database: a consumer whose
work fails rewinds and retries, skipping nothing, and commits offsets only for work done."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from kafka import KafkaAdminClient, TopicPartition
from sqlalchemy.exc import OperationalError
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.events import MsetEvent, high_risk_escalation, to_kafka
from mset_platform.db import make_engine
from services.notifications.broker import Broker
from services.notifications.consumers import ConsumerLoop
from services.notifications.migrate import upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store
from services.notifications.worker import NotificationsWorker
from tests.integration.notifications_fixtures import (
    PublishRequest,
    PublishThroughActivity,
    read_topic,
)
from tests.support.broker import TansuBroker
from tests.support.wait import eventually

T = TypeVar("T")


@pytest.fixture
def late_broker() -> Iterator[TansuBroker]:
    """A broker on a port chosen now and started later."""
    b = TansuBroker()
    try:
        yield b
    finally:
        b.stop()


async def test_a_broker_outage_delays_events_and_never_loses_them(
    late_broker: TansuBroker, temporal_dev: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = temporal_dev.client
    settings = NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": f"sqlite:///{tmp_path / 'n.db'}",
            "broker": late_broker.address,
            "temporal_address": client.service_client.config.target_host,
            "task_queue": f"test-outage-{uuid.uuid4().hex[:8]}",
            # Give up on each attempt quickly, so Temporal's retries show.
            "producer_max_block_ms": 500,
            "producer_request_timeout_ms": 1000,
            "producer_delivery_timeout_ms": 2000,
        }
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    event = high_risk_escalation(uuid.uuid4(), uuid.uuid4(), "northshire", datetime.now(UTC))
    publisher = f"test-publisher-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(client, task_queue=publisher, workflows=[PublishThroughActivity]),
        NotificationsWorker(settings, Store(engine), client, consumers=()),
    ):
        handle = await client.start_workflow(
            PublishThroughActivity.run,
            PublishRequest(events=[event], task_queue=settings.task_queue),
            id=f"test-outage-{uuid.uuid4()}",
            task_queue=publisher,
        )

        async def failed_twice() -> bool:
            desc = await handle.describe()
            pending = desc.raw_description.pending_activities
            return bool(pending) and pending[0].attempt >= 3

        # The broker is down: the activity fails and is retried, the workflow waits.
        await eventually(failed_twice)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        late_broker.start()
        published = await asyncio.wait_for(handle.result(), timeout=60)
    engine.dispose()

    assert [p.id for p in published.events] == [event.id]
    records = await asyncio.to_thread(read_topic, late_broker.address, settings.events_topic)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert ids == [str(event.id).encode()]  # there, and once


class FlakyHandler:
    """Stands in for a consumer whose database is down for its first few attempts."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.handled: list[uuid.UUID] = []

    def wants(self, event: MsetEvent) -> bool:
        return True

    def handle(self, event: MsetEvent) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OperationalError("INSERT ...", {}, Exception("database is down"))
        self.handled.append(event.id)


async def test_a_database_outage_delays_handling_and_skips_nothing(broker: str) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = NotificationsSettings.model_validate(
        {
            "environment": "test",
            "broker": broker,
            "events_topic": f"mset.events.test-{tag}",
            "dead_letter_topic": f"mset.events.test-{tag}.dlq",
            "topic_partitions": 1,
            "consumer_group_prefix": f"test-{tag}",
        }
    )
    case, agency = uuid.uuid4(), uuid.uuid4()
    events = [
        high_risk_escalation(case, agency, "northshire", datetime.now(UTC)).model_copy(
            update={"id": uuid.uuid4()}
        )
        for _ in range(5)
    ]
    b = Broker(settings)
    await asyncio.to_thread(b.send_all, settings.events_topic, [to_kafka(e) for e in events])
    handler = FlakyHandler(failures=3)
    stop = threading.Event()
    loop = ConsumerLoop(handler, b, settings, stop)
    loop.start()
    try:
        await eventually(lambda: _now(len(handler.handled) == 5 or None))
    finally:
        stop.set()
        await asyncio.to_thread(loop.thread.join, 15)
        b.close()
    # Every event, in order, once: the failed one was retried, none after it was skipped.
    assert handler.handled == [e.id for e in events]
    assert loop.stats.retries == 3 and loop.stats.dead_lettered == 0
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        group = f"{settings.consumer_group_prefix}.flaky"
        tp = TopicPartition(settings.events_topic, 0)
        committed = admin.list_group_offsets({group: [tp]})[group]
    finally:
        admin.close()
    assert committed[tp].offset == 5  # committed after the work, up to the last one done


async def _now(value: T) -> T:
    return value
