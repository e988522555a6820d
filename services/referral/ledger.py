"""The information-sharing ledger: one entry for each disclosure of a child's record, kept by
the referral service, which owns the record (ADR 0023, docs/ledger.md).

An entry is written **before** the record is handed over: if it cannot be written, nothing
is shown. Entries are only ever appended: the table refuses UPDATE and DELETE (a trigger,
on SQLite and PostgreSQL alike: migration 0006), and each entry carries the hash of the one
before it, so an edit made around the trigger (by someone with the database owner's rights)
breaks the chain at that entry (``verify``).

The chain is kept linear without a lock: ``prev_hash`` is unique, so of two appends that read
the same last entry only one can commit; the other is refused by the constraint and appends
again after it. An append is its own short transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mset_contract.auth import Principal
from mset_contract.ledger import (
    VIEW_FIELDS,
    DisclosurePublic,
    DisclosurePurpose,
    DisclosureReport,
    DisclosureView,
    RecipientKind,
    Reporter,
    ShownTo,
)
from mset_contract.vocab import LawfulBasis, Role
from mset_platform.clock import Clock, utcnow
from mset_platform.paging import Paged, PageRequest
from services.referral.store import LEDGER_ORDER, LedgerEntry, MissingEpisode, Referral, Store

GENESIS = "0" * 64
# Appends racing for the same predecessor retry; this many losses in a row is a fault.
MAX_APPEND_TRIES = 50

# The hashed content of an entry, in this order. Never change it: the chain of every entry
# already written is computed over exactly these fields.
HASHED = (
    "id", "at", "case_id", "record", "record_id", "view", "fields", "recipient_kind",
    "user_id", "agency_id", "role", "recipient", "purpose", "lawful_basis", "reported_by",
    "report_id",
)  # fmt: skip


def _canon(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's content, as canonical JSON."""
    body = json.dumps(
        {k: _canon(content.get(k)) for k in HASHED}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


# Lawful basis by purpose: a panel and case work share on the basis the referrer recorded in
# the tool (``consent.lawful_basis``); a subject access export is a legal obligation (UK GDPR
# art. 15), as is the DPO's oversight of the ledger (art. 5(2)).
STATUTORY_BASIS = LawfulBasis.legal_obligation
DEFAULT_BASIS = LawfulBasis.public_task


# The referral API's reads, by the purpose each route names: the view shown, and why.
READS: dict[str, tuple[DisclosureView, DisclosurePurpose]] = {
    "status": (DisclosureView.case_status, DisclosurePurpose.case_work),
    "panel": (DisclosureView.panel_papers, DisclosurePurpose.panel),
    "pre_mset_decision": (DisclosureView.case_decision, DisclosurePurpose.panel),
    "mset_review": (DisclosureView.case_decision, DisclosurePurpose.panel),
    "exit": (DisclosureView.case_decision, DisclosurePurpose.case_work),
    "action_progress": (DisclosureView.action_progress, DisclosurePurpose.case_work),
    "owned_actions": (DisclosureView.owned_actions, DisclosurePurpose.case_work),
    "child_identity": (DisclosureView.child_identity, DisclosurePurpose.case_work),
    "child_history": (DisclosureView.child_history, DisclosurePurpose.case_work),
    "child_entities": (DisclosureView.case_status, DisclosurePurpose.case_work),
}
# What a role is not shown of the papers (services/referral/papers.py trims it): the entry
# lists only the fields that were shown.
PAPERS_WITHHELD: dict[Role, tuple[str, ...]] = {
    Role.panel_member: (
        "why.referrer_rationale",
        "history.decisions[].rationale",
        "history.actions[].progress[].note",
    )
}


@dataclass
class Disclosed:
    """One disclosure, before it is an entry."""

    case_id: uuid.UUID | None
    view: DisclosureView
    purpose: DisclosurePurpose
    recipient_kind: RecipientKind
    agency_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    role: Role | None = None
    recipient: str | None = None
    record: str = "case"
    record_id: uuid.UUID | None = None
    fields: Sequence[str] | None = None  # None: the view's fields (VIEW_FIELDS)
    at: datetime | None = None
    reported_by: Reporter = "referral"
    report_id: uuid.UUID | None = None
    lawful_basis: LawfulBasis | None = None  # None: decided by the purpose and the tool
    extra: dict[str, Any] = field(default_factory=dict)


def to(principal: Principal) -> dict[str, Any]:
    """Who an API caller is, as an entry records them."""
    kind: RecipientKind = (
        "user"
        if principal.kind == "user"
        else "partner_system"
        if principal.kind == "agency"
        else "service"
    )
    return {
        "recipient_kind": kind,
        "agency_id": principal.agency_id,
        "user_id": principal.user_id,
        "role": principal.role,
    }


class Ledger:
    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    # Writing -------------------------------------------------------------------------------

    def record(self, entries: Iterable[Disclosed]) -> int:
        """Append the entries, in order, as one transaction; returns how many were new (a
        report already recorded under its ``report_id`` is skipped)."""
        wanted = list(entries)
        if not wanted:
            return 0
        for _ in range(MAX_APPEND_TRIES):
            try:
                with self.store.session() as s:
                    return self._append(s, wanted)
            except IntegrityError:
                continue  # another append took our predecessor: chain after it
        raise RuntimeError("the ledger could not be appended to: too many concurrent appends")

    def disclose(
        self, principal: Principal, case_id: uuid.UUID, view: DisclosureView, **kw: Any
    ) -> None:
        """One disclosure to an API caller (the usual case), recorded now."""
        purpose = kw.pop("purpose", DisclosurePurpose.case_work)
        self.record([Disclosed(case_id=case_id, view=view, purpose=purpose, **to(principal), **kw)])

    def read(self, principal: Principal, row: Referral, purpose: str) -> None:
        """A referral read by an API caller, for one of the routes' purposes (``READS``)."""
        view, why = READS.get(purpose, (DisclosureView.case_status, DisclosurePurpose.case_work))
        fields = None
        if principal.role is not None and view is DisclosureView.panel_papers:
            hidden = PAPERS_WITHHELD.get(principal.role, ())
            fields = [f for f in VIEW_FIELDS[view] if f not in hidden]
        self.record(
            [
                Disclosed(
                    case_id=row.case_referral_id or row.id,
                    record="referral",
                    record_id=row.id,
                    view=view,
                    purpose=why,
                    fields=fields,
                    **to(principal),
                )
            ]
        )

    def _append(self, s: Session, wanted: list[Disclosed]) -> int:
        last = s.execute(
            select(LedgerEntry.entry_hash).order_by(LedgerEntry.seq.desc()).limit(1)
        ).scalar()
        prev = last or GENESIS
        reported = {d.report_id for d in wanted if d.report_id is not None}
        seen = (
            set(s.scalars(select(LedgerEntry.report_id).where(LedgerEntry.report_id.in_(reported))))
            if reported
            else set()
        )
        bases = self._bases(s, {d.case_id for d in wanted if d.case_id is not None})
        now = self.clock()
        added = 0
        for d in wanted:
            if d.report_id is not None and d.report_id in seen:
                continue
            content: dict[str, Any] = {
                "id": uuid.uuid4(),
                "at": d.at or now,
                "case_id": d.case_id,
                "record": d.record,
                "record_id": d.record_id,
                "view": d.view.value,
                "fields": list(d.fields if d.fields is not None else VIEW_FIELDS[d.view]),
                "recipient_kind": d.recipient_kind,
                "user_id": d.user_id,
                "agency_id": d.agency_id,
                "role": d.role.value if d.role else None,
                "recipient": d.recipient,
                "purpose": d.purpose.value,
                "lawful_basis": (d.lawful_basis or _basis(d, bases)).value,
                "reported_by": d.reported_by,
                "report_id": d.report_id,
            }
            entry_hash = chain_hash(prev, content)
            s.add(LedgerEntry(**content, prev_hash=prev, entry_hash=entry_hash))
            # Flush one at a time: the chain's order is the order of ``seq``.
            s.flush()
            prev = entry_hash
            added += 1
            if d.report_id is not None:
                seen.add(d.report_id)
        return added

    def _bases(self, s: Session, case_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, LawfulBasis]:
        """The lawful basis each case's referrer recorded (its first tool's)."""
        if not case_ids:
            return {}
        out: dict[uuid.UUID, LawfulBasis] = {}
        for r in s.scalars(select(Referral).where(Referral.id.in_(list(case_ids)))):
            basis = (r.tool.get("consent") or {}).get("lawful_basis")
            if isinstance(basis, str) and basis in LawfulBasis.__members__:
                out[r.id] = LawfulBasis(basis)
        return out

    def report(self, reports: Sequence[DisclosureReport], reporter: Reporter) -> int:
        """Disclosures another MSET service made (``POST /v1/disclosures``)."""
        return self.record(
            Disclosed(
                case_id=r.case_id,
                view=r.view,
                purpose=r.purpose,
                recipient_kind=r.recipient_kind,
                agency_id=r.agency_id,
                user_id=r.user_id,
                role=r.role,
                recipient=r.recipient,
                record=r.record,
                record_id=r.record_id,
                fields=r.fields or None,
                at=r.at,
                reported_by=reporter,
                report_id=r.report_id,
            )
            for r in reports
        )

    # Reading -------------------------------------------------------------------------------

    def page(
        self,
        page: PageRequest,
        *,
        case_ids: Collection[uuid.UUID] | None = None,
        agency_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Paged[DisclosurePublic]:
        q = _filtered(case_ids, agency_id, since, until)
        with self.store.session() as s:
            got = LEDGER_ORDER.fetch(s, q, page)
            return Paged([public(e) for e in got.rows], got.next_cursor)

    def all(
        self,
        *,
        case_ids: Collection[uuid.UUID] | None = None,
        agency_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        record_ids: Collection[uuid.UUID] = (),
    ) -> list[DisclosurePublic]:
        q = _filtered(case_ids, agency_id, since, until, record_ids).order_by(LedgerEntry.seq)
        with self.store.session() as s:
            return [public(e) for e in s.scalars(q)]

    def verify(self) -> int | None:
        """The ``seq`` of the first entry whose hash does not hold, or None if the whole chain
        holds."""
        prev = GENESIS
        with self.store.session() as s:
            for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)):
                content = {k: getattr(e, k) for k in HASHED}
                if e.prev_hash != prev or chain_hash(prev, content) != e.entry_hash:
                    return e.seq
                prev = e.entry_hash
        return None


def _basis(d: Disclosed, bases: dict[uuid.UUID, LawfulBasis]) -> LawfulBasis:
    if d.purpose in (DisclosurePurpose.statutory_duty, DisclosurePurpose.oversight):
        return STATUTORY_BASIS
    return bases.get(d.case_id, DEFAULT_BASIS) if d.case_id else DEFAULT_BASIS


def _filtered(
    case_ids: Collection[uuid.UUID] | None,
    agency_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    record_ids: Collection[uuid.UUID] = (),
) -> Select[LedgerEntry]:
    q = select(LedgerEntry)
    if case_ids is not None:
        about: ColumnElement[bool] = LedgerEntry.case_id.in_(list(case_ids))
        if record_ids:
            about = or_(about, LedgerEntry.record_id.in_(list(record_ids)))
        q = q.where(about)
    if agency_id is not None:
        q = q.where(LedgerEntry.agency_id == agency_id)
    if since is not None:
        q = q.where(LedgerEntry.at >= since)
    if until is not None:
        q = q.where(LedgerEntry.at < until)
    return q


def public(e: LedgerEntry) -> DisclosurePublic:
    return DisclosurePublic(
        id=e.id,
        seq=e.seq,
        at=e.at,
        case_id=e.case_id,
        record=e.record,
        record_id=e.record_id,
        view=DisclosureView(e.view),
        fields=list(e.fields),
        recipient_kind=e.recipient_kind,
        user_id=e.user_id,
        agency_id=e.agency_id,
        role=Role(e.role) if e.role else None,
        recipient=e.recipient,
        purpose=DisclosurePurpose(e.purpose),
        lawful_basis=LawfulBasis(e.lawful_basis),
        reported_by=e.reported_by,
        prev_hash=e.prev_hash,
        entry_hash=e.entry_hash,
    )


def who_disclosed(
    principal: Principal, case_ids: Sequence[uuid.UUID], shown: ShownTo | None
) -> list[Disclosed]:
    """Who the cases are about, named to a service (``GET /v1/cases/who``): to the person it
    says it shows them to (an agenda or minutes), for the panel."""
    if shown is None:
        return [
            Disclosed(
                case_id=c, view=DisclosureView.case_who, purpose=DisclosurePurpose.panel,
                **to(principal),
            )
            for c in case_ids
        ]  # fmt: skip
    return [
        Disclosed(
            case_id=c,
            view=shown.view,
            purpose=DisclosurePurpose.panel,
            recipient_kind="user" if shown.user_id else "partner_system",
            agency_id=shown.agency_id,
            user_id=shown.user_id,
            role=shown.role,
            record="meeting" if shown.meeting_id else "case",
            record_id=shown.meeting_id,
            reported_by="meeting",
        )
        for c in case_ids
    ]


def episode_read(ledger: Ledger, principal: Principal, row: MissingEpisode) -> Callable[[], None]:
    """A missing episode read by an API caller (recorded before it is answered)."""

    def record() -> None:
        ledger.record(
            [
                Disclosed(
                    case_id=row.case_referral_id,
                    record="missing_episode",
                    record_id=row.id,
                    view=DisclosureView.missing_episode,
                    purpose=DisclosurePurpose.case_work,
                    **to(principal),
                )
            ]
        )

    return record
