"""The queries the reports are made from, and the facts they return.

Each query reads this service's own tables (the referrals with their tool and the read
model of their case, the missing episodes and their records) and returns, for each record,
only the facts a report counts: codes, levels, dates and the bands a date of birth falls in.
Nothing here leaves the service but the counts ``report_tables`` makes of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mset_contract.referral_workflow import CaseAction, ExitRecord, PreMsetDecisionRecord
from mset_contract.types import age_on, today_uk
from services.referral.episode_records import EpisodeRecord
from services.referral.store import Agency, MissingEpisode, Referral, Store


@dataclass(frozen=True)
class CaseFacts:
    case_id: uuid.UUID
    local_authority: str
    agency_type: str
    origin: str
    submitted_at: datetime
    referrer_level: str
    suggested_level: str | None
    gender: str | None
    age_at_referral: int | None
    ethnicity: str | None
    legal_status: str | None
    area_of_residence: str | None
    exploitation_types: tuple[str, ...]
    pre_mset: PreMsetDecisionRecord | None
    exit: ExitRecord | None
    actions: tuple[CaseAction, ...] = field(default=())
    recorded: bool = True  # the case's workflow has recorded its state (read model)


@dataclass(frozen=True)
class EpisodeFacts:
    episode_id: uuid.UUID
    local_authority: str
    child: tuple[uuid.UUID, str]  # (reporting agency, its child reference): one child
    reported_at: datetime
    returned_at: datetime | None
    rhi_offered_at: datetime | None
    rhi_outcome: str | None


def _child(tool: dict[str, Any]) -> dict[str, Any]:
    child = tool.get("child")
    return child if isinstance(child, dict) else {}


def _age(child: dict[str, Any], at: datetime) -> int | None:
    try:
        dob = date.fromisoformat(str(child["date_of_birth"]))
    except (KeyError, ValueError):
        return None
    return age_on(dob, today_uk(at))


def _facts(row: Referral, agency_type: str) -> CaseFacts:
    child = _child(row.tool)
    state = row.state or {}
    pre = state.get("pre_mset")
    exit_ = state.get("exit")
    origin_tool = row.origin == "tool"
    return CaseFacts(
        case_id=row.id,
        local_authority=row.local_authority,
        agency_type=agency_type,
        origin=row.origin,
        submitted_at=row.submitted_at,
        referrer_level=row.referrer_level,
        suggested_level=row.suggested_level,
        gender=child.get("gender") if origin_tool else None,
        age_at_referral=_age(child, row.submitted_at),
        ethnicity=child.get("ethnicity") if origin_tool else None,
        legal_status=child.get("legal_status") if origin_tool else None,
        area_of_residence=child.get("area_of_residence") if origin_tool else None,
        exploitation_types=tuple(row.tool.get("exploitation_types") or ()),
        pre_mset=PreMsetDecisionRecord.model_validate(pre) if pre else None,
        exit=ExitRecord.model_validate(exit_) if exit_ else None,
        actions=tuple(CaseAction.model_validate(a) for a in state.get("actions") or ()),
        recorded=row.state is not None,
    )


class ReportStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _cases(self, s: Session, authorities: Collection[str], *where: Any) -> list[CaseFacts]:
        rows = s.execute(
            select(Referral, Agency.type)
            .join(Agency, Agency.id == Referral.agency_id)
            .where(
                Referral.case_referral_id.is_(None),
                Referral.workflow_started.is_(True),
                Referral.local_authority.in_(list(authorities)),
                *where,
            )
            .order_by(Referral.submitted_at, Referral.id)
        )
        return [_facts(r, t) for r, t in rows]

    def referred(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[CaseFacts]:
        """The cases opened in [since, until) (a reassessment is not a new referral)."""
        with self.store.session() as s:
            return self._cases(
                s, authorities, Referral.submitted_at >= since, Referral.submitted_at < until
            )

    def exited(self, authorities: Collection[str]) -> list[CaseFacts]:
        """Every exited case (the period is applied to the exit's own date)."""
        with self.store.session() as s:
            return self._cases(s, authorities, Referral.exit_reason.is_not(None))

    def changed_since(self, authorities: Collection[str], since: datetime) -> list[CaseFacts]:
        """Cases recorded since ``since``: any with an action made in the period is one."""
        with self.store.session() as s:
            return self._cases(s, authorities, Referral.updated_at >= since)

    def agency_names(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        with self.store.session() as s:
            rows = s.execute(select(Agency.id, Agency.name).where(Agency.id.in_(list(ids))))
            return {i: n for i, n in rows}

    def episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[EpisodeFacts]:
        """Episodes reported in the period, and those reported before it whose child
        returned in it (the RHI counts are by month of return)."""
        with self.store.session() as s:
            rows = s.execute(
                select(MissingEpisode, EpisodeRecord)
                .outerjoin(EpisodeRecord, EpisodeRecord.episode_id == MissingEpisode.id)
                .where(
                    MissingEpisode.workflow_started.is_(True),
                    MissingEpisode.local_authority.in_(list(authorities)),
                    MissingEpisode.reported_at < until,
                    (MissingEpisode.reported_at >= since)
                    | ((EpisodeRecord.returned_at >= since) & (EpisodeRecord.returned_at < until)),
                )
                .order_by(MissingEpisode.reported_at)
            )
            return [_episode(e, r) for e, r in rows]

    def earlier_episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[tuple[tuple[uuid.UUID, str], datetime]]:
        """(child, reported at) of every episode reported in [since, until): for the
        repeat-missing count of the period's first days."""
        with self.store.session() as s:
            rows = s.execute(
                select(
                    MissingEpisode.agency_id,
                    MissingEpisode.agency_child_ref,
                    MissingEpisode.reported_at,
                ).where(
                    MissingEpisode.workflow_started.is_(True),
                    MissingEpisode.local_authority.in_(list(authorities)),
                    MissingEpisode.reported_at >= since,
                    MissingEpisode.reported_at < until,
                )
            )
            return [((a, c), at) for a, c, at in rows]


def _episode(e: MissingEpisode, r: EpisodeRecord | None) -> EpisodeFacts:
    return EpisodeFacts(
        episode_id=e.id,
        local_authority=e.local_authority,
        child=(e.agency_id, e.agency_child_ref),
        reported_at=e.reported_at,
        returned_at=r.returned_at if r else None,
        rhi_offered_at=r.rhi_offered_at if r else None,
        rhi_outcome=r.rhi_outcome if r else None,
    )
