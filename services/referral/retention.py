"""Retention in the referral service: whose records have fallen due, erasing them from this
service's tables, and the record of each erasure (docs/retention.md, ADR 0024).

The referral service decides when a child's records fall due because it alone holds the
child's date of birth. A child's records are every referral and missing episode linked to the
child: by the case they belong to, a re-referral's link to the previous case, or the same
(agency, the agency's child reference, local authority) (ADR 0003). They fall due when no
case of the child's is open and the policy's time has come: the later of the child's
``keep_until_age`` birthday (the youngest date of birth any of the records gives) and
``years_after_closure`` years after the last thing that happened (a closure, a referral, a
missing episode). A record whose date of birth cannot be read is never due: kept, not guessed.

The record of an erasure keeps what was erased (kinds and counts, and the random ids the
records had), when, by which sweep and under which policy; never a date of birth, a due date
(a due date of "the 25th birthday" gives the birthday away), a reference or any field of the
records themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Uuid, delete, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mset_contract.retention import Counts, RetentionSubject
from mset_contract.types import UK
from mset_platform.db import UTCDateTime
from mset_platform.settings import RetentionSettings
from services.referral.child_identity import (
    ChildBlockKey,
    ChildIdentity,
    ChildLink,
    ChildLinkEvent,
)
from services.referral.domain import CLOSED_STAGES
from services.referral.entities import (
    Entity,
    EntityAction,
    EntityKey,
    EntityMatch,
    EntityMatchEvent,
    EntityShare,
)
from services.referral.episode_records import EpisodeRecord
from services.referral.store import (
    AuthorityTold,
    Base,
    CaseActionFact,
    LedgerEntry,
    MissingEpisode,
    Referral,
    Store,
)

# The namespace of an erasure record's id: derived from the child's first record, so a
# resumed or retried erasure finds its own record instead of making a second.
ERASURE_NAMESPACE = uuid.UUID("6f1e2b1c-6c7a-4f0e-9a57-3f0b8c1d2e4a")

STARTED = "started"
ERASED = "erased"
# The child's records were no longer due when the referral service came to erase them (a
# new referral arrived meanwhile): its own tables kept them.
STOPPED = "stopped_not_due"


class ErasureRecord(Base):
    """One child's records erased under the retention policy: what, when, under which policy;
    never the erased data."""

    __tablename__ = "referral_retention_erasures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    policy: Mapped[str] = mapped_column(String(80))
    keep_until_age: Mapped[int] = mapped_column(Integer)
    years_after_closure: Mapped[int] = mapped_column(Integer)
    # The sweep's workflow id (which scheduled run erased it).
    sweep_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    # The random ids the erased records had (str): a partner asking after a referral that
    # now answers 404 can be told it was erased, and when. They identify no one once the
    # records are gone.
    referral_ids: Mapped[list[str]] = mapped_column(JSON)
    episode_ids: Mapped[list[str]] = mapped_column(JSON)
    # "<service>.<record kind>" → rows (or Temporal executions) erased.
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# Every table of the referral service, and what retention does with it: erased by child, or
# why it holds nothing of a child's to erase. A new table must be added here (a unit test
# compares this with the service's tables), so no store of a child's data is forgotten.
ERASED_TABLES = {
    Referral.__tablename__: "the child's referrals: the tool, the case's read model",
    CaseActionFact.__tablename__: "each case's plan actions (dates and codes), for the reports",
    MissingEpisode.__tablename__: "the child's missing episodes and the police reports",
    EpisodeRecord.__tablename__: "each episode's return and interview outcome, for the reports",
    AuthorityTold.__tablename__: "which other authorities each case has told (and so shares with)",
    ChildIdentity.__tablename__: "the child's identity (name, NHS number, postcode), sealed",
    ChildBlockKey.__tablename__: "the identity's blind indexes (HMAC blocking keys)",
    ChildLink.__tablename__: "same-child links touching the child's referrals",
    ChildLinkEvent.__tablename__: "who linked or unlinked the child's referrals, and why",
    Entity.__tablename__: "the persons of concern and locations the child's tools named, sealed",
    EntityKey.__tablename__: "their blind indexes (HMAC of phone numbers, handles, postcodes...)",
    EntityMatch.__tablename__: "same-person or same-place matches touching those mentions",
    EntityMatchEvent.__tablename__: "who confirmed, rejected or undid those matches, and why",
    EntityAction.__tablename__: "the child's plan actions aimed at a person or place",
    EntityShare.__tablename__: "those mentions shared with another authority, by whom and why",
}
KEPT_TABLES = {
    LedgerEntry.__tablename__: "the information-sharing ledger: who was shown which record, "
    "when, why and on what basis (the case's random id, never the child); append-only (ADR "
    "0023), kept as the record that the sharing happened",
    ErasureRecord.__tablename__: "the record of each erasure: ids, kinds and counts only",
    "referral_agencies": "agencies (organisations), no child's data",
    "referral_rhi_commissions": "which authority commissions which agency",
    "referral_api_keys": "agency credentials",
    "referral_users": "staff",
    "referral_user_authorities": "which authorities staff serve",
    "referral_user_tokens": "staff credentials",
    "referral_auth_failures": "failed sign-in attempts: a source address and a time, pruned "
    "after the throttle's window",
}


def birthday(dob: date, age: int) -> date:
    """The day the child turns ``age`` (29 February's children: 1 March in other years)."""
    try:
        return dob.replace(year=dob.year + age)
    except ValueError:
        return date(dob.year + age, 3, 1)


def years_after(at: datetime, years: int) -> date:
    return birthday(at.astimezone(UK).date(), years)


@dataclass
class ChildRecords:
    """Everything the referral service holds about one child, as retention sees it."""

    referral_ids: list[uuid.UUID] = field(default_factory=list)
    episode_ids: list[uuid.UUID] = field(default_factory=list)
    open_case: bool = False
    last_activity: datetime | None = None
    youngest_dob: date | None = None
    unreadable_dob: bool = False

    def due_on(self, policy: RetentionSettings) -> date | None:
        """The day the records fall due (UK date); None while they are kept regardless."""
        if self.open_case or self.unreadable_dob or self.youngest_dob is None:
            return None
        assert self.last_activity is not None
        return max(
            birthday(self.youngest_dob, policy.retention_keep_until_age),
            years_after(self.last_activity, policy.retention_years_after_closure),
        )

    def subject(self) -> RetentionSubject:
        return RetentionSubject(
            referral_ids=sorted(self.referral_ids), episode_ids=sorted(self.episode_ids)
        )

    def _saw(self, at: datetime, child: Any) -> None:
        if self.last_activity is None or at > self.last_activity:
            self.last_activity = at
        try:
            dob = date.fromisoformat(child["date_of_birth"])
        except (TypeError, KeyError, ValueError):
            self.unreadable_dob = True
            return
        if self.youngest_dob is None or dob > self.youngest_dob:
            self.youngest_dob = dob


class _Groups:
    """Union-find over record keys: ("r", id), ("e", id), ("child", agency, ref, la)."""

    def __init__(self) -> None:
        self.parent: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def find(self, k: tuple[Any, ...]) -> tuple[Any, ...]:
        self.parent.setdefault(k, k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


class RetentionStore:
    """The retention queries on the referral service's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def children(self, s: Session) -> list[ChildRecords]:
        """Every child's records, grouped. One pass over the referrals and episodes: a
        daily sweep over a partnership's thousands of cases, not a request path."""
        groups = _Groups()
        referrals = list(
            s.execute(
                select(
                    Referral.id,
                    Referral.agency_id,
                    Referral.agency_child_ref,
                    Referral.local_authority,
                    Referral.case_referral_id,
                    Referral.previous_referral_id,
                    Referral.stage,
                    Referral.workflow_started,
                    Referral.submitted_at,
                    Referral.updated_at,
                    Referral.tool,
                )
            )
        )
        episodes = list(
            s.execute(
                select(
                    MissingEpisode.id,
                    MissingEpisode.agency_id,
                    MissingEpisode.agency_child_ref,
                    MissingEpisode.local_authority,
                    MissingEpisode.case_referral_id,
                    MissingEpisode.reported_at,
                    MissingEpisode.created_at,
                    MissingEpisode.report,
                )
            )
        )
        for r in referrals:
            key = ("r", r.id)
            groups.union(key, ("child", r.agency_id, r.agency_child_ref, r.local_authority))
            for linked in (r.case_referral_id, r.previous_referral_id):
                if linked is not None:
                    groups.union(key, ("r", linked))
        # Tools linked as the same child (ADR 0028) are one child's records.
        for a, b in s.execute(
            select(ChildLink.a_referral_id, ChildLink.b_referral_id).where(
                ChildLink.status == "linked"
            )
        ):
            groups.union(("r", a), ("r", b))
        for e in episodes:
            key = ("e", e.id)
            groups.union(key, ("child", e.agency_id, e.agency_child_ref, e.local_authority))
            if e.case_referral_id is not None:
                groups.union(key, ("r", e.case_referral_id))
        out: dict[tuple[Any, ...], ChildRecords] = {}
        for r in referrals:
            c = out.setdefault(groups.find(("r", r.id)), ChildRecords())
            c.referral_ids.append(r.id)
            is_case = r.case_referral_id is None
            if not r.workflow_started or (is_case and r.stage not in CLOSED_STAGES):
                # An open case, or a submission not yet delivered: kept.
                c.open_case = True
            c._saw(max(r.submitted_at, r.updated_at), (r.tool or {}).get("child"))
        for e in episodes:
            c = out.setdefault(groups.find(("e", e.id)), ChildRecords())
            c.episode_ids.append(e.id)
            c._saw(max(e.reported_at, e.created_at), (e.report or {}).get("child"))
        return list(out.values())

    def due(self, policy: RetentionSettings, now: datetime, limit: int) -> list[RetentionSubject]:
        today = now.astimezone(UK).date()
        with self.store.session() as s:
            children = self.children(s)
        due = [c for c in children if (d := c.due_on(policy)) is not None and d <= today]
        due.sort(key=lambda c: min(c.referral_ids + c.episode_ids))
        return [c.subject() for c in due[:limit]]

    def still_due(
        self, s: Session, subject: RetentionSubject, policy: RetentionSettings, now: datetime
    ) -> bool:
        """Whether the child's records (as they are now: a referral may have arrived since
        the sweep listed them) are still due. Records already erased are not a reason to
        stop: a resumed erasure finds only what the last attempt left."""
        ids = set(subject.referral_ids) | set(subject.episode_ids)
        today = now.astimezone(UK).date()
        for c in self.children(s):
            if ids & (set(c.referral_ids) | set(c.episode_ids)):
                d = c.due_on(policy)
                return d is not None and d <= today
        return True  # nothing left of them here

    @staticmethod
    def record_id(subject: RetentionSubject) -> uuid.UUID:
        return uuid.uuid5(ERASURE_NAMESPACE, str(min(subject.subject_ids)))

    def begin(
        self,
        subject: RetentionSubject,
        policy: RetentionSettings,
        sweep_id: str,
        now: datetime,
    ) -> tuple[uuid.UUID, bool]:
        """The erasure's record, made now or found again; and whether the records are
        still due (False: the record says it was stopped, and nothing is erased)."""
        record_id = self.record_id(subject)
        with self.store.session() as s:
            row = s.get(ErasureRecord, record_id)
            if row is None:
                row = ErasureRecord(
                    id=record_id,
                    policy=policy.retention_policy,
                    keep_until_age=policy.retention_keep_until_age,
                    years_after_closure=policy.retention_years_after_closure,
                    sweep_id=sweep_id,
                    status=STARTED,
                    referral_ids=[str(i) for i in subject.referral_ids],
                    episode_ids=[str(i) for i in subject.episode_ids],
                    counts={},
                    started_at=now,
                )
                s.add(row)
            if row.status == ERASED:
                return record_id, True
            due = self.still_due(s, subject, policy, now)
            row.status = STARTED if due else STOPPED
            if not due:
                row.finished_at = now
            return record_id, due

    def add_counts(self, record_id: uuid.UUID, counts: Counts) -> None:
        """Merge a step's counts into the record. The largest count of a kind wins: a step
        repeated after a crash finds nothing left and reports 0, never less than was done."""
        with self.store.session() as s:
            row = s.get(ErasureRecord, record_id)
            if row is None:
                raise LookupError(f"no erasure record {record_id}")
            merged = dict(row.counts)
            for kind, n in counts.items():
                merged[kind] = max(merged.get(kind, 0), n)
            row.counts = merged

    def erase(self, record_id: uuid.UUID, subject: RetentionSubject, now: datetime) -> Counts:
        """Delete the child's rows from this service's tables and close the record, in one
        transaction: the rows are gone exactly when the record says so."""
        with self.store.session() as s:
            counts = {
                # Before the episodes: each record's key refers to its episode.
                "referral.episode_records": _delete(
                    s, EpisodeRecord, EpisodeRecord.episode_id, subject.episode_ids
                ),
                # Before the referrals: each row's key refers to its case.
                "referral.authorities_told": _delete(
                    s, AuthorityTold, AuthorityTold.case_id, subject.referral_ids
                ),
                **_erase_entities(s, subject.referral_ids),
                "referral.case_actions": _delete(
                    s, CaseActionFact, CaseActionFact.case_id, subject.referral_ids
                ),
                **_erase_identity(s, subject.referral_ids),
                "referral.missing_episodes": _delete(
                    s, MissingEpisode, MissingEpisode.id, subject.episode_ids
                ),
                "referral.referrals": _delete(s, Referral, Referral.id, subject.referral_ids),
            }
            row = s.get(ErasureRecord, record_id)
            if row is None:
                raise LookupError(f"no erasure record {record_id}")
            merged = dict(row.counts)
            for kind, n in counts.items():
                merged[kind] = max(merged.get(kind, 0), n)
            row.counts = merged
            row.status = ERASED
            row.finished_at = row.finished_at or now
            return merged

    def records(self, s: Session) -> Sequence[ErasureRecord]:
        return s.scalars(select(ErasureRecord).order_by(ErasureRecord.started_at)).all()


def _erase_entities(s: Session, referral_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The persons and places the child's tools named (each mention is the tool's: another
    child's mention of the same person stays), their indexes, the matches touching them with
    their record, their shares, and every action aimed at them or agreed in the child's
    cases (before the referrals: each mention refers to its tool)."""
    ids = list(referral_ids)
    if not ids:
        return {}
    mentions = list(s.scalars(select(Entity.id).where(Entity.referral_id.in_(ids))))
    matches = (
        list(
            s.scalars(
                select(EntityMatch.id).where(
                    or_(
                        EntityMatch.a_entity_id.in_(mentions),
                        EntityMatch.b_entity_id.in_(mentions),
                    )
                )
            )
        )
        if mentions
        else []
    )
    actions = _delete(s, EntityAction, EntityAction.case_id, ids)
    actions += _delete(s, EntityAction, EntityAction.entity_id, mentions)
    return {
        "referral.entity_actions": actions,
        "referral.entity_shares": _delete(s, EntityShare, EntityShare.entity_id, mentions),
        "referral.entity_match_events": _delete(
            s, EntityMatchEvent, EntityMatchEvent.match_id, matches
        ),
        "referral.entity_matches": _delete(s, EntityMatch, EntityMatch.id, matches),
        "referral.entity_keys": _delete(s, EntityKey, EntityKey.entity_id, mentions),
        "referral.entities": _delete(s, Entity, Entity.id, mentions),
    }


def _erase_identity(s: Session, referral_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The child's identity, its indexes, and every link touching the referrals with their
    record (before the referrals: each refers to one)."""
    ids = list(referral_ids)
    links = (
        list(
            s.scalars(
                select(ChildLink.id).where(
                    or_(ChildLink.a_referral_id.in_(ids), ChildLink.b_referral_id.in_(ids))
                )
            )
        )
        if ids
        else []
    )
    return {
        "referral.child_link_events": _delete(s, ChildLinkEvent, ChildLinkEvent.link_id, links),
        "referral.child_links": _delete(s, ChildLink, ChildLink.id, links),
        "referral.child_block_keys": _delete(s, ChildBlockKey, ChildBlockKey.referral_id, ids),
        "referral.child_identities": _delete(s, ChildIdentity, ChildIdentity.referral_id, ids),
    }


def _delete(s: Session, model: Any, column: Any, ids: Iterable[uuid.UUID]) -> int:
    ids = list(ids)
    if not ids:
        return 0
    result = s.execute(delete(model).where(column.in_(ids)))
    return int(getattr(result, "rowcount", 0))
