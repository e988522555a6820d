"""The ops dashboard's counts of cases (``GET /v1/aggregates/cases``, docs/portal.md): open
cases by stage and authority and their next deadlines, from this service's read model (the
same queries as its gauges, services/referral/metrics.py), and the workflow executions that
failed or timed out lately, from Temporal's visibility store. Counts only: never a case."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from mset_contract.auth import Principal
from mset_contract.operations import AuthorityCount, CaseAggregates, StageCount
from mset_contract.vocab import Stage
from mset_platform.clock import Clock, utcnow
from services.referral.metrics import DUE_SOON
from services.referral.policy import CASE_AGGREGATES_READ, require
from services.referral.store import Store

log = logging.getLogger("mset.referral.operations")

# How far back a failed workflow counts, and how long the page waits for Temporal's answer
# (the dashboard shows "not known" rather than wait on a slow visibility store).
FAILED_WINDOW = timedelta(days=7)
TEMPORAL_WAIT_SECONDS = 2.0


def failed_query(since: str) -> str:
    """Temporal's visibility query for the executions that failed or timed out since
    ``since`` (RFC 3339); the portal links to the Temporal UI with the same query."""
    return f'(ExecutionStatus = "Failed" OR ExecutionStatus = "TimedOut") AND CloseTime > "{since}"'


class CaseCounts:
    def __init__(
        self, store: Store, temporal: Client, namespace: str, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.temporal = temporal
        self.namespace = namespace
        self.clock = clock

    def _counts(self) -> tuple[list[StageCount], list[AuthorityCount], list[AuthorityCount]]:
        now = self.clock()
        with self.store.session() as s:
            open_cases = self.store.open_cases_by_stage(s)
            due = self.store.deadlines_by_authority(s, now, now + DUE_SOON)
            overdue = self.store.deadlines_by_authority(s, None, now)
        return (
            [StageCount(stage=Stage(st), local_authority=la, count=n) for st, la, n in open_cases],
            [AuthorityCount(local_authority=la, count=n) for la, n in due],
            [AuthorityCount(local_authority=la, count=n) for la, n in overdue],
        )

    async def _failed(self, since: str) -> int | None:
        try:
            found = await asyncio.wait_for(
                self.temporal.count_workflows(failed_query(since)), TEMPORAL_WAIT_SECONDS
            )
        except Exception:  # Temporal down or slow: the counts of cases still stand.
            log.warning("could not count failed workflows", exc_info=True)
            return None
        return int(found.count)

    async def aggregates(self, principal: Principal) -> CaseAggregates:
        require(principal, CASE_AGGREGATES_READ)
        now = self.clock()
        since = now - FAILED_WINDOW
        (open_cases, due, overdue), failed = await asyncio.gather(
            run_in_threadpool(self._counts), self._failed(since.isoformat())
        )
        return CaseAggregates(
            as_of=now,
            open_cases=sorted(open_cases, key=lambda c: (c.local_authority, c.stage)),
            due_within_7_days=sorted(due, key=lambda c: c.local_authority),
            overdue=sorted(overdue, key=lambda c: c.local_authority),
            failed_workflows=failed,
            failed_since=since,
            namespace=self.namespace,
        )
