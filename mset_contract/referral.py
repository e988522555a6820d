"""The MSET Risk Assessment Tool as partner systems submit it, and the referral views.

Schema ladder (CONVENTIONS.md): ``ReferralCreate`` in, ``ReferralAccepted`` and
``ReferralPublic`` out.
"""

from __future__ import annotations

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

from mset_contract.catalogue import CURRENT_CATALOGUE_VERSION, available_versions, load_catalogue
from mset_contract.types import (
    FreeText,
    IndicatorCode,
    LocalAuthorityCode,
    PartnerRef,
    ShortText,
    age_on,
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
    date_of_birth: date
    gender: Gender
    ethnicity: ShortText | None = Field(default=None, description="Census ethnicity category.")
    first_language: ShortText | None = None
    disability_or_sen: bool = Field(description="Disability or special educational needs.")
    legal_status: LegalStatus
    local_authority: LocalAuthorityCode = Field(description="Authority responsible for the child.")
    area_of_residence: ShortText = Field(description="Ward or neighbourhood, not an address.")
    known_to_services: bool

    @field_validator("date_of_birth")
    @classmethod
    def _a_child_born_already(cls, v: date, info: ValidationInfo) -> date:
        if info.context and info.context.get("stored"):
            return v  # checked when accepted; re-reading a stored tool must not re-judge age
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
    young_person_aware: bool = Field(description="Does the young person know of this referral?")
    parent_carer_aware: bool = Field(description="Does a parent or carer know of this referral?")
    lawful_basis: LawfulBasis = Field(description="UK GDPR basis on which this is shared.")


class IndicatorReport(_Strict):
    code: IndicatorCode = Field(description="Code from the indicator catalogue, e.g. 'SXH-03'.")
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
    known_to_police: bool = False


class LocationOfConcern(_Strict):
    kind: Literal["hotspot", "address", "online", "transport", "other"]
    description: FreeText


class ReferrerJudgement(_Strict):
    level: RiskLevel
    rationale: FreeText


class ReferralCreate(_Strict):
    """A completed MSET Risk Assessment Tool."""

    tool_version: Literal["1"] = TOOL_VERSION
    catalogue_version: str = Field(default=CURRENT_CATALOGUE_VERSION)
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
        "indicators": [
            {"code": "MIS-01", "recency": "current"},
            {"code": "GIF-02", "recency": "current"},
            {"code": "ADP-01", "recency": "current"},
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
