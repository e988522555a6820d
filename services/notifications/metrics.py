"""The notifications service's domain metrics (docs/metrics.md).

Gauges read from its tables at scrape time, served on the notifications API's ``/metrics``:
inbox items unacknowledged, breaches escalated, consumer lag per group, parked webhooks.
Counters of what the worker does, served on the worker's metrics port: escalations
published, messages dead-lettered.

Labels: kind, urgency, consumer group (closed vocabularies) and local authority. Never an
event, case, item or agency id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import Counter
from prometheus_client.core import Metric

from mset_contract.triage import EscalationKind
from mset_platform.metrics import TableGauges, gauge
from services.notifications.store import Store

# The escalations that say an obligation was missed: the 72-hour Return Home Interview, an
# action past its due date, a reassessment not done.
BREACH_KINDS = (
    EscalationKind.rhi_not_offered.value,
    EscalationKind.action_overdue.value,
    EscalationKind.reassessment_overdue.value,
)

# Counted where the worker does the work (module-level: prometheus-client's default
# registry, which the worker serves; docs/metrics.md).
ESCALATIONS_PUBLISHED = Counter(
    "mset_escalations_published",
    "Escalations the broker acknowledged, by kind and urgency (a retried publish may count "
    "an escalation again).",
    ("kind", "urgency"),
)
DEAD_LETTERED = Counter(
    "mset_dead_lettered",
    "Messages a consumer group could not act on and sent to the dead-letter topic.",
    ("consumer_group",),
)


def read_gauges(store: Store, groups: Sequence[str]) -> Iterable[Metric]:
    with store.session() as s:
        unacknowledged = store.unacknowledged_items(s)
        breaches = store.escalations_by_kind(s, BREACH_KINDS)
        lag = store.unhandled_by_group(s, groups)
        parked = store.parked_subscriptions(s)
    return [
        gauge(
            "mset_inbox_unacknowledged",
            "Inbox items neither acknowledged nor actioned, by kind, urgency and local authority.",
            ("kind", "urgency", "local_authority"),
            unacknowledged,
        ),
        gauge(
            "mset_breaches",
            "Missed obligations escalated (72-hour RHI not offered, action overdue, "
            "reassessment overdue), one per escalation, by kind and local authority.",
            ("kind", "local_authority"),
            breaches,
        ),
        gauge(
            "mset_consumer_lag_events",
            "Events the broker acknowledged that a consumer group has not yet handled.",
            ("consumer_group",),
            lag,
        ),
        gauge(
            "mset_webhooks_parked",
            "Webhook subscriptions parked after repeated failed deliveries.",
            (),
            [(parked,)],
        ),
    ]


def notifications_gauges(store: Store, groups: Sequence[str], ttl: float = 5.0) -> TableGauges:
    return TableGauges("notifications", lambda: read_gauges(store, groups), ttl=ttl)
