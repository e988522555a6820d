"""Persons of concern and locations as entities: the tables and their queries (ADR 0030).

``referral_entities``: one row per mention in a tool (a person of concern or a location that
said who or where it is): the detail sealed (AES-256-GCM under the identity keyring, the
row's id the associated data, as ADR 0028 seals the child's identity), and the clear columns
that are not personal (kind, the kind of place, the tool, its case and authority).
``referral_entity_keys``: the mention's blind indexes (HMAC of a normalised phone number,
handle, registration, postcode, address, name), each with its kind, so the same value in
another tool is found without decrypting anything. ``referral_entity_matches``: two mentions
suggested to be one person or place, with its status; ``referral_entity_match_events``:
every change, by whom and why, appended only. Confirmed matches join mentions into one
entity: the connected mentions, found when read (an undone match simply stops joining).
``referral_entity_actions``: plan actions aimed at a mention (copied from the case's
recorded state when the workflow records it). ``referral_entity_shares``: an authority's
mentions of an entity shared with another authority, by whom and why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    delete,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from mset_contract.entities import (
    EntityDetail,
    EntityKind,
    EntityMatchAction,
    EntityMatchStatus,
    LocationKind,
)
from mset_contract.referral import ReferralCreate
from mset_contract.referral_workflow import ReferralState
from mset_platform.db import UTCDateTime
from mset_platform.field_crypto import BlindIndex, FieldCipher, Sealed
from services.referral.child_identity import without_identity
from services.referral.entity_matching import compare, keys_of
from services.referral.store import Base, Referral

# At most this many mentions are compared with a new one (the union of its keys' finds).
MAX_FOUND = 500
# How far a connected entity is followed (mentions): a bound on one read, whatever the data.
MAX_COMPONENT = 2000

_LOCATION_KINDS = {k.value for k in LocationKind}


class Entity(Base):
    __tablename__ = "referral_entities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    location_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_referrals.id"), index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class EntityKey(Base):
    __tablename__ = "referral_entity_keys"

    entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_entities.id"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    # What kind of value the index is of (phone, handle, ...): not the value.
    kind: Mapped[str] = mapped_column(String(20))


class EntityMatch(Base):
    __tablename__ = "referral_entity_matches"
    __table_args__ = (UniqueConstraint("a_entity_id", "b_entity_id", name="uq_entity_match"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # a: the newer mention (matched when it arrived); b: the one it was found to resemble.
    a_entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_entities.id"), index=True)
    b_entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_entities.id"), index=True)
    a_local_authority: Mapped[str] = mapped_column(String(40), index=True)
    b_local_authority: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    score: Mapped[float] = mapped_column(Float)
    # What the two share (phone, handle, ...): never a value.
    agreement: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EntityMatchEvent(Base):
    __tablename__ = "referral_entity_match_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    match_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_entity_matches.id"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    by_agency_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    by_role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))


class EntityAction(Base):
    __tablename__ = "referral_entity_actions"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    action_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    local_authority: Mapped[str] = mapped_column(String(40))
    aim: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EntityShare(Base):
    __tablename__ = "referral_entity_shares"
    __table_args__ = (UniqueConstraint("entity_id", "to_authority", name="uq_entity_share"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # A mention (of the sharing authority) now visible to the other authority's staff.
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_entities.id"), index=True)
    to_authority: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    reason: Mapped[str] = mapped_column(String(500))


def entity_context(entity_id: uuid.UUID) -> str:
    return f"{Entity.__tablename__}:{entity_id}"


def without_entities(tool: dict[str, Any]) -> dict[str, Any]:
    """The stored tool: who the persons of concern are and where the locations are taken out
    (each is held sealed, as an entity)."""
    persons = [
        {k: v for k, v in p.items() if k != "identifiers"}
        for p in tool.get("persons_of_concern", [])
    ]
    places = [{k: v for k, v in p.items() if k != "place"} for p in tool.get("locations", [])]
    return {**tool, "persons_of_concern": persons, "locations": places}


def as_stored(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as it is stored: the child's identity (ADR 0028) and who and where the people
    and places of concern are (ADR 0030) taken out, each held sealed on its own."""
    return without_entities(without_identity(tool))


def mentions_of(
    tool: ReferralCreate,
) -> list[tuple[EntityKind, LocationKind | None, dict[str, Any]]]:
    """The tool's mentions that say who or where: (kind, kind of place, detail)."""
    out: list[tuple[EntityKind, LocationKind | None, dict[str, Any]]] = []
    for p in tool.persons_of_concern:
        if p.identifiers is None or not p.identifiers.any():
            continue
        doc = {
            **p.identifiers.model_dump(mode="json"),
            "relationship": p.relationship,
            "description": p.description,
            "known_to_police": p.known_to_police,
        }
        out.append((EntityKind.person, None, doc))
    for loc in tool.locations:
        if loc.place is None or not loc.place.any():
            continue
        doc = {
            "place_name": loc.place.name,
            "address": loc.place.address,
            "postcode": loc.place.postcode,
            "online": loc.place.online,
            "description": loc.description,
        }
        kind = LocationKind(loc.kind) if loc.kind in _LOCATION_KINDS else LocationKind.other
        out.append((EntityKind.location, kind, doc))
    return out


def detail_of(doc: dict[str, Any]) -> EntityDetail:
    return EntityDetail(
        names=doc.get("names") or [],
        description=doc.get("description"),
        vehicles=doc.get("vehicles") or [],
        phones=doc.get("phones") or [],
        handles=doc.get("handles") or [],
        known_to_police=doc.get("known_to_police"),
        place_name=doc.get("place_name"),
        address=doc.get("address"),
        postcode=doc.get("postcode"),
        online=doc.get("online"),
    )


class EntityStore:
    """Sealing, indexing and matching mentions; matches, their record, and components."""

    def __init__(self, cipher: FieldCipher, index: BlindIndex) -> None:
        self.cipher = cipher
        self.index = index

    # --- sealing ---------------------------------------------------------------------------

    def open(self, row: Entity) -> dict[str, Any]:
        plain = self.cipher.open(Sealed(row.key_id, row.sealed), entity_context(row.id))
        doc: dict[str, Any] = json.loads(plain)
        return doc

    def detail(self, row: Entity) -> EntityDetail:
        return detail_of(self.open(row))

    def add(self, s: Session, row: Referral, tool: ReferralCreate) -> list[Entity]:
        """Record the tool's mentions, sealed, with their keys, and suggest matches with the
        mentions already known; in the caller's (the intake's) transaction."""
        made = []
        case_id = row.case_referral_id or row.id
        for kind, location_kind, doc in mentions_of(tool):
            entity_id = uuid.uuid4()
            plain = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            sealed = self.cipher.seal(plain, entity_context(entity_id))
            entity = Entity(
                id=entity_id,
                kind=kind.value,
                location_kind=location_kind.value if location_kind else None,
                referral_id=row.id,
                case_id=case_id,
                local_authority=row.local_authority,
                key_id=sealed.key_id,
                sealed=sealed.data,
                created_at=row.submitted_at,
            )
            s.add(entity)
            keys = {
                self.index.of(f"entity.{kind.value}.{k}", v): k for k, v in keys_of(kind.value, doc)
            }
            s.flush()
            s.add_all(EntityKey(entity_id=entity_id, key=h, kind=k) for h, k in keys.items())
            s.flush()
            self._suggest(s, entity, doc, keys, row.submitted_at)
            made.append(entity)
        return made

    def _suggest(
        self, s: Session, entity: Entity, doc: dict[str, Any], keys: dict[str, str], at: datetime
    ) -> None:
        if not keys:
            return
        found: dict[uuid.UUID, set[str]] = {}
        for other_id, kind in s.execute(
            select(EntityKey.entity_id, EntityKey.kind)
            .join(Entity, Entity.id == EntityKey.entity_id)
            .join(Referral, Referral.id == Entity.referral_id)
            .where(
                EntityKey.key.in_(list(keys)),
                Entity.kind == entity.kind,
                Entity.referral_id != entity.referral_id,
                Referral.workflow_started.is_(True),
            )
            .limit(MAX_FOUND)
        ):
            found.setdefault(other_id, set()).add(kind)
        joined = self.component(s, [entity.id])
        for other_id, kinds in sorted(found.items(), key=lambda kv: str(kv[0])):
            if other_id in joined:
                continue
            other = s.get(Entity, other_id)
            assert other is not None
            m = compare(kinds, doc, self.open(other))
            if not m.agreement:
                continue
            match = EntityMatch(
                id=uuid.uuid4(),
                a_entity_id=entity.id,
                b_entity_id=other.id,
                a_local_authority=entity.local_authority,
                b_local_authority=other.local_authority,
                kind=entity.kind,
                status=EntityMatchStatus.candidate.value,
                score=m.score,
                agreement=list(m.agreement),
                created_at=at,
                updated_at=at,
            )
            s.add(match)
            s.flush()
            self.record(
                s,
                match,
                EntityMatchAction.proposed,
                EntityMatchStatus.candidate,
                at,
                user_id=None,
                agency_id=None,
                role=None,
                reason="shares " + ", ".join(m.agreement),
            )

    # --- matches ---------------------------------------------------------------------------

    @staticmethod
    def record(
        s: Session,
        match: EntityMatch,
        action: EntityMatchAction,
        status: EntityMatchStatus,
        at: datetime,
        *,
        user_id: uuid.UUID | None,
        agency_id: uuid.UUID | None,
        role: str | None,
        reason: str,
    ) -> None:
        match.status = status.value
        match.updated_at = at
        s.add(
            EntityMatchEvent(
                match_id=match.id,
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
        s: Session, match_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[EntityMatchEvent]]:
        out: dict[uuid.UUID, list[EntityMatchEvent]] = {}
        if not match_ids:
            return out
        for e in s.scalars(
            select(EntityMatchEvent)
            .where(EntityMatchEvent.match_id.in_(list(match_ids)))
            .order_by(EntityMatchEvent.seq)
        ):
            out.setdefault(e.match_id, []).append(e)
        return out

    @staticmethod
    def queue(
        s: Session, authorities: Collection[str], after: uuid.UUID | None, limit: int
    ) -> list[EntityMatch]:
        """Candidates touching the authorities, oldest first by id page."""
        la = list(authorities)
        q = (
            select(EntityMatch)
            .where(
                EntityMatch.status == EntityMatchStatus.candidate.value,
                or_(EntityMatch.a_local_authority.in_(la), EntityMatch.b_local_authority.in_(la)),
            )
            .order_by(EntityMatch.id)
            .limit(limit)
        )
        if after is not None:
            q = q.where(EntityMatch.id > after)
        return list(s.scalars(q))

    @staticmethod
    def component(s: Session, start: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Every mention joined to ``start`` by confirmed matches: one entity."""
        seen = set(start)
        frontier = set(seen)
        while frontier and len(seen) < MAX_COMPONENT:
            ids = list(frontier)
            rows = s.execute(
                select(EntityMatch.a_entity_id, EntityMatch.b_entity_id).where(
                    EntityMatch.status == EntityMatchStatus.confirmed.value,
                    or_(EntityMatch.a_entity_id.in_(ids), EntityMatch.b_entity_id.in_(ids)),
                )
            ).all()
            new = {i for pair in rows for i in pair} - seen
            seen |= new
            frontier = new
        return seen

    @staticmethod
    def shared_to(s: Session, entity_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        out: dict[uuid.UUID, set[str]] = {}
        if not entity_ids:
            return out
        for eid, la in s.execute(
            select(EntityShare.entity_id, EntityShare.to_authority).where(
                EntityShare.entity_id.in_(list(entity_ids))
            )
        ):
            out.setdefault(eid, set()).add(la)
        return out

    # --- actions aimed at entities ---------------------------------------------------------

    @staticmethod
    def record_actions(s: Session, case_id: uuid.UUID, state: ReferralState) -> None:
        """The case's actions aimed at an entity, as its workflow last recorded them (the
        read model's copy, kept per entity so an entity's page need not read every case)."""
        s.execute(delete(EntityAction).where(EntityAction.case_id == case_id))
        aimed = [a for a in state.actions if a.entity_id is not None]
        if not aimed:
            return
        known = set(s.scalars(select(Entity.id).where(Entity.id.in_([a.entity_id for a in aimed]))))
        for a in aimed:
            if a.entity_id not in known:
                continue  # an id the referral API would have refused (the meeting path)
            s.add(
                EntityAction(
                    case_id=case_id,
                    action_id=a.action_id,
                    entity_id=a.entity_id,
                    local_authority=state.local_authority,
                    aim=a.aim.value,
                    target=a.target.value,
                    status="open" if a.open else "completed",
                    due_at=a.due_at,
                    created_at=a.created_at,
                    completed_at=a.completed_at,
                )
            )
