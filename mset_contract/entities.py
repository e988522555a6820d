"""People and places of concern as entities in their own right (issue 15 items 3-5, ADR 0030).

A Risk Assessment Tool may say who a person of concern is (names, vehicles, phone numbers,
social-media handles) and where a location is (a place's name, an address, a postcode, an
online space). The referral service holds each such mention as an entity, sealed at rest like
the child's identity (ADR 0028), linked to the child whose tool mentions it. Matching
suggests that two mentions are the same person or place; a coordinator confirms or rejects,
and the confirmed mentions are one entity: the children, cases, plan actions and authorities
it touches. None of it is ever in an event, workflow history, log, metric or search
attribute: only an entity's random id (an action aimed at it carries that).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from mset_contract.identity import Postcode
from mset_contract.paging import Page
from mset_contract.types import FreeText, LocalAuthorityCode, ShortText
from mset_contract.vocab import ActionAim, ActionTarget


class EntityKind(StrEnum):
    person = "person"
    location = "location"


class LocationKind(StrEnum):
    home = "home"
    hotspot = "hotspot"
    school = "school"
    online = "online"
    other = "other"  # an address, transport or other place the tool did not classify


class EntityMatchStatus(StrEnum):
    candidate = "candidate"
    confirmed = "confirmed"
    rejected = "rejected"
    undone = "undone"


class EntityMatchAction(StrEnum):
    proposed = "proposed"  # by the system, when a mention arrives
    confirmed = "confirmed"
    rejected = "rejected"
    undone = "undone"


# A phone number and a vehicle registration as sent: the schema's pattern is the rule itself
# (digits or letters, with the separators people write), so a value the schema admits is one
# the API accepts, and the reverse. ASCII separators only, and no surrounding white space.
PHONE_MAX = 24
PHONE_PATTERN = r"^[ ()+.-]*(?:[0-9][ ()+.-]*){7,15}$"
VEHICLE_MAX = 16
VEHICLE_PATTERN = r"^[ -]*(?:[A-Za-z0-9][ -]*){2,10}$"


def _phone(v: str) -> str:
    if len(v) > PHONE_MAX or re.fullmatch(PHONE_PATTERN, v) is None:
        raise ValueError("a phone number is 7 to 15 digits (spaces, +, -, brackets allowed)")
    return v


def _vehicle(v: str) -> str:
    if len(v) > VEHICLE_MAX or re.fullmatch(VEHICLE_PATTERN, v) is None:
        raise ValueError("a vehicle registration is 2 to 10 letters and digits")
    return v


Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=False),  # not the model's: the pattern says it
    AfterValidator(_phone),
    WithJsonSchema({"type": "string", "maxLength": PHONE_MAX, "pattern": PHONE_PATTERN}),
]
VehicleRegistration = Annotated[
    str,
    StringConstraints(strip_whitespace=False),
    AfterValidator(_vehicle),
    WithJsonSchema({"type": "string", "maxLength": VEHICLE_MAX, "pattern": VEHICLE_PATTERN}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PersonIdentifiers(_Strict):
    """Who a person of concern is, as far as the referrer knows: every field optional, sealed
    at rest, matched against other tools' mentions by blind index."""

    names: list[ShortText] = Field(
        default_factory=list, max_length=10, description="Names and aliases, e.g. 'Big Mo'."
    )
    vehicles: list[VehicleRegistration] = Field(default_factory=list, max_length=10)
    phones: list[Phone] = Field(default_factory=list, max_length=10)
    handles: list[ShortText] = Field(
        default_factory=list, max_length=10, description="Social-media handles, e.g. '@mo_x'."
    )

    def any(self) -> bool:
        return bool(self.names or self.vehicles or self.phones or self.handles)


class PlaceIdentifiers(_Strict):
    """Where a location of concern is: every field optional, sealed at rest."""

    name: ShortText | None = Field(default=None, description="e.g. 'Kebab King'.")
    address: FreeText | None = Field(default=None, max_length=300)
    postcode: Postcode | None = None
    online: ShortText | None = Field(
        default=None, description="An online space: a group, server or handle."
    )

    def any(self) -> bool:
        return any((self.name, self.address, self.postcode, self.online))


# --- views -------------------------------------------------------------------------------


class EntityDetail(BaseModel):
    """What is known of one mention (shown only to those who may see it)."""

    names: list[str] = Field(default_factory=list)
    description: str | None = None
    vehicles: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    handles: list[str] = Field(default_factory=list)
    known_to_police: bool | None = None
    place_name: str | None = None
    address: str | None = None
    postcode: str | None = None
    online: str | None = None


class EntityMention(BaseModel):
    """One tool's mention of the entity. ``visible`` false: a mention in an authority that
    has not shared it with one you serve; only that it exists (its authority) is shown."""

    entity_id: UUID | None = None
    visible: bool
    local_authority: str
    mentioned_at: datetime | None = None
    referral_id: UUID | None = None
    case_id: UUID | None = None
    detail: EntityDetail | None = None


class EntityActionView(BaseModel):
    """A plan action aimed at the entity (an MSET review's action naming its id)."""

    action_id: str
    case_id: UUID
    local_authority: str
    aim: ActionAim
    target: ActionTarget
    status: Literal["open", "completed"]
    due_at: datetime
    created_at: datetime


class TimelineEntry(BaseModel):
    at: datetime
    what: Literal["mentioned", "action_agreed", "action_completed", "confirmed_same", "shared"]
    local_authority: str
    case_id: UUID | None = Field(default=None, description="None where it is not shared.")


class EntityView(BaseModel):
    """An entity: the mentions confirmed to be one person or place, and what they touch."""

    entity_id: UUID
    kind: EntityKind
    location_kind: LocationKind | None = None
    mentions: list[EntityMention]
    children: int = Field(description="Children (cases) linked, whatever their authority.")
    authorities: list[str] = Field(description="Every authority whose children it touches.")
    cases: list[UUID] = Field(description="The linked cases you may see.")
    actions: list[EntityActionView] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)


class EntityMatchSide(BaseModel):
    entity_id: UUID
    local_authority: str
    visible: bool
    detail: EntityDetail | None = None


class EntityMatchEventPublic(BaseModel):
    action: EntityMatchAction
    at: datetime
    by_user_id: UUID | None = None
    by_agency_id: UUID | None = None
    reason: str


class EntityMatchPublic(BaseModel):
    match_id: UUID
    kind: EntityKind
    status: EntityMatchStatus
    score: float
    agreement: list[str] = Field(
        description="What the two mentions share: phone, handle, vehicle, postcode, address, "
        "name (exact) or name_similar. Never the values."
    )
    a: EntityMatchSide
    b: EntityMatchSide
    events: list[EntityMatchEventPublic] = Field(default_factory=list)


class EntityMatchPage(Page[EntityMatchPublic]):
    """Suggested same-person or same-place matches touching the authorities you serve."""


class EntityMatchDecision(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Same mobile number and same car."}]},
    )

    reason: FreeText = Field(max_length=500, description="Why: kept with the match.")


class EntityShareRequest(_Strict):
    """Share your authorities' mentions of an entity with another authority (its
    coordinators then see their detail), with the reason, recorded in the ledger."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to_authority": "eastmoor", "reason": "Joint disruption plan for the takeaway."}
            ]
        },
    )

    to_authority: LocalAuthorityCode
    # The ledger entry carries the reason beside the recipient (300 characters in all).
    reason: FreeText = Field(max_length=200, description="Why: kept in the ledger.")


class ActionAimedAt(_Strict):
    """One action of a review, as far as whom it is aimed at: the entity it names (if any)
    and its target."""

    entity_id: UUID | None = None
    target: ActionTarget


class ActionTargetsCheck(_Strict):
    """A review's actions, in the review's order, checked before the review is sent: each
    entity named is one the caller may see, of the kind its target aims at (a perpetrator is
    a person, a location a place). The meeting API asks this, as the chair, before it sends
    a decision recorded in a meeting; errors name ``actions.<n>.entity_id`` as the review's
    own fields are named."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "actions": [
                        {"target": "victim"},
                        {
                            "entity_id": "7d3f0a52-9c1b-4e8a-b6f2-0c5d9e1a2b34",
                            "target": "location",
                        },
                    ]
                }
            ]
        },
    )

    actions: list[ActionAimedAt] = Field(min_length=1, max_length=50)


class EntityShared(BaseModel):
    entity_id: UUID
    from_authorities: list[str]
    to_authority: str
    mentions_shared: int


class ChildEntity(BaseModel):
    """An entity linked to the child, and the other children linked through it."""

    entity_id: UUID
    kind: EntityKind
    location_kind: LocationKind | None = None
    detail: EntityDetail | None = None
    other_children: int = Field(description="Other children linked through it, anywhere.")
    other_children_visible: list[UUID] = Field(
        default_factory=list, description="Those of their cases you may see."
    )
    other_children_by_authority: dict[str, int] = Field(
        default_factory=dict,
        description="Counts only, for authorities that have not shared with you.",
    )


class ChildEntities(BaseModel):
    referral_id: UUID
    case_id: UUID
    entities: list[ChildEntity]
    summary: str = Field(description="In words, for the panel papers.")


class Hotspot(BaseModel):
    entity_id: UUID
    location_kind: LocationKind
    children: int
    authorities: list[str]
    place_name: str | None = Field(default=None, description="When you may see it.")


class HotspotList(BaseModel):
    since: datetime
    until: datetime
    items: list[Hotspot]


class GraphNode(BaseModel):
    id: str
    kind: Literal["child", "person", "location", "hidden"]
    label: str
    local_authority: str | None = None


class GraphEdge(BaseModel):
    source: str
    target: str
    kind: Literal["mentions", "action"]


class EntityGraph(BaseModel):
    """Nodes (children's cases, people, places) and edges (a tool's mention, an action)."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


__all__ = [
    "ChildEntities",
    "ChildEntity",
    "EntityActionView",
    "EntityDetail",
    "EntityGraph",
    "EntityKind",
    "EntityMatchAction",
    "EntityMatchDecision",
    "EntityMatchPage",
    "EntityMatchPublic",
    "EntityMatchSide",
    "EntityMatchStatus",
    "EntityMention",
    "EntityShareRequest",
    "EntityShared",
    "EntityView",
    "GraphEdge",
    "GraphNode",
    "Hotspot",
    "HotspotList",
    "LocationKind",
    "PersonIdentifiers",
    "PlaceIdentifiers",
    "TimelineEntry",
]
