"""Board reports (docs/reports.md): the partnership's profile as a query.

The referral service owns most of the records a board report counts (referrals with their
tool and case, missing episodes with their interviews), so it assembles the reports; the
meeting service answers its part (attendance at panels) as aggregates over a service route.
Personal data never leaves the service that holds it to make a report: ``report_store``
counts the records in the database, ``report_tables`` makes the tables of the counts, and
only the counts are answered (docs/decisions/0025).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.reports import AttendanceAggregate, Report, ReportName, ReportScope, Table
from mset_platform.clock import Clock, utcnow
from mset_platform.settings import authority_refusal
from services.referral import report_tables as tables
from services.referral.domain import RequestInvalid
from services.referral.meetings import MeetingsUnavailable
from services.referral.policy import REPORTS_READ, require
from services.referral.report_store import ReportCounter

# The period when the caller names none: the twelve months to now.
DEFAULT_PERIOD = timedelta(days=365)
# The value of ``region`` that rolls every authority of the partnership up.
REGION_ALL = "all"

TITLES = {
    ReportName.referrals: "Referrals: referring agency and risk level at referral",
    ReportName.pre_mset: "Pre-MSET: outcomes, conversion to MSET and time to decision",
    ReportName.profile: "Profile of the Pre-MSET cohort beside the MSET cohort",
    ReportName.exits: "Exits from MSET: reasons and time in MSET",
    ReportName.missing: "Missing episodes and Return Home Interviews by month",
    ReportName.actions: "Plan actions: aim, target, owning agency, on time or overdue",
    ReportName.attendance: "Agency attendance at panel meetings",
    ReportName.data_quality: "Data quality: what is missing or unknown",
}


@dataclass(frozen=True)
class ReportQuery:
    authority: str | None
    region: str | None
    since: datetime | None
    until: datetime | None


class MeetingAggregates:
    """The meeting service's aggregates, asked with the MSET service token."""

    def __init__(self, base_url: str, service_token: str, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )

    async def attendance(
        self, local_authority: str, since: datetime, until: datetime
    ) -> AttendanceAggregate:
        try:
            resp = await self._client.get(
                "/v1/aggregates/attendance",
                params={
                    "local_authority": local_authority,
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                },
            )
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise MeetingsUnavailable(
                "the meeting service could not give the attendance figures just now; please retry"
            ) from exc
        return AttendanceAggregate.model_validate(resp.json())

    async def aclose(self) -> None:
        await self._client.aclose()


class ReportsDesk:
    def __init__(
        self,
        store: ReportCounter,
        meetings: MeetingAggregates,
        authorities: Collection[str],
        rhi_target_percent: float = 70.0,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.meetings = meetings
        self.authorities = sorted(authorities)
        self.rhi_target_percent = rhi_target_percent
        self.clock = clock

    def scope(self, q: ReportQuery) -> ReportScope:
        if (q.authority is None) == (q.region is None):
            raise RequestInvalid(
                "query.authority",
                "name one local authority (authority=...) or the region (region=all), not both",
            )
        if q.region is not None:
            if q.region != REGION_ALL:
                raise RequestInvalid(
                    "query.region",
                    f"the partnership's region is '{REGION_ALL}' (every authority it has)",
                )
            return ReportScope(authorities=self.authorities, region=True)
        assert q.authority is not None
        why = authority_refusal(q.authority, self.authorities)
        if why is not None:
            raise RequestInvalid("query.authority", why)
        return ReportScope(authorities=[q.authority], region=False)

    def period(self, q: ReportQuery, now: datetime) -> tuple[datetime, datetime]:
        until = q.until or now
        since = q.since or until - DEFAULT_PERIOD
        if since >= until:
            raise RequestInvalid("query.since", "must be before until")
        return since, until

    async def report(self, principal: Principal, name: ReportName, q: ReportQuery) -> Report:
        require(principal, REPORTS_READ)
        now = self.clock()
        scope = self.scope(q)
        since, until = self.period(q, now)
        if name is ReportName.attendance:
            parts = await asyncio.gather(
                *(self.meetings.attendance(la, since, until) for la in scope.authorities)
            )
            made = tables.attendance_tables(parts)
        else:
            made = await run_in_threadpool(self._tables, name, scope, since, until, now)
        return Report(
            name=name,
            title=TITLES[name],
            scope=scope,
            since=since,
            until=until,
            generated_at=now,
            tables=made,
            notes=[
                "Counts of the records as they stand at generated_at; every percentage is "
                "computed from the numerator and denominator beside it."
            ],
        )

    def _tables(
        self, name: ReportName, scope: ReportScope, since: datetime, until: datetime, now: datetime
    ) -> list[Table]:
        las, st = scope.authorities, self.store
        if name is ReportName.referrals:
            return tables.referrals_tables_from(st.referral_counts(las, since, until))
        if name is ReportName.pre_mset:
            return tables.pre_mset_tables_from(st.pre_mset_counts(las, since, until))
        if name is ReportName.profile:
            return tables.profile_tables_from(st.profile_counts(las, since, until))
        if name is ReportName.exits:
            return tables.exits_tables_from(st.exit_counts(las, since, until))
        if name is ReportName.missing:
            return tables.missing_tables_from(
                st.missing_counts(las, since, until), since, until, self.rhi_target_percent
            )
        if name is ReportName.actions:
            return tables.actions_tables_from(st.action_counts(las, since, until, now), now)
        assert name is ReportName.data_quality
        return tables.data_quality_tables_from(st.data_quality_counts(las, since, until))
