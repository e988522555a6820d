"""The domain gauges each service reads from its own tables at scrape time: seeded rows in,
a Prometheus scrape out, parsed back and checked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mset_platform.db import make_engine
from services.notifications.metrics import notifications_gauges
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.store import (
    HandledEvent,
    InboxItem,
    OutboxEvent,
    WebhookSubscription,
)
from services.notifications.store import Store as NotificationsStore
from services.referral.metrics import referral_gauges
from services.referral.migrate import upgrade as referral_upgrade
from services.referral.store import Agency, Referral
from services.referral.store import Store as ReferralStore
from tests.support.metrics import uuid_like_label_values, value

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def scrape(collector: object) -> str:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


@pytest.fixture
def referral_store(tmp_path: Path) -> Iterator[ReferralStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'referral.db'}")
    referral_upgrade(engine)
    yield ReferralStore(engine)
    engine.dispose()


@pytest.fixture
def notifications_store(tmp_path: Path) -> Iterator[NotificationsStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'notifications.db'}")
    notifications_upgrade(engine)
    yield NotificationsStore(engine)
    engine.dispose()


def seed_referrals(store: ReferralStore) -> None:
    agency = Agency(id=uuid.uuid4(), name="CSC", type="childrens_social_care", created_at=NOW)

    def case(
        stage: str,
        la: str,
        deadline: datetime | None = None,
        *,
        started: bool = True,
        reassessment_of: uuid.UUID | None = None,
    ) -> Referral:
        rid = uuid.uuid4()
        return Referral(
            id=rid,
            agency_id=agency.id,
            partner_reference=f"REF-{rid.hex[:8]}",
            agency_child_ref=f"C-{rid.hex[:8]}",
            local_authority=la,
            stage=stage,
            referrer_level="medium",
            next_deadline=deadline,
            case_referral_id=reassessment_of,
            workflow_id=f"referral-{rid}",
            workflow_started=started,
            tool={},
            submitted_at=NOW,
            updated_at=NOW,
        )

    first = case("active_plan", "northshire", NOW + timedelta(days=3))
    rows = [
        first,
        case("active_plan", "northshire", NOW + timedelta(days=6, hours=23)),
        case("active_plan", "northshire", NOW + timedelta(days=8)),  # not within 7 days
        case("active_plan", "eastmoor", NOW - timedelta(hours=1)),  # overdue
        case("awaiting_pre_mset", "northshire"),
        case("awaiting_pre_mset", "eastmoor"),
        case("awaiting_pre_mset", "eastmoor"),
        # Not open cases: closed, exited, a reassessment of an open case, never started.
        case("exited", "northshire", NOW - timedelta(days=1)),
        case("closed_advice_given", "northshire"),
        case("awaiting_pre_mset", "northshire", reassessment_of=first.id),
        case("awaiting_pre_mset", "northshire", started=False),
    ]
    with store.session() as s:
        s.add(agency)
        s.flush()
        s.add_all(rows)


def test_referral_gauges_count_open_cases_and_deadlines(referral_store: ReferralStore) -> None:
    seed_referrals(referral_store)
    text = scrape(referral_gauges(referral_store, clock=lambda: NOW))

    def open_cases(stage: str, la: str) -> float | None:
        return value(text, "mset_open_cases", stage=stage, local_authority=la)

    assert open_cases("active_plan", "northshire") == 3
    assert open_cases("active_plan", "eastmoor") == 1
    assert open_cases("awaiting_pre_mset", "northshire") == 1
    assert open_cases("awaiting_pre_mset", "eastmoor") == 2
    assert value(text, "mset_open_cases", stage="exited") is None
    assert value(text, "mset_open_cases", stage="closed_advice_given") is None
    assert value(text, "mset_deadlines_due_7d", local_authority="northshire") == 2
    assert value(text, "mset_deadlines_due_7d", local_authority="eastmoor") is None
    assert value(text, "mset_deadlines_overdue", local_authority="eastmoor") == 1
    assert value(text, "mset_deadlines_overdue", local_authority="northshire") is None
    assert value(text, "mset_domain_metrics_up", service="referral") == 1
    assert uuid_like_label_values(text) == []


def inbox_item(
    kind: str,
    la: str,
    event_id: uuid.UUID,
    *,
    urgency: str = "same_day",
    acknowledged: bool = False,
    actioned: bool = False,
) -> InboxItem:
    return InboxItem(
        id=uuid.uuid4(),
        event_id=event_id,
        case_id=uuid.uuid4(),
        referrer_agency_id=uuid.uuid4(),
        local_authority=la,
        kind=kind,
        urgency=urgency,
        rule="R-1",
        ruleset_version="v1",
        fired_rules=[],
        designation="local_authority",
        target_role="manager",
        line_step=0,
        created_at=NOW,
        acknowledged_at=NOW if acknowledged else None,
        actioned_at=NOW if actioned else None,
    )


def seed_notifications(store: NotificationsStore) -> None:
    rhi, overdue, high = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    items = [
        # One RHI breach told to two people: one breach, two unacknowledged items.
        inbox_item("rhi_not_offered", "northshire", rhi),
        inbox_item("rhi_not_offered", "northshire", rhi),
        inbox_item("action_overdue", "eastmoor", overdue, acknowledged=True),
        inbox_item("high_risk", "eastmoor", high, urgency="immediate"),
        inbox_item("high_risk", "eastmoor", high, urgency="immediate", actioned=True),
    ]
    events = [uuid.uuid4() for _ in range(4)]
    outbox = [
        OutboxEvent(event_id=e, event_type="t", body="{}", recorded_at=NOW, published_at=NOW)
        for e in events[:3]
    ]
    # Recorded, never acknowledged by the broker: no group can have seen it yet.
    outbox.append(OutboxEvent(event_id=events[3], event_type="t", body="{}", recorded_at=NOW))
    handled = [
        HandledEvent(consumer="inbox", event_id=e, event_type="t", handled_at=NOW)
        for e in events[:3]
    ] + [HandledEvent(consumer="webhooks", event_id=events[0], event_type="t", handled_at=NOW)]

    def subscription(status: str) -> WebhookSubscription:
        return WebhookSubscription(
            id=uuid.uuid4(),
            agency_id=uuid.uuid4(),
            url="https://partner.example/hook",
            event_types=[],
            status=status,
            created_at=NOW,
        )

    with store.session() as s:
        s.add_all([*items, *outbox, *handled])
        s.add_all([subscription("parked"), subscription("parked"), subscription("active")])


def test_notifications_gauges_count_inbox_breaches_lag_and_parked_webhooks(
    notifications_store: NotificationsStore,
) -> None:
    seed_notifications(notifications_store)
    groups = ("inbox", "webhooks", "email")
    text = scrape(notifications_gauges(notifications_store, groups))

    unack = "mset_inbox_unacknowledged"
    assert value(text, unack, kind="rhi_not_offered", local_authority="northshire") == 2
    assert (
        value(text, unack, kind="high_risk", urgency="immediate", local_authority="eastmoor") == 1
    )
    assert value(text, unack, kind="action_overdue") is None  # acknowledged
    assert value(text, "mset_breaches", kind="rhi_not_offered", local_authority="northshire") == 1
    assert value(text, "mset_breaches", kind="action_overdue", local_authority="eastmoor") == 1
    assert value(text, "mset_breaches", kind="high_risk") is None  # not a breach
    assert value(text, "mset_consumer_lag_events", consumer_group="inbox") == 0
    assert value(text, "mset_consumer_lag_events", consumer_group="webhooks") == 2
    assert value(text, "mset_consumer_lag_events", consumer_group="email") == 3
    assert value(text, "mset_webhooks_parked") == 2
    assert value(text, "mset_domain_metrics_up", service="notifications") == 1
    assert uuid_like_label_values(text) == []
