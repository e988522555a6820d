"""The MSET Risk Assessment Tool as partner systems submit it, and the referral views.

Schema ladder (docs/architecture.md §3): ``ReferralCreate`` in, ``ReferralAccepted`` and
``ReferralPublic`` out.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mset_contract.catalogue import (
    CURRENT_CATALOGUE_VERSION,
    available_versions,
    codes_in_schema,
    load_catalogue,
    versions_in_schema,
)
from mset_contract.entities import PersonIdentifiers, PlaceIdentifiers
from mset_contract.identity import ChildName, NhsNumber, Postcode
from mset_contract.types import (
    UK,
    Day,
    Flag,
    FreeText,
    IndicatorCode,
    Instant,
    LocalAuthorityCode,
    PartnerRef,
    ShortText,
    age_on,
    not_in_future,
    today_uk,
)
from mset_contract.vocab import (
    ExploitationType,
    Gender,
    IndicatorArea,
    IndicatorKind,
    LawfulBasis,
    LegalStatus,
    Recency,
    RhiOutcome,
    RiskLevel,
    Stage,
)

TOOL_VERSION: Literal["1"] = "1"
ADULT_AGE = 18


class _Strict(BaseModel):
    # Unknown fields are an error: a partner's typo must not be silently dropped.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Referrer(_Strict):
    """The professional completing the tool. The agency comes from the API key."""

    role: ShortText = Field(description="Job title of the referrer, e.g. 'Social worker'.")
    team: ShortText | None = Field(default=None, description="Team or service name.")


class Child(_Strict):
    agency_child_ref: PartnerRef = Field(
        description="The referring agency's own identifier for the child (not a name)."
    )
    date_of_birth: Day
    gender: Gender
    ethnicity: ShortText | None = Field(default=None, description="Census ethnicity category.")
    first_language: ShortText | None = None
    disability_or_sen: Flag = Field(description="Disability or special educational needs.")
    legal_status: LegalStatus
    local_authority: LocalAuthorityCode = Field(description="Authority responsible for the child.")
    area_of_residence: ShortText = Field(description="Ward or neighbourhood, not an address.")
    known_to_services: Flag
    # The child's identity (ADR 0028): optional, so partner systems written before it keep
    # working; send it when known, so the same child referred by other agencies is found.
    # Held encrypted by the referral service, never stored with the rest of the tool.
    name: ChildName | None = Field(
        default=None, description="The child's name; optional, encrypted at rest."
    )
    nhs_number: NhsNumber | None = Field(
        default=None,
        description="The child's NHS number when known (10 digits, modulus-11 check digit); "
        "two tools with the same NHS number are linked as the same child at once.",
    )
    postcode: Postcode | None = Field(
        default=None, description="The child's home postcode; optional, encrypted at rest."
    )

    @field_validator("date_of_birth")
    @classmethod
    def _a_child_born_already(cls, v: date, info: ValidationInfo) -> date:
        return cls.check_child_dob(v, info)

    @staticmethod
    def check_child_dob(v: date, info: ValidationInfo) -> date:
        if info.context and info.context.get("stored"):
            return v  # checked when accepted; re-reading a stored tool must not re-judge age
        if info.context and info.context.get("historic"):
            # A historic import's row: the age is judged on the day of the referral or
            # report, which the importer knows (services/referral/historic.py).
            return v
        today = today_uk()
        if v > today:
            raise ValueError("date of birth is in the future")
        if age_on(v, today) >= ADULT_AGE:
            raise ValueError(
                f"the young person is {age_on(v, today)}: MSET is for children under 18 "
                "(refer adults to adult safeguarding)"
            )
        return v


class Consent(_Strict):
    young_person_aware: Flag = Field(description="Does the young person know of this referral?")
    parent_carer_aware: Flag = Field(description="Does a parent or carer know of this referral?")
    lawful_basis: LawfulBasis = Field(description="UK GDPR basis on which this is shared.")


class IndicatorReport(_Strict):
    code: IndicatorCode = Field(
        description="Code from the indicator catalogue, e.g. 'SXH-03'.",
        json_schema_extra=codes_in_schema,
    )
    recency: Recency

    @field_validator("code")
    @classmethod
    def _code_in_some_catalogue(cls, v: str) -> str:
        # Checked here, per item, so an unknown code is reported beside every other wrong
        # field; membership of the exact catalogue version is checked on the whole tool.
        if not any(load_catalogue(ver).get(v) for ver in available_versions()):
            raise ValueError(f"unknown indicator code {v!r}; see GET /v1/catalogue")
        return v


class PersonOfConcern(_Strict):
    relationship: ShortText = Field(description="e.g. 'older boyfriend', 'associate'.")
    description: FreeText
    known_to_police: Flag = False
    # Who the person is (ADR 0030): optional; when given, the referral service holds it
    # sealed as an entity linked to the child, and never stores it with the rest of the tool.
    identifiers: PersonIdentifiers | None = Field(
        default=None,
        description="Names, vehicles, phone numbers and handles, when known: held encrypted, "
        "matched against other referrals' persons of concern.",
    )


class LocationOfConcern(_Strict):
    kind: Literal["hotspot", "address", "online", "transport", "other", "home", "school"]
    description: FreeText
    place: PlaceIdentifiers | None = Field(
        default=None,
        description="The place's name, address, postcode or online space, when known: held "
        "encrypted, matched against other referrals' locations.",
    )


class ReferrerJudgement(_Strict):
    level: RiskLevel
    rationale: FreeText


class ReferralCreate(_Strict):
    """A completed MSET Risk Assessment Tool."""

    tool_version: Literal["1"] = TOOL_VERSION
    catalogue_version: str = Field(
        default=CURRENT_CATALOGUE_VERSION, max_length=16, json_schema_extra=versions_in_schema
    )
    partner_reference: PartnerRef = Field(
        description="The partner system's reference for this submission; resubmitting the same "
        "reference returns the first answer."
    )
    referrer: Referrer
    child: Child
    consent: Consent
    indicators: list[IndicatorReport] = Field(min_length=1, max_length=100)
    exploitation_types: list[ExploitationType] = Field(default_factory=list, max_length=20)
    persons_of_concern: list[PersonOfConcern] = Field(default_factory=list, max_length=50)
    locations: list[LocationOfConcern] = Field(default_factory=list, max_length=50)
    referrer_judgement: ReferrerJudgement

    @field_validator("catalogue_version")
    @classmethod
    def _known_catalogue(cls, v: str) -> str:
        if v not in available_versions():
            raise ValueError(f"unknown catalogue version; known: {', '.join(available_versions())}")
        return v

    @model_validator(mode="after")
    def _indicators_in_catalogue(self) -> ReferralCreate:
        catalogue = load_catalogue(self.catalogue_version)
        unknown = [i.code for i in self.indicators if catalogue.get(i.code) is None]
        if unknown:
            raise ValueError(
                f"indicator codes not in catalogue version {self.catalogue_version}: "
                + ", ".join(unknown)
            )
        codes = [i.code for i in self.indicators]
        if len(set(codes)) != len(codes):
            raise ValueError("each indicator code may appear once")
        return self

    def resolved_indicators(self) -> list[ResolvedIndicator]:
        catalogue = load_catalogue(self.catalogue_version)
        out = []
        for i in self.indicators:
            entry = catalogue.get(i.code)
            assert entry is not None  # checked by the validator
            out.append(
                ResolvedIndicator(code=i.code, area=entry.area, kind=entry.kind, recency=i.recency)
            )
        return out


class ResolvedIndicator(BaseModel):
    """An indicator with its area and kind taken from the catalogue. Carries no free text."""

    model_config = ConfigDict(frozen=True)

    code: str
    area: IndicatorArea
    kind: IndicatorKind
    recency: Recency


class ReferralAccepted(BaseModel):
    referral_id: UUID
    case_id: UUID = Field(
        description="The case the tool belongs to: the referral itself for a new case or a "
        "re-referral, or the child's open case for a reassessment."
    )
    kind: Literal["new_case", "reassessment", "re_referral"]
    workflow_id: str
    stage: Stage
    submitted_at: datetime
    duplicate: bool = Field(
        description="True when this answer repeats an earlier accepted submission."
    )


class ReferralPublic(BaseModel):
    referral_id: UUID
    partner_reference: str
    stage: Stage
    local_authority: str
    submitted_at: datetime
    updated_at: datetime
    referrer_level: RiskLevel
    suggested_level: RiskLevel | None = None
    next_deadline: datetime | None = None


def referral_example(today: date | None = None) -> dict[str, Any]:
    """A realistic, valid submission. Used in the OpenAPI docs and by the demo."""
    today = today or today_uk()
    dob = date(today.year - 14, 3, 14)
    return {
        "tool_version": TOOL_VERSION,
        "catalogue_version": CURRENT_CATALOGUE_VERSION,
        "partner_reference": "CSC-2026-004217",
        "referrer": {"role": "Social worker", "team": "Northshire Adolescent Safeguarding"},
        "child": {
            "agency_child_ref": "NS-CHILD-88213",
            "date_of_birth": dob.isoformat(),
            "gender": "female",
            "ethnicity": "White British",
            "first_language": "English",
            "disability_or_sen": False,
            "legal_status": "looked_after_s20",
            "local_authority": "northshire",
            "area_of_residence": "Riverside ward",
            "known_to_services": True,
        },
        "consent": {
            "young_person_aware": True,
            "parent_carer_aware": False,
            "lawful_basis": "public_task",
        },
        # Scored by the shipped rules (v1): five moderate indicators, current (+1 each), and
        # a significant one from 6-12 months ago (+1): 6, the medium band.
        "indicators": [
            {"code": "MIS-01", "recency": "current"},
            {"code": "GIF-02", "recency": "current"},
            {"code": "ADP-01", "recency": "current"},
            {"code": "PRE-02", "recency": "current"},
            {"code": "EDU-02", "recency": "current"},
            {"code": "SUB-03", "recency": "six_to_twelve_months"},
        ],
        "exploitation_types": ["boyfriend_model", "party_commodity"],
        "persons_of_concern": [
            {
                "relationship": "older boyfriend",
                "description": "Male, early twenties, drives a silver hatchback, collects her "
                "from the children's home late at night.",
                "known_to_police": True,
            }
        ],
        "locations": [
            {"kind": "hotspot", "description": "Takeaway on the High Street, after 10pm."}
        ],
        "referrer_judgement": {
            "level": "medium",
            "rationale": "Three missing episodes this term, new phone and clothes she cannot "
            "explain, and contact with an older male who supplies alcohol.",
        },
    }


def referral_examples(today: date | None = None) -> dict[str, dict[str, Any]]:
    """The examples of ``POST /v1/referrals`` in the API docs, by name. Each name says the
    level the shipped rules suggest for it (a test triages every one); the first is
    ``referral_example()``."""
    medium = referral_example(today)
    low = deepcopy(medium)
    low["partner_reference"] = "CSC-2026-004301"
    low["indicators"] = [
        {"code": "MIS-01", "recency": "current"},
        {"code": "PRE-02", "recency": "six_to_twelve_months"},
    ]
    low["exploitation_types"] = []
    low["persons_of_concern"] = []
    low["locations"] = []
    low["referrer_judgement"] = {
        "level": "low",
        "rationale": "One missing episode, back the same night; secretive about a new friend.",
    }
    high = deepcopy(medium)
    high["partner_reference"] = "CSC-2026-004388"
    high["indicators"] = [*medium["indicators"], {"code": "SXH-03", "recency": "current"}]
    # The child's identity is optional (older partner systems do not send it); this example
    # shows it. The NHS number is from the range the NHS reserves for testing (999...).
    high["child"]["name"] = {
        "given": "Jessica",
        "family": "Marsh",
        "known_as": "Jess",
        "aliases": ["Jessie Marsh-Cole"],
    }
    high["child"]["nhs_number"] = "999 000 0018"
    high["child"]["postcode"] = "NT1 2AB"
    high["referrer_judgement"] = {
        "level": "high",
        "rationale": "She has disclosed sexual abuse by the older male this week.",
    }
    return {"medium risk": medium, "low risk": low, "high risk": high}


class MissingChild(_Strict):
    agency_child_ref: PartnerRef = Field(
        description="The reporting agency's own identifier for the child (not a name)."
    )
    date_of_birth: Day
    local_authority: LocalAuthorityCode = Field(description="Authority responsible for the child.")

    @field_validator("date_of_birth")
    @classmethod
    def _a_child(cls, v: date, info: ValidationInfo) -> date:
        return Child.check_child_dob(v, info)


class MissingReportCreate(_Strict):
    """Police report a child missing."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "partner_reference": "MFH-2026-1390",
                    "child": {
                        "agency_child_ref": "NP-PERSON-55120",
                        "date_of_birth": "2012-03-14",
                        "local_authority": "northshire",
                    },
                    "case_referral_id": None,
                    "reported_at": "2026-11-13T21:05:00+00:00",
                    "circumstances": "Left the children's home after an argument; phone off.",
                }
            ]
        },
    )

    partner_reference: PartnerRef = Field(description="The police incident or MFH reference.")
    child: MissingChild
    case_referral_id: UUID | None = Field(
        default=None, description="The child's MSET referral id, when the reporter knows it."
    )
    reported_at: Instant = Field(
        description="When the child was reported missing: not before the child's date of "
        "birth, not in the future."
    )
    circumstances: FreeText | None = Field(
        default=None, description="Kept by the referral service only; never published."
    )

    @field_validator("reported_at")
    @classmethod
    def _not_in_future(cls, v: datetime, info: ValidationInfo) -> datetime:
        return not_in_future(v, "reported_at", info)

    @model_validator(mode="after")
    def _after_birth(self) -> MissingReportCreate:
        if self.reported_at.astimezone(UK).date() < self.child.date_of_birth:
            raise ValueError(
                "reported_at is before the child's date of birth: check reported_at and "
                "child.date_of_birth"
            )
        return self


class ReturnCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"returned_at": "2026-11-14T08:30:00+00:00", "located_in_authority": "eastmoor"}
            ]
        },
    )

    returned_at: Instant = Field(description="When the child was found: not in the future.")
    located_in_authority: LocalAuthorityCode | None = Field(
        default=None, description="Where the child was found, if in another authority."
    )

    @field_validator("returned_at")
    @classmethod
    def _not_in_future(cls, v: datetime, info: ValidationInfo) -> datetime:
        return not_in_future(v, "returned_at", info)


class RhiOutcomeCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"outcome": "completed", "offered_at": "2026-11-15T10:00:00+00:00"}]
        },
    )

    outcome: RhiOutcome
    offered_at: Instant | None = Field(
        default=None, description="When the interview was offered: not in the future."
    )
    reason_not_offered: FreeText | None = None

    @field_validator("offered_at")
    @classmethod
    def _not_in_future(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        return None if v is None else not_in_future(v, "offered_at", info)


class MissingEpisodeAccepted(BaseModel):
    episode_id: UUID
    workflow_id: str
    case_referral_id: UUID | None
    duplicate: bool
