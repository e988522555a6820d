"""A case's panel papers (``GET /v1/referrals/{id}/papers`` on the referral API): who the
child is, why they were referred and what has happened since, read from the referral
service (which holds the tool) and the case, as the reader's role may see them.

None of this enters workflow history or events: the referral service reads it from its own
tables and the case's state when a panel member asks, and records each read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from mset_contract.entities import ChildEntities
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    ExploitationType,
    Gender,
    IndicatorArea,
    IndicatorKind,
    LegalStatus,
    PreMsetOutcome,
    Recency,
    RhiOutcome,
    RiskLevel,
    Stage,
)

_NO_TOOL = "None for a case opened from missing-person reports, which have no tool."


class PapersWho(BaseModel):
    agency_child_ref: str = Field(description="The referring agency's own reference.")
    age_years: int = Field(description="Age today (the date of birth stays with the tool).")
    gender: Gender | None = Field(description=_NO_TOOL)
    legal_status: LegalStatus | None = Field(description=_NO_TOOL)
    local_authority: str
    area_of_residence: str | None = Field(description=_NO_TOOL)
    disability_or_sen: bool | None = Field(description=_NO_TOOL)
    known_to_services: bool | None = Field(description=_NO_TOOL)
    referring_agency: str
    referring_agency_type: AgencyType
    referrer_role: str | None = Field(description=_NO_TOOL)
    links: str | None = Field(
        default=None,
        description="How the child is linked to other children through people and places of "
        "concern, in words and counts only ('Linked to three other children through one "
        "location.'); None when the child's tools name none. The agenda shows it.",
    )


class CaseWho(BaseModel):
    """Who one case is about, for the meeting service's agendas and minutes
    (``GET /v1/cases/who`` on the referral API, for the MSET services' token)."""

    case_id: UUID = Field(description="The case (its first referral's id).")
    referral_id: UUID = Field(description="The referral whose tool says this (the latest).")
    who: PapersWho


class CaseWhoPage(BaseModel):
    cases: list[CaseWho] = Field(description="The cases asked for that exist, in no order.")


class PaperIndicator(BaseModel):
    code: str
    label: str
    kind: IndicatorKind
    recency: Recency


class PaperArea(BaseModel):
    area: IndicatorArea
    indicators: list[PaperIndicator]


class PaperRule(BaseModel):
    """A rule that fired at the latest triage, with its reason in words."""

    rule: str
    reason: str | None = Field(
        default=None, description="None when the rules service could not be asked just now."
    )
    subject: str | None = None
    points: int | None = None
    level: RiskLevel | None = None


class PaperPerson(BaseModel):
    """A person of concern as the tool describes them; who they are is an entity (links)."""

    relationship: str
    description: str
    known_to_police: bool


class PaperLocation(BaseModel):
    """A location as the tool describes it; where it is is an entity (links)."""

    kind: str
    description: str


class PapersWhy(BaseModel):
    indicators: list[PaperArea] = Field(description="The tool's indicators, by area.")
    exploitation_types: list[ExploitationType]
    persons_of_concern: list[PaperPerson]
    locations: list[PaperLocation]
    referrer_level: RiskLevel
    referrer_rationale: str | None = Field(
        default=None, description="The referrer's own reasons (withheld from panel members)."
    )
    suggested_level: RiskLevel | None = None
    score: int | None = None
    ruleset_version: str | None = None
    triaged_at: datetime | None = None
    rules: list[PaperRule] = Field(default_factory=list)


class PaperDecision(BaseModel):
    kind: Literal["pre_mset", "mset_review"]
    decision_id: str
    decided_at: datetime
    meeting_id: UUID | None = None
    outcome: PreMsetOutcome | None = None
    level: RiskLevel
    rationale: str | None = Field(default=None, description="Withheld from panel members.")


class PaperProgress(BaseModel):
    at: datetime
    completed: bool
    note: str | None = Field(default=None, description="Withheld from panel members.")


class PaperAction(BaseModel):
    action_id: str
    owner_agency_id: UUID
    owner_agency: str | None = Field(default=None, description="As the directory names it.")
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    description: str
    status: Literal["open", "completed"]
    completed_at: datetime | None = None
    progress: list[PaperProgress] = Field(default_factory=list)


class PaperEpisode(BaseModel):
    episode_id: UUID
    reported_at: datetime
    returned_at: datetime | None = None
    rhi_offered_at: datetime | None = None
    rhi_outcome: RhiOutcome | None = None
    located_in_authority: str | None = None


class PapersHistory(BaseModel):
    decisions: list[PaperDecision] = Field(default_factory=list)
    actions: list[PaperAction] = Field(default_factory=list)
    missing_episodes: list[PaperEpisode] = Field(default_factory=list)
    previous_case_id: UUID | None = Field(
        default=None, description="The closed case this one follows (its own papers)."
    )


class PanelPapers(BaseModel):
    referral_id: UUID
    case_id: UUID
    stage: Stage
    level: RiskLevel | None = Field(default=None, description="The level a panel agreed.")
    as_of: datetime = Field(
        description="When the case's workflow recorded the state these papers show (stage, "
        "level, history): they are read from the referral service's read model, never by "
        "asking the workflow."
    )
    sequence: int = Field(
        ge=0, description="The case's record number: a higher one is a later state."
    )
    live: bool = Field(
        default=False,
        deprecated=True,
        description="Always false: papers show the state the case last recorded (`as_of`).",
    )
    who: PapersWho
    why: PapersWhy
    history: PapersHistory
    withheld: list[str] = Field(
        default_factory=list, description="What your role is not shown (field paths)."
    )
    links: ChildEntities | None = Field(
        default=None,
        description="The people and places of concern the case's tools name, and the other "
        "children linked through them ('Linked to three other children through one "
        "location.'): by case where you may see them, counted where not shared.",
    )
