"""The referral service's domain gauges, read from its read model of each case at scrape
time (docs/metrics.md): open cases by stage and authority, and case deadlines coming and
passed. Served on the referral API's ``/metrics``.

Labels: stage (a closed vocabulary) and local authority (one per authority served). Never a
case id, a reference or anything about the child.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from prometheus_client.core import Metric

from mset_platform.clock import Clock, utcnow
from mset_platform.metrics import TableGauges, gauge
from services.referral.store import Store

DUE_SOON = timedelta(days=7)


def read_gauges(store: Store, clock: Clock = utcnow) -> Iterable[Metric]:
    now = clock()
    with store.session() as s:
        open_cases = store.open_cases_by_stage(s)
        due = store.deadlines_by_authority(s, now, now + DUE_SOON)
        overdue = store.deadlines_by_authority(s, None, now)
    return [
        gauge(
            "mset_open_cases",
            "Open cases (not exited or closed with advice) by stage and local authority.",
            ("stage", "local_authority"),
            open_cases,
        ),
        gauge(
            "mset_deadlines_due_7d",
            "Open cases whose next deadline (an action's due date, a review or reassessment) "
            "falls in the next 7 days, by local authority.",
            ("local_authority",),
            due,
        ),
        gauge(
            "mset_deadlines_overdue",
            "Open cases whose next deadline has passed, by local authority.",
            ("local_authority",),
            overdue,
        ),
    ]


def referral_gauges(store: Store, clock: Clock = utcnow, ttl: float = 5.0) -> TableGauges:
    return TableGauges("referral", lambda: read_gauges(store, clock), ttl=ttl)
