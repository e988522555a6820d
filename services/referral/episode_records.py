"""The referral service's record of each missing episode's return and Return Home Interview,
which the reports count (docs/decisions/0025). The episode's workflow writes it through the
``referral.record_episode`` activity at the return and when the interview's outcome closes the
episode; the police's report itself stays in ``referral_missing_episodes``. It is also the
list a Return Home Interview provider works from: the returned children whose interview is
not yet recorded (``returned_episodes``).

Dates and codes only: the reason an interview was not offered is free text the workflow keeps
in its (encrypted) history and does not send here.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Row, Select, String, Uuid, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity

from mset_contract.referral_workflow import (
    EpisodeStatus,
    RecordEpisodeInput,
    RecordEpisodeResult,
)
from mset_contract.temporal import REFERRAL_RECORD_EPISODE_ACTIVITY
from mset_platform.db import UTCDateTime
from mset_platform.paging import Keyset, Paged, PageRequest
from services.referral.store import AuthorityTold, Base, MissingEpisode, Store


class EpisodeRecord(Base):
    __tablename__ = "referral_episode_records"

    episode_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("referral_missing_episodes.id"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20))
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    located_in_authority: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rhi_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rhi_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rhi_outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rhi_deadline_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    # The workflow's time of this record: a later record wins.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EpisodeRecords:
    """Hosts ``referral.record_episode`` on the referral service's task queue."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name=REFERRAL_RECORD_EPISODE_ACTIVITY)
    def record_episode(self, inp: RecordEpisodeInput) -> RecordEpisodeResult:
        values = {
            "status": inp.status.value,
            "returned_at": inp.returned_at,
            "located_in_authority": inp.located_in_authority,
            "rhi_due_at": inp.rhi_due_at,
            "rhi_offered_at": inp.rhi_offered_at,
            "rhi_outcome": inp.rhi_outcome.value if inp.rhi_outcome else None,
            "rhi_deadline_breached": inp.rhi_deadline_breached,
            "recorded_at": inp.at,
        }
        for _ in range(2):  # a concurrent first insert (a retry racing itself): update it
            try:
                with self.store.session() as s:
                    row = s.get(EpisodeRecord, inp.episode_id, with_for_update=True)
                    if row is None:
                        s.add(EpisodeRecord(episode_id=inp.episode_id, **values))
                        _for_reports(s, inp.episode_id, values)
                        return RecordEpisodeResult(updated=True)
                    if row.recorded_at > inp.at:
                        return RecordEpisodeResult(updated=False)  # a newer record is kept
                    for k, v in values.items():
                        setattr(row, k, v)
                    _for_reports(s, inp.episode_id, values)
                    return RecordEpisodeResult(updated=True)
            except IntegrityError:
                continue
        return RecordEpisodeResult(updated=False)


def episode_report_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The report columns of an episode (``MissingEpisode.report_*``) from its record."""
    return {
        "report_returned_at": record.get("returned_at"),
        "report_rhi_offered_at": record.get("rhi_offered_at"),
        "report_rhi_outcome": record.get("rhi_outcome"),
    }


def _for_reports(s: Session, episode_id: uuid.UUID, values: dict[str, Any]) -> None:
    # In the record's transaction, under its lock: the copy is always the record kept.
    s.execute(
        update(MissingEpisode)
        .where(MissingEpisode.id == episode_id)
        .values(**episode_report_columns(values))
    )


# Returned children awaiting their interview, the one due soonest first. Only rows with a
# due time are listed (every returned episode's record has one).
RETURNED_ORDER = Keyset(
    "returned-episodes",
    (EpisodeRecord.rhi_due_at, "asc"),
    (EpisodeRecord.episode_id, "asc"),
    without_nulls=True,
)


def returned_episodes(
    s: Session,
    page: PageRequest,
    authorities: Collection[str],
    told_to: Collection[str] = (),
) -> Paged[Row[Any]]:
    """One page of the returned episodes of ``authorities`` (and of the cases that have told
    an authority in ``told_to`` about them), from this service's own tables: the episodes'
    records joined to their reports, never a workflow asked per row."""
    where = [MissingEpisode.local_authority.in_(list(authorities))]
    if told_to:
        told_cases = select(AuthorityTold.case_id).where(
            AuthorityTold.local_authority.in_(list(told_to))
        )
        where.append(MissingEpisode.case_referral_id.in_(told_cases))
    q: Select[*tuple[Any, ...]] = (
        select(
            EpisodeRecord.episode_id,
            EpisodeRecord.returned_at,
            EpisodeRecord.located_in_authority,
            EpisodeRecord.rhi_due_at,
            MissingEpisode.local_authority,
            MissingEpisode.case_referral_id,
            MissingEpisode.agency_id,
            MissingEpisode.partner_reference,
            MissingEpisode.agency_child_ref,
            MissingEpisode.reported_at,
        )
        .join(MissingEpisode, MissingEpisode.id == EpisodeRecord.episode_id)
        .where(EpisodeRecord.status == EpisodeStatus.returned.value, or_(*where))
    )
    return RETURNED_ORDER.cut(s.execute(RETURNED_ORDER.select(q, page)).all(), page)
