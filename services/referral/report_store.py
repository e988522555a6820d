"""The counts the reports are made from, counted by the database.

Each report is a few ``GROUP BY`` queries over this service's own tables: the referrals with
the report columns kept beside each (``report_facts``: codes, levels, dates, the band of the
age at referral, never a name, a date of birth or free text), the case actions' rows, the
missing episodes and their records. Only counts come back: a report of a nation's year reads
no record into this process (docs/decisions/0025). ``report_tables`` makes the tables of them.

``FactReportStore`` makes the same counts from records given one at a time, by the same rules
(``report_tables.count_*``): for a caller that has records and no database (the example
board pack).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, case, func, literal, literal_column, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import DateTime, String

from mset_contract.types import UK
from mset_contract.vocab import ExitReason, ExploitationType, Gender, PreMsetOutcome, RhiOutcome
from mset_platform.db import UTCDateTime
from services.referral import report_tables as tables
from services.referral.report_facts import (
    DECISION_BANDS,
    TIME_IN_MSET_BANDS,
    CaseFacts,
    EpisodeFacts,
)
from services.referral.report_tables import (
    NONE_RECORDED,
    NOT_RECORDED,
    REPEAT_WINDOW,
    RHI_WITHIN,
    ActionCounts,
    DataQualityCounts,
    ExitCounts,
    MissingCounts,
    PreMsetCounts,
    ProfileCounts,
    ReferralCounts,
)
from services.referral.store import Agency, CaseActionFact, MissingEpisode, Referral, Store

__all__ = ["CaseFacts", "EpisodeFacts", "FactReportStore", "ReportCounter", "ReportStore"]


class ReportCounter(Protocol):
    """What ``ReportsDesk`` asks for: each report's counts, for authorities and a period."""

    def referral_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ReferralCounts: ...

    def pre_mset_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> PreMsetCounts: ...

    def profile_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ProfileCounts: ...

    def exit_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ExitCounts: ...

    def missing_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> MissingCounts: ...

    def action_counts(
        self, authorities: Collection[str], since: datetime, until: datetime, as_at: datetime
    ) -> ActionCounts: ...

    def data_quality_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> DataQualityCounts: ...


# --- instants a fixed number of seconds apart, on either database ---------------------------


class _ShiftedBy(FunctionElement[datetime]):
    """An instant moved by a whole number of seconds (exact seconds: no calendar days
    across a clock change), comparable with the column it came from."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(_ShiftedBy, "postgresql")
def _shifted_pg(element: _ShiftedBy, compiler: Any, **kw: Any) -> str:
    instant, seconds = element.clauses
    return f"({compiler.process(instant, **kw)} + INTERVAL '{seconds.name} seconds')"


@compiles(_ShiftedBy, "sqlite")
def _shifted_sqlite(element: _ShiftedBy, compiler: Any, **kw: Any) -> str:
    # SQLite keeps instants as UTC text "YYYY-MM-DD HH:MM:SS.ffffff"; its date functions
    # give milliseconds, padded back so the two compare as text.
    instant, seconds = element.clauses
    modifier = f"'{int(seconds.name):+d} seconds'"
    return (
        f"(strftime('%Y-%m-%d %H:%M:%f', {compiler.process(instant, **kw)}, {modifier}) || '000')"
    )


def _shifted(instant: Any, seconds: float) -> _ShiftedBy:
    # The seconds are a clause of their own, so each shift is its own statement in
    # SQLAlchemy's cache.
    return _ShiftedBy(instant, literal_column(str(int(seconds))))


class _Bytewise(FunctionElement[str]):
    """Text ordered byte by byte: a child's reference only needs its equals grouped, and
    PostgreSQL orders text by its locale several times slower."""

    type = String()
    inherit_cache = True


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler: Any, **kw: Any) -> str:
    (text,) = element.clauses
    return str(compiler.process(text, **kw))  # SQLite compares text byte by byte already


@compiles(_Bytewise, "postgresql")
def _bytewise_pg(element: _Bytewise, compiler: Any, **kw: Any) -> str:
    (text,) = element.clauses
    return f'({compiler.process(text, **kw)} COLLATE "C")'


# --- the pieces of a query -------------------------------------------------------------------


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _banded(days: Any, bands: Sequence[tuple[str, int, int]]) -> ColumnElement[str | None]:
    return case(*((days.between(lo, hi), literal(label)) for label, lo, hi in bands), else_=None)


def _month_of(at: Any, since: datetime, until: datetime) -> ColumnElement[str]:
    """The calendar month in England (YYYY-MM) of an instant in [since, until)."""
    firsts = tables.months(since, until)
    starts = [datetime(m.year, m.month, 1, tzinfo=UK) for m in firsts]
    whens = [
        (at < literal(start, UTCDateTime), literal(prev.strftime("%Y-%m")))
        for prev, start in zip(firsts, starts[1:], strict=False)
    ]
    last = literal(firsts[-1].strftime("%Y-%m"))
    return case(*whens, else_=last) if whens else last


def _cases(authorities: Collection[str]) -> list[ColumnElement[bool]]:
    """The partnership's cases (a reassessment is not a new referral) in the authorities."""
    return [
        Referral.case_referral_id.is_(None),
        Referral.workflow_started.is_(True),
        Referral.local_authority.in_(list(authorities)),
    ]


def _referred(authorities: Collection[str], since: datetime, until: datetime) -> list[Any]:
    return [*_cases(authorities), Referral.submitted_at >= since, Referral.submitted_at < until]


def _episodes(authorities: Collection[str]) -> list[ColumnElement[bool]]:
    return [
        MissingEpisode.workflow_started.is_(True),
        MissingEpisode.local_authority.in_(list(authorities)),
    ]


# The memory each sort or hash of a report's query may use on PostgreSQL (per operation).
REPORT_WORK_MEM = "64MB"


class ReportStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _rows(self, q: Any) -> Sequence[Any]:
        with self.store.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                # A report sorts and hashes a whole year of a nation's episodes: in memory,
                # not spilled to disk at the default 4 MB; and its queries are planned
                # afresh each time, so compiling them (JIT) costs more than it saves.
                s.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
                s.execute(text("SET LOCAL jit = off"))
            return s.execute(q).all()

    def referral_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ReferralCounts:
        n = ReferralCounts()
        q = (
            select(Agency.type, Referral.suggested_level, Referral.referrer_level, func.count())
            .select_from(Referral)
            .join(Agency, Agency.id == Referral.agency_id)
            .where(*_referred(authorities, since, until))
            .group_by(Agency.type, Referral.suggested_level, Referral.referrer_level)
        )
        for agency_type, suggested, referrer, count in self._rows(q):
            n.agency_type[agency_type] += count
            n.suggested[suggested] += count
            n.referrer[referrer] += count
        return n

    def pre_mset_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> PreMsetCounts:
        n = PreMsetCounts()
        decision_band = _banded(Referral.pre_mset_days, DECISION_BANDS)
        cols = (
            Referral.referrer_level,
            Referral.pre_mset_outcome,
            Referral.pre_mset_level,
            decision_band,
        )
        q = select(*cols, func.count()).where(*_referred(authorities, since, until)).group_by(*cols)
        for referrer, outcome, level, band, count in self._rows(q):
            tables.add_pre_mset(n, referrer, outcome, level, band, count)
        return n

    def profile_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ProfileCounts:
        n = ProfileCounts()
        where = _referred(authorities, since, until)
        outcome = Referral.pre_mset_outcome
        met = PreMsetOutcome.meets_criteria.value

        def add(key: str, value: str | None, out: str | None, count: int) -> None:
            for cohort in ("pre_mset", "mset") if out == met else ("pre_mset",):
                n.cohorts[cohort][key][value] += count

        # The closed vocabularies and the exploitation types in one pass; the free-text
        # labels (area, ethnicity) each in their own, so the groups stay few.
        types = [t.value for t in ExploitationType]
        listed = Referral.report_exploitation
        low = (Referral.report_gender, Referral.report_age_band, Referral.report_legal_status)
        q = (
            select(
                *low,
                outcome,
                func.count(),
                _count_if(listed == ""),
                *(_count_if(listed.contains(f"|{t}|", autoescape=True)) for t in types),
            )
            .where(*where)
            .group_by(*low, outcome)
        )
        for gender, age, legal, out, count, none, *by_type in self._rows(q):
            add("gender", gender, out, count)
            add("age_group", age, out, count)
            add("legal_status", legal, out, count)
            for cohort in ("pre_mset", "mset") if out == met else ("pre_mset",):
                n.size[cohort] += count
                n.exploitation[cohort][NONE_RECORDED] += none
                for t, k in zip(types, by_type, strict=True):
                    n.exploitation[cohort][t] += k
        for key, col in (
            ("area_of_residence", Referral.report_area),
            ("ethnicity", Referral.report_ethnicity),
        ):
            for value, out, count in self._rows(
                select(col, outcome, func.count()).where(*where).group_by(col, outcome)
            ):
                add(key, value, out, count)
        return n

    def exit_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ExitCounts:
        n = ExitCounts()
        time_band = _banded(Referral.mset_days, TIME_IN_MSET_BANDS)
        q = (
            select(Referral.exit_reason, time_band, func.count())
            .where(*_cases(authorities), Referral.exited_at >= since, Referral.exited_at < until)
            .group_by(Referral.exit_reason, time_band)
        )
        for reason, band, count in self._rows(q):
            n.reason[reason] += count
            n.time_in_mset[band] += count
        return n

    def missing_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> MissingCounts:
        n = MissingCounts()
        ep = MissingEpisode
        # Repeat missing: an episode of a child (the same agency's reference) with another
        # of the child's episodes in the authorities in the 90 days before it. One pass in
        # the child's order: the episodes at each instant, and the child's latest instant
        # before it (so episodes reported at the same instant are not each other's repeat).
        child = (_Bytewise(ep.agency_child_ref), ep.agency_id)
        per_instant = (
            select(
                ep.reported_at.label("at"),
                func.count().label("episodes"),
                _count_if(ep.report_returned_at.is_not(None)).label("returned"),
                func.lag(ep.reported_at)
                .over(partition_by=child, order_by=ep.reported_at)
                .label("before"),
            )
            .where(
                *_episodes(authorities),
                ep.reported_at >= since - REPEAT_WINDOW,
                ep.reported_at < until,
            )
            .group_by(*child, ep.reported_at)
            .subquery()
        )
        at = per_instant.c.at
        repeat = per_instant.c.before >= _shifted(at, -REPEAT_WINDOW.total_seconds())
        month = _month_of(at, since, until)
        q = (
            select(
                month,
                func.sum(per_instant.c.episodes),
                func.sum(per_instant.c.returned),
                func.coalesce(func.sum(case((repeat, per_instant.c.episodes), else_=0)), 0),
            )
            .where(at >= since)
            .group_by(month)
        )
        for m, count, returned, repeats in self._rows(q):
            n.episodes[m].update(episodes=count, returned=returned, repeat=repeats)
        returned_at, offered_at = ep.report_returned_at, ep.report_rhi_offered_at
        month = _month_of(returned_at, since, until)
        within = case(
            (
                and_(
                    offered_at.is_not(None),
                    offered_at <= _shifted(returned_at, RHI_WITHIN.total_seconds()),
                ),
                1,
            ),
            else_=0,
        )
        q = (
            select(month, ep.report_rhi_outcome, within, func.count())
            .where(
                *_episodes(authorities),
                ep.reported_at < until,
                returned_at >= since,
                returned_at < until,
            )
            .group_by(month, ep.report_rhi_outcome, within)
        )
        for m, outcome, offered_72h, count in self._rows(q):
            tables.add_return(n, m, outcome, bool(offered_72h), count)
        return n

    def action_counts(
        self, authorities: Collection[str], since: datetime, until: datetime, as_at: datetime
    ) -> ActionCounts:
        n = ActionCounts()
        a = CaseActionFact
        status = case(
            (and_(a.completed_at.is_not(None), a.completed_at <= a.due_at), "completed_on_time"),
            (a.completed_at.is_not(None), "completed_late"),
            (a.ended_at_exit.is_(True), "ended_at_exit"),
            (a.due_at < literal(as_at, UTCDateTime), "open_overdue"),
            else_="open_not_due",
        )
        owner = func.coalesce(Agency.name, NOT_RECORDED)
        q = (
            select(a.aim, a.target, owner, status, func.count())
            .select_from(a)
            .join(Referral, Referral.id == a.case_id)
            .outerjoin(Agency, Agency.id == a.owner_agency_id)
            .where(
                *_cases(authorities),
                # Any case with an action made in the period was recorded since it began.
                Referral.updated_at >= since,
                a.created_at >= since,
                a.created_at < until,
            )
            .group_by(a.aim, a.target, owner, status)
        )
        for aim, target, name, st, count in self._rows(q):
            tables.add_actions(n, aim, target, name, st, count)
        return n

    def data_quality_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> DataQualityCounts:
        tool = Referral.origin == "tool"
        outcome = Referral.pre_mset_outcome
        (ref,) = self._rows(
            select(
                func.count(),
                _count_if(~tool),
                _count_if(Referral.suggested_level.is_(None)),
                _count_if(Referral.record_seq.is_(None)),
                _count_if(outcome.is_(None) | (outcome == PreMsetOutcome.more_information.value)),
                _count_if(tool),
                _count_if(tool & Referral.report_ethnicity.is_(None)),
                _count_if(
                    tool
                    & (
                        Referral.report_gender.is_(None)
                        | (Referral.report_gender == Gender.not_known.value)
                    )
                ),
            ).where(*_referred(authorities, since, until))
        )
        (exits,) = self._rows(
            select(func.count(), _count_if(Referral.exit_reason == ExitReason.other.value)).where(
                *_cases(authorities), Referral.exited_at >= since, Referral.exited_at < until
            )
        )
        ep = MissingEpisode
        (reported,) = self._rows(
            select(func.count(), _count_if(ep.report_returned_at.is_(None))).where(
                *_episodes(authorities), ep.reported_at >= since, ep.reported_at < until
            )
        )
        (returned,) = self._rows(
            select(
                func.count(),
                _count_if(ep.report_rhi_outcome.is_(None)),
                _count_if(ep.report_rhi_outcome == RhiOutcome.not_offered.value),
            ).where(
                *_episodes(authorities),
                ep.reported_at < until,
                ep.report_returned_at >= since,
                ep.report_returned_at < until,
            )
        )
        return DataQualityCounts(
            referred=ref[0],
            from_episodes=ref[1],
            no_suggested_level=ref[2],
            not_recorded=ref[3],
            undecided=ref[4],
            tools=ref[5],
            no_ethnicity=ref[6],
            gender_not_known=ref[7],
            exits=exits[0],
            exits_other=exits[1],
            reported=reported[0],
            not_returned=reported[1],
            returned=returned[0],
            no_rhi_outcome=returned[1],
            rhi_not_offered=returned[2],
        )


class FactReportStore:
    """The counts of records given one at a time (``CaseFacts``, ``EpisodeFacts``), by the
    rules ``report_tables`` counts them by: a subclass says where the records come from."""

    def referred(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[CaseFacts]:
        """The cases opened in [since, until) (a reassessment is not a new referral)."""
        raise NotImplementedError

    def exited(self, authorities: Collection[str]) -> list[CaseFacts]:
        """Every exited case (the period is applied to the exit's own date)."""
        raise NotImplementedError

    def changed_since(self, authorities: Collection[str], since: datetime) -> list[CaseFacts]:
        """Cases recorded since ``since``: any with an action made in the period is one."""
        raise NotImplementedError

    def agency_names(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        raise NotImplementedError

    def episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[EpisodeFacts]:
        """Episodes reported in the period, and those reported before it whose child
        returned in it (the RHI counts are by month of return)."""
        raise NotImplementedError

    def earlier_episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[tuple[tuple[uuid.UUID, str], datetime]]:
        """(child, reported at) of every episode reported in [since, until)."""
        raise NotImplementedError

    def referral_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ReferralCounts:
        return tables.count_referrals(self.referred(authorities, since, until))

    def pre_mset_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> PreMsetCounts:
        return tables.count_pre_mset(self.referred(authorities, since, until))

    def profile_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ProfileCounts:
        return tables.count_profile(self.referred(authorities, since, until))

    def exit_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> ExitCounts:
        return tables.count_exits(self.exited(authorities), since, until)

    def missing_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> MissingCounts:
        return tables.count_missing(
            self.episodes(authorities, since, until),
            self.earlier_episodes(authorities, since - REPEAT_WINDOW, since),
            since,
            until,
        )

    def action_counts(
        self, authorities: Collection[str], since: datetime, until: datetime, as_at: datetime
    ) -> ActionCounts:
        cases = self.changed_since(authorities, since)
        owners = {a.owner_agency_id for c in cases for a in c.actions}
        return tables.count_actions(cases, since, until, as_at, self.agency_names(owners))

    def data_quality_counts(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> DataQualityCounts:
        return tables.count_data_quality(
            self.referred(authorities, since, until),
            self.exited(authorities),
            self.episodes(authorities, since, until),
            since,
            until,
        )
