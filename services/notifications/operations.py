"""The ops dashboard's counts from the notifications service (``GET
/v1/aggregates/operations``, docs/portal.md): inbox items nobody has acknowledged, breaches
escalated, messages dead-lettered, consumer lag and parked webhooks. The same queries as its
gauges (services/notifications/metrics.py); counts by closed vocabularies and authority only,
never an item, case or event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from mset_contract.auth import Principal
from mset_contract.operations import GroupCount, KindCount, NotificationAggregates, UrgencyCount
from mset_platform.access import require
from services.notifications.domain import OpsOnly
from services.notifications.metrics import BREACH_KINDS
from services.notifications.policy import OPERATIONS_READ
from services.notifications.store import Store, now_utc


class OperationCounts:
    def __init__(self, store: Store, groups: Sequence[str]) -> None:
        self.store = store
        self.groups = groups

    def aggregates(self, principal: Principal) -> NotificationAggregates:
        require(principal, OPERATIONS_READ, OpsOnly)
        now = now_utc()
        with self.store.session() as s:
            unacknowledged = self.store.unacknowledged_items(s)
            breaches = self.store.escalations_by_kind(s, BREACH_KINDS)
            dead = self.store.dead_letters_by_group(s)
            dead_24h = self.store.dead_letters_by_group(s, now - timedelta(hours=24))
            lag = self.store.unhandled_by_group(s, self.groups)
            parked = self.store.parked_subscriptions(s)
        return NotificationAggregates(
            as_of=now,
            unacknowledged=sorted(
                (
                    UrgencyCount(kind=k, urgency=u, local_authority=la, count=n)
                    for k, u, la, n in unacknowledged
                ),
                key=lambda c: (c.local_authority, c.urgency, c.kind),
            ),
            breaches=sorted(
                (KindCount(kind=k, local_authority=la, count=n) for k, la, n in breaches),
                key=lambda c: (c.local_authority, c.kind),
            ),
            dead_letters=[GroupCount(consumer_group=g, count=n) for g, n in sorted(dead)],
            dead_letters_last_24h=sum(n for _, n in dead_24h),
            consumer_lag=[GroupCount(consumer_group=g, count=n) for g, n in lag],
            parked_webhooks=parked,
        )
