"""The child's identity held encrypted, its blind indexes, and the same-child links: the
tables and their queries (ADR 0028).

``referral_child_identities``: one row per tool that gave a name or an NHS number: the
identity sealed (AES-256-GCM under the identity keyring's current key, its key id beside it;
the row's id is the associated data), the NHS number's blind index (HMAC), and the clear
columns matching filters on that are not personal (the authority). ``referral_child_block_keys``:
the record's blocking keys, each an HMAC, so a new tool finds the few known children worth
comparing without decrypting every row. ``referral_child_links``: a pair of tools said to be
the same child, with its status; ``referral_child_link_events``: every change to a link,
who made it and why, appended and never changed (retention alone erases them, with the
child's records).

What the tool itself stores (``referral_referrals.tool``) is the tool without the identity:
the name, NHS number and postcode are nowhere in clear.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from mset_contract.identity import (
    Agreement,
    ChildIdentityPublic,
    ChildName,
    LinkAction,
    LinkBasis,
    LinkStatus,
)
from mset_contract.referral import ReferralCreate
from mset_platform.db import UTCDateTime
from mset_platform.field_crypto import BlindIndex, FieldCipher, Sealed
from services.referral.matching import Match, Person, block_keys, compare, probe_keys
from services.referral.store import Base, Referral

IDENTITY_FIELDS = ("name", "nhs_number", "postcode")
# At most this many known tools are scored for one intake (the blocks' union): a bound on
# the work of one request whatever the data; the bench measures how many it takes.
MAX_CANDIDATES = 2000


class ChildIdentity(Base):
    __tablename__ = "referral_child_identities"

    referral_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), primary_key=True
    )
    key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    nhs_index: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    local_authority: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChildBlockKey(Base):
    __tablename__ = "referral_child_block_keys"

    referral_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ChildLink(Base):
    __tablename__ = "referral_child_links"
    __table_args__ = (UniqueConstraint("a_referral_id", "b_referral_id", name="uq_child_link"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # a: the newer tool (the one matched at its intake); b: the tool it was matched with.
    a_referral_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), index=True
    )
    b_referral_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), index=True
    )
    a_local_authority: Mapped[str] = mapped_column(String(40), index=True)
    b_local_authority: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    basis: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)
    # Field → agreement code (mset_contract.identity.Agreement): never a value.
    agreement: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChildLinkEvent(Base):
    __tablename__ = "referral_child_link_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_child_links.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None: the system, at intake (an NHS-number link, a candidate proposed).
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    by_agency_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    by_role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))


def identity_context(referral_id: uuid.UUID) -> str:
    return f"{ChildIdentity.__tablename__}:{referral_id}"


def without_identity(tool: dict[str, Any]) -> dict[str, Any]:
    """The stored tool: the child's identity taken out (it is held sealed, on its own)."""
    child = {k: v for k, v in tool["child"].items() if k not in IDENTITY_FIELDS}
    return {**tool, "child": child}


def has_identity(tool: ReferralCreate) -> bool:
    return tool.child.name is not None or tool.child.nhs_number is not None


@dataclass(frozen=True)
class Known:
    """A known tool found for a new one, decrypted for scoring."""

    referral_id: uuid.UUID
    case_id: uuid.UUID
    previous_referral_id: uuid.UUID | None
    local_authority: str
    person: Person


def person_of(doc: dict[str, Any], local_authority: str) -> Person:
    name = doc.get("name") or {}
    return Person.of(
        given=name.get("given"),
        family=name.get("family"),
        known_as=name.get("known_as"),
        aliases=name.get("aliases") or (),
        date_of_birth=date.fromisoformat(doc["date_of_birth"]),
        gender=doc["gender"],
        local_authority=local_authority,
        nhs_number=doc.get("nhs_number"),
        postcode=doc.get("postcode"),
    )


class IdentityStore:
    """Sealing, indexing and finding identities; links and their record."""

    def __init__(self, cipher: FieldCipher, index: BlindIndex) -> None:
        self.cipher = cipher
        self.index = index

    # --- sealing ---------------------------------------------------------------------------

    def seal(self, referral_id: uuid.UUID, doc: dict[str, Any]) -> Sealed:
        plain = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return self.cipher.seal(plain, identity_context(referral_id))

    def open(self, row: ChildIdentity) -> dict[str, Any]:
        plain = self.cipher.open(Sealed(row.key_id, row.sealed), identity_context(row.referral_id))
        doc: dict[str, Any] = json.loads(plain)
        return doc

    def nhs_index(self, nhs_number: str) -> str:
        return self.index.of("nhs", nhs_number)

    def add(self, s: Session, referral_id: uuid.UUID, tool: ReferralCreate, at: datetime) -> Person:
        """Record a tool's identity (sealed) and its blocking keys, in the caller's
        transaction; the person it describes, for matching."""
        c = tool.child
        doc = {
            "name": c.name.model_dump(mode="json") if c.name is not None else None,
            "nhs_number": c.nhs_number,
            "postcode": c.postcode,
            "date_of_birth": c.date_of_birth.isoformat(),
            "gender": c.gender.value,
        }
        identity, keys, person = self.build(referral_id, doc, c.local_authority, at)
        s.add(identity)
        s.add_all(keys)
        return person

    def build(
        self, referral_id: uuid.UUID, doc: dict[str, Any], local_authority: str, at: datetime
    ) -> tuple[ChildIdentity, list[ChildBlockKey], Person]:
        """The rows that hold an identity (``doc``: name, nhs_number, postcode,
        date_of_birth, gender), and the person they describe."""
        sealed = self.seal(referral_id, doc)
        nhs = doc.get("nhs_number")
        identity = ChildIdentity(
            referral_id=referral_id,
            key_id=sealed.key_id,
            sealed=sealed.data,
            nhs_index=self.nhs_index(nhs) if nhs else None,
            local_authority=local_authority,
            created_at=at,
        )
        person = person_of(doc, local_authority)
        keys = sorted({self.index.of(kind, value) for kind, value in block_keys(person)})
        return identity, [ChildBlockKey(referral_id=referral_id, key=k) for k in keys], person

    def identity(self, s: Session, referral_id: uuid.UUID) -> ChildIdentityPublic | None:
        row = s.get(ChildIdentity, referral_id)
        if row is None:
            return None
        return self.public(row)

    def public(self, row: ChildIdentity) -> ChildIdentityPublic:
        doc = self.open(row)
        return ChildIdentityPublic(
            referral_id=row.referral_id,
            name=ChildName.model_validate(doc["name"]) if doc.get("name") else None,
            nhs_number=doc.get("nhs_number"),
            postcode=doc.get("postcode"),
            date_of_birth=date.fromisoformat(doc["date_of_birth"]),
            gender=doc["gender"],
            local_authority=row.local_authority,
            key_id=row.key_id,
        )

    def reseal_all(self, s: Session, limit: int = 1000) -> int:
        """Move up to ``limit`` identities sealed under older keys to the current key (key
        rotation); the number moved."""
        rows = s.scalars(
            select(ChildIdentity).where(ChildIdentity.key_id != self.cipher.current).limit(limit)
        ).all()
        for row in rows:
            new = self.cipher.reseal(
                Sealed(row.key_id, row.sealed), identity_context(row.referral_id)
            )
            if new is not None:
                row.key_id, row.sealed = new.key_id, new.data
        return len(rows)

    # --- finding ---------------------------------------------------------------------------

    def candidates(
        self, s: Session, person: Person, exclude_cases: Collection[uuid.UUID]
    ) -> list[Known]:
        """The known (delivered) tools that share a blocking key or the NHS number with
        ``person``, decrypted; none of the cases in ``exclude_cases``."""
        probes = sorted({self.index.of(kind, value) for kind, value in probe_keys(person)})
        found = select(ChildBlockKey.referral_id).where(ChildBlockKey.key.in_(probes))
        cond: list[ColumnElement[bool]] = [ChildIdentity.referral_id.in_(found)]
        if person.nhs_number:
            cond.append(ChildIdentity.nhs_index == self.nhs_index(person.nhs_number))
        # Plain columns, not ORM objects: this is the hot path of every intake.
        rows = s.execute(
            select(
                ChildIdentity.referral_id,
                ChildIdentity.key_id,
                ChildIdentity.sealed,
                ChildIdentity.local_authority,
                Referral.case_referral_id,
                Referral.previous_referral_id,
            )
            .join(Referral, Referral.id == ChildIdentity.referral_id)
            .where(or_(*cond), Referral.workflow_started.is_(True))
            .limit(MAX_CANDIDATES)
        ).all()
        out = []
        for referral_id, key_id, sealed, local_authority, case_referral_id, previous in rows:
            case_id = case_referral_id or referral_id
            if case_id in exclude_cases:
                continue
            plain = self.cipher.open(Sealed(key_id, sealed), identity_context(referral_id))
            out.append(
                Known(
                    referral_id=referral_id,
                    case_id=case_id,
                    previous_referral_id=previous,
                    local_authority=local_authority,
                    person=person_of(json.loads(plain), local_authority),
                )
            )
        return out

    def seal_and_link(
        self,
        s: Session,
        referral_id: uuid.UUID,
        local_authority: str,
        tool: ReferralCreate,
        at: datetime,
        exclude_cases: Collection[uuid.UUID] = (),
    ) -> None:
        """Seal a tool's identity and link it to the children already known (the same NHS
        number at once; likely matches as candidates for the coordinator), in the caller's
        transaction, so that a tool is never recorded without its identity or its links.
        Intake and the historic import both come this way."""
        person = self.add(s, referral_id, tool, at)
        found = self.match(s, person, exclude_cases=exclude_cases)
        self.propose(s, referral_id, local_authority, found, at)

    def match(
        self, s: Session, person: Person, exclude_cases: Collection[uuid.UUID]
    ) -> list[tuple[Known, Match]]:
        """The known tools worth a link: each case's best match, certain or for review."""
        best: dict[uuid.UUID, tuple[Known, Match]] = {}
        for known in self.candidates(s, person, exclude_cases):
            m = compare(person, known.person)
            if m is None or not (m.certain or m.for_review):
                continue
            held = best.get(known.case_id)
            if held is None or m.score > held[1].score:
                best[known.case_id] = (known, m)
        # One link per known child: tools already linked as one child (by an NHS number or
        # a coordinator) are one candidate, its best-scoring tool. One query, over the tools
        # found (a child's tools linked only through a tool not found stay apart: rare, and
        # the coordinator sees both).
        ranked = sorted(best.values(), key=lambda km: -km[1].score)
        if len(ranked) < 2:
            return ranked
        ids = [k.referral_id for k, _ in ranked]
        joined: dict[uuid.UUID, set[uuid.UUID]] = {i: {i} for i in ids}
        for a, b in s.execute(
            select(ChildLink.a_referral_id, ChildLink.b_referral_id).where(
                ChildLink.status == LinkStatus.linked.value,
                ChildLink.a_referral_id.in_(ids),
                ChildLink.b_referral_id.in_(ids),
            )
        ):
            merged = joined[a] | joined[b]
            for i in merged:
                joined[i] = merged
        kept: list[tuple[Known, Match]] = []
        covered: set[uuid.UUID] = set()
        for known, m in ranked:
            if known.referral_id in covered:
                continue
            kept.append((known, m))
            covered |= joined[known.referral_id]
        return kept

    # --- links -----------------------------------------------------------------------------

    def propose(
        self,
        s: Session,
        a_referral_id: uuid.UUID,
        a_local_authority: str,
        found: Iterable[tuple[Known, Match]],
        at: datetime,
    ) -> list[ChildLink]:
        """Record the links a new tool's matches make: certain ones linked, the others
        candidates for the coordinator; each with its first event (by the system)."""
        made = []
        for known, m in found:
            link = ChildLink(
                id=uuid.uuid4(),
                a_referral_id=a_referral_id,
                b_referral_id=known.referral_id,
                a_local_authority=a_local_authority,
                b_local_authority=known.local_authority,
                status=(LinkStatus.linked if m.certain else LinkStatus.candidate).value,
                basis=(LinkBasis.nhs_number if m.certain else LinkBasis.probabilistic).value,
                score=m.score,
                agreement={k: v.value for k, v in m.agreement.items()},
                created_at=at,
                updated_at=at,
            )
            s.add(link)
            s.flush()
            s.add(
                ChildLinkEvent(
                    link_id=link.id,
                    action=(LinkAction.auto_linked if m.certain else LinkAction.proposed).value,
                    at=at,
                    by_user_id=None,
                    by_agency_id=None,
                    by_role=None,
                    reason="same NHS number" if m.certain else "likely match at intake",
                )
            )
            made.append(link)
        return made

    @staticmethod
    def record(
        s: Session,
        link: ChildLink,
        action: LinkAction,
        status: LinkStatus,
        at: datetime,
        *,
        user_id: uuid.UUID | None,
        agency_id: uuid.UUID | None,
        role: str | None,
        reason: str,
    ) -> None:
        link.status = status.value
        link.updated_at = at
        s.add(
            ChildLinkEvent(
                link_id=link.id,
                action=action.value,
                at=at,
                by_user_id=user_id,
                by_agency_id=agency_id,
                by_role=role,
                reason=reason,
            )
        )

    @staticmethod
    def events(
        s: Session, link_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[ChildLinkEvent]]:
        out: dict[uuid.UUID, list[ChildLinkEvent]] = {}
        if not link_ids:
            return out
        for e in s.scalars(
            select(ChildLinkEvent)
            .where(ChildLinkEvent.link_id.in_(list(link_ids)))
            .order_by(ChildLinkEvent.seq)
        ):
            out.setdefault(e.link_id, []).append(e)
        return out

    @staticmethod
    def links_of(
        s: Session, referral_ids: Collection[uuid.UUID], status: LinkStatus
    ) -> list[ChildLink]:
        ids = list(referral_ids)
        if not ids:
            return []
        return list(
            s.scalars(
                select(ChildLink).where(
                    ChildLink.status == status.value,
                    or_(ChildLink.a_referral_id.in_(ids), ChildLink.b_referral_id.in_(ids)),
                )
            )
        )

    @staticmethod
    def queue(
        s: Session, authorities: Collection[str], after: uuid.UUID | None, limit: int
    ) -> list[ChildLink]:
        """Candidates touching the authorities, both tools delivered, oldest first by id
        page (a keyset on the link id)."""
        la = list(authorities)
        a, b = Referral.__table__.alias("a"), Referral.__table__.alias("b")
        q = (
            select(ChildLink)
            .join(a, a.c.id == ChildLink.a_referral_id)
            .join(b, b.c.id == ChildLink.b_referral_id)
            .where(
                ChildLink.status == LinkStatus.candidate.value,
                a.c.workflow_started.is_(True),
                b.c.workflow_started.is_(True),
                or_(ChildLink.a_local_authority.in_(la), ChildLink.b_local_authority.in_(la)),
            )
            .order_by(ChildLink.id)
            .limit(limit)
        )
        if after is not None:
            q = q.where(ChildLink.id > after)
        return list(s.scalars(q))

    @staticmethod
    def history_ids(
        s: Session, referral_id: uuid.UUID, cap: int = 500
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, str], set[uuid.UUID]]:
        """Every referral of the child's: the referral's case and its reassessments, the
        cases before and after it (re-referrals), and the same for every tool linked to any
        of them (status ``linked``), until nothing more is found. Returns the ids, how each
        joined (``case``, ``nhs_number``, ``confirmed``), and the links used."""
        how: dict[uuid.UUID, str] = {referral_id: "case"}
        links_used: set[uuid.UUID] = set()
        frontier = {referral_id}
        while frontier and len(how) < cap:
            rows = s.execute(
                select(Referral.id, Referral.case_referral_id, Referral.previous_referral_id).where(
                    Referral.id.in_(list(frontier)), Referral.workflow_started.is_(True)
                )
            ).all()
            cases = {r.case_referral_id or r.id for r in rows}
            prev = {r.previous_referral_id for r in rows if r.previous_referral_id is not None}
            roots = cases | prev
            related = s.execute(
                select(Referral.id).where(
                    Referral.workflow_started.is_(True),
                    or_(
                        Referral.id.in_(list(roots)),
                        Referral.case_referral_id.in_(list(roots)),
                        Referral.previous_referral_id.in_(list(roots)),
                    ),
                )
            ).scalars()
            new: set[uuid.UUID] = set()
            for rid in related:
                if rid not in how:
                    how[rid] = "case"
                    new.add(rid)
            for link in IdentityStore.links_of(s, set(how), LinkStatus.linked):
                links_used.add(link.id)
                basis = "nhs_number" if link.basis == LinkBasis.nhs_number.value else "confirmed"
                for rid in (link.a_referral_id, link.b_referral_id):
                    if rid not in how:
                        how[rid] = basis
                        new.add(rid)
            frontier = new
        return set(how), how, links_used


def agreement_of(link: ChildLink) -> dict[str, Agreement]:
    return {k: Agreement(v) for k, v in link.agreement.items()}
