"""Input, result and vocabularies of a triage evaluation (activity ``triage.evaluate`` and
``POST /v1/evaluate`` on the triage service).

A triage input carries no personal data: no name, no date of birth, no free text. The caller
turns the date of birth into ``turns_18_month`` (the month the child turns 18) and the age
that follows from it (``mset_contract.types.age_in_month``): nothing finer, because inputs and
results are kept in workflow history, where a count of days beside ``as_of`` would give the
date of birth away. Indicators are codes with their catalogue area and kind. The evaluation
is a pure function of the input: it never reads the clock (``as_of`` is "now"), so the same
input gives the same result, and a workflow can ask again when one of its timers fires.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
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
    load_catalogue,
    versions_in_schema,
)
from mset_contract.referral import ResolvedIndicator
from mset_contract.types import (
    EARLIEST,
    LATEST,
    YEAR_PATTERN,
    Count,
    Day,
    Flag,
    Instant,
    LocalAuthorityCode,
    PartnerRef,
    month_of,
    today_uk,
)
from mset_contract.vocab import ExploitationType, RiskLevel, Role

RULESET_NAME_PREFIX = "mset_triage_v"
# The first of a month within the span, as the OpenAPI schema states ``turns_18_month``.
FIRST_OF_A_MONTH = YEAR_PATTERN + r"[0-9]{2}-01$"


def ruleset_name(version: str) -> str:
    """The durable-rules ruleset name of a rules version: a new version is a new ruleset."""
    return f"{RULESET_NAME_PREFIX}{version}"


class Urgency(StrEnum):
    """How fast the people told must act."""

    immediate = "immediate"  # now, whatever the hour
    same_day = "same_day"  # within the working day
    routine = "routine"  # at the next planned step (panel, supervision, review)


class EscalationKind(StrEnum):
    high_risk = "high_risk"
    child_protection = "child_protection"
    repeat_missing = "repeat_missing"
    rhi_not_offered = "rhi_not_offered"
    missing_in_other_authority = "missing_in_other_authority"
    action_due_soon = "action_due_soon"
    action_overdue = "action_overdue"
    reassessment_overdue = "reassessment_overdue"
    transition_to_adult_services = "transition_to_adult_services"
    judgement_review = "judgement_review"


class AgencyDesignation(StrEnum):
    """Which agency an escalation goes to, named by its part in the case (the notifications
    service resolves it to real people). ``agency_ref`` says which one, where it varies."""

    referring_agency = "referring_agency"  # the case holder's agency
    local_authority = "local_authority"  # the child's authority (its MSET partnership); ref: code
    other_authority = "other_authority"  # where the child was found; ref: authority code
    action_owner = "action_owner"  # the agency owning an action; ref: agency id
    rhi_provider = "rhi_provider"  # the Return Home Interview provider; ref: authority code


class PreMsetRecommendation(StrEnum):
    consider_at_pre_mset = "consider_at_pre_mset"
    advice_to_case_holder = "advice_to_case_holder"


class JudgementRelation(StrEnum):
    """The referrer's level compared with the suggested one."""

    agrees = "agrees"
    above = "above"
    below = "below"


# --- input -------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MissingEpisodeFact(_In):
    episode_ref: PartnerRef = Field(description="The missing episode's id (not a name).")
    reported_at: Instant
    returned_at: Instant | None = None
    rhi_offered_at: Instant | None = Field(
        default=None, description="When a Return Home Interview was offered, if it was."
    )
    located_in_authority: LocalAuthorityCode | None = Field(
        default=None, description="Authority where the child was found, if known."
    )

    @model_validator(mode="after")
    def _times_in_order(self) -> MissingEpisodeFact:
        if self.returned_at is not None and self.returned_at < self.reported_at:
            raise ValueError("returned_at is before reported_at")
        if self.rhi_offered_at is not None and self.returned_at is None:
            raise ValueError("rhi_offered_at is set but the child has not returned")
        return self


class ActionFact(_In):
    action_ref: PartnerRef = Field(description="The plan action's id.")
    owner_agency_id: UUID
    due_at: Instant
    completed: Flag = False


def triage_input_example() -> dict[str, Any]:
    """A realistic, valid evaluation request (OpenAPI example, demo, bench)."""
    return {
        "as_of": "2026-11-16T09:30:00+00:00",
        "catalogue_version": CURRENT_CATALOGUE_VERSION,
        "local_authority": "northshire",
        "age_years": 14,
        "turns_18_month": "2030-03-01",
        "referrer_level": "medium",
        "referrer_rationale_given": True,
        "indicators": [
            {"code": "MIS-01", "area": "missing", "kind": "moderate", "recency": "current"},
            {"code": "GIF-02", "area": "gifts_and_money", "kind": "moderate", "recency": "current"},
            {
                "code": "ADP-01",
                "area": "adults_and_peers",
                "kind": "moderate",
                "recency": "current",
            },
            {
                "code": "SUB-03",
                "area": "substance_misuse",
                "kind": "significant",
                "recency": "six_to_twelve_months",
            },
            {
                "code": "ADP-02",
                "area": "adults_and_peers",
                "kind": "significant",
                "recency": "current",
            },
        ],
        "exploitation_types": ["boyfriend_model", "party_commodity"],
        "missing_episodes": [
            {
                "episode_ref": "MFH-2026-1187",
                "reported_at": "2026-10-02T22:10:00+00:00",
                "returned_at": "2026-10-03T11:00:00+00:00",
                "rhi_offered_at": "2026-10-04T15:00:00+00:00",
            },
            {
                "episode_ref": "MFH-2026-1302",
                "reported_at": "2026-10-24T23:40:00+00:00",
                "returned_at": "2026-10-25T16:20:00+00:00",
                "rhi_offered_at": "2026-10-26T10:00:00+00:00",
                "located_in_authority": "eastmoor",
            },
            {
                "episode_ref": "MFH-2026-1390",
                "reported_at": "2026-11-13T21:05:00+00:00",
                "returned_at": "2026-11-14T08:30:00+00:00",
            },
        ],
        "actions": [],
        "last_assessed_at": "2026-11-16T09:00:00+00:00",
    }


class TriageInput(_In):
    """What the rules need to know about a case, and nothing more."""

    ruleset_version: str | None = Field(
        default=None,
        max_length=20,
        description="Rules version to evaluate with; the service's default when omitted. "
        "Older versions stay available so a past decision can be re-run for audit.",
    )
    as_of: Instant = Field(description="The moment of the evaluation (timezone-aware).")
    catalogue_version: str = Field(
        default=CURRENT_CATALOGUE_VERSION, max_length=20, json_schema_extra=versions_in_schema
    )
    local_authority: LocalAuthorityCode
    age_years: Count = Field(
        ge=0,
        le=25,
        description="Whole years of age for the rules: on the first of as_of's month, as if "
        "born on the last day of the birth month (never more than the real age).",
    )
    turns_18_month: Day = Field(
        description="The first day of the month in which the child turns 18 (never the day: "
        "it would give the date of birth away).",
        json_schema_extra={"pattern": FIRST_OF_A_MONTH},
    )
    referrer_level: RiskLevel = Field(description="The referrer's own judgement of the level.")
    referrer_rationale_given: Flag = Field(
        description="Whether the referrer recorded why (the text itself stays with the referral)."
    )
    indicators: list[ResolvedIndicator] = Field(default_factory=list, max_length=100)
    exploitation_types: list[ExploitationType] = Field(default_factory=list, max_length=20)
    missing_episodes: list[MissingEpisodeFact] = Field(default_factory=list, max_length=200)
    actions: list[ActionFact] = Field(default_factory=list, max_length=200)
    last_assessed_at: Instant | None = Field(
        default=None, description="When the Risk Assessment Tool was last completed."
    )

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [triage_input_example()]}
    )

    @model_validator(mode="before")
    @classmethod
    def _from_days_until_18(cls, data: Any) -> Any:
        # Inputs scheduled before the month replaced the day count carry days_until_18: an
        # activity task written then still runs. Only the month is kept.
        if isinstance(data, dict) and "days_until_18" in data and "turns_18_month" not in data:
            data = dict(data)
            days = data.pop("days_until_18")
            as_of = data.get("as_of")
            if isinstance(as_of, str):
                as_of = datetime.fromisoformat(as_of)
            if isinstance(as_of, datetime) and isinstance(days, int):
                data["turns_18_month"] = month_of(today_uk(as_of) + timedelta(days=days))
        return data

    @field_validator("turns_18_month")
    @classmethod
    def _first_of_a_month(cls, v: date) -> date:
        if v.day != 1:
            raise ValueError("must be the first day of the month (the day is never sent)")
        if not EARLIEST.date() <= v < LATEST.date():
            raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
        return v

    @field_validator("catalogue_version")
    @classmethod
    def _known_catalogue(cls, v: str) -> str:
        if v not in available_versions():
            raise ValueError(f"unknown catalogue version; known: {', '.join(available_versions())}")
        return v

    @field_validator("missing_episodes", "actions")
    @classmethod
    def _refs_unique(cls, v: list[Any]) -> list[Any]:
        # Escalations name their episode or action by ref: two with one ref would be one.
        seen: set[str] = set()
        for n, item in enumerate(v):
            ref = item.episode_ref if isinstance(item, MissingEpisodeFact) else item.action_ref
            if ref in seen:
                raise ValueError(f"item {n}: ref {ref!r} appears more than once")
            seen.add(ref)
        return v

    @field_validator("indicators")
    @classmethod
    def _indicators_match_catalogue(
        cls, v: list[ResolvedIndicator], info: ValidationInfo
    ) -> list[ResolvedIndicator]:
        # The referral service resolved area and kind from the catalogue; a mismatch here is a
        # caller's bug, and scoring it would silently give the wrong level.
        version = info.data.get("catalogue_version")
        if version is None:  # already reported as its own error
            return v
        catalogue = load_catalogue(version).by_code()
        seen: set[str] = set()
        for n, ind in enumerate(v):
            entry = catalogue.get(ind.code)
            if entry is None:
                raise ValueError(f"item {n}: {ind.code!r} is not in catalogue version {version}")
            if (entry.area, entry.kind) != (ind.area, ind.kind):
                raise ValueError(
                    f"item {n}: {ind.code} is a {entry.kind} indicator in area {entry.area}, "
                    f"not {ind.kind} in {ind.area}"
                )
            if ind.code in seen:
                raise ValueError(f"item {n}: {ind.code} appears more than once")
            seen.add(ind.code)
        return v


# --- result ------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FiredRule(_Out):
    """One rule that fired, with the reason in words a social worker can read."""

    rule: str = Field(description="Stable rule id, e.g. 'score.significant.current'.")
    reason: str
    subject: str | None = Field(
        default=None, description="What it fired on: an indicator code, area, episode or action."
    )
    points: int | None = None
    level: RiskLevel | None = None


class EscalationTarget(_Out):
    role: Role | None = Field(
        default=None, description="Staff role to tell; none means the agency's case holder."
    )
    agency: AgencyDesignation
    agency_ref: str | None = None


class Escalation(_Out):
    kind: EscalationKind
    urgency: Urgency
    notify: list[EscalationTarget]
    reason: str
    rule: str
    subject: str | None = Field(default=None, description="Episode or action ref, where one.")
    due_at: datetime | None = Field(
        default=None, description="When the missed or coming obligation is or was due."
    )
    deadline: datetime | None = Field(
        default=None, description="By when the people told must have acted."
    )


class Judgement(_Out):
    referrer_level: RiskLevel
    suggested_level: RiskLevel
    relation: JudgementRelation
    rationale_given: bool
    coordinator_review: bool = Field(
        description="A level below the suggestion without a rationale: the coordinator must look."
    )


class TriageTimers(_Out):
    """The time thresholds of the ruleset, so workflows size their timers from the same
    configuration the rules use. ``None`` where the ruleset has that escalation switched off."""

    rhi_deadline_hours: int | None
    repeat_missing_episodes: int | None
    repeat_missing_window_days: int | None
    action_reminder_hours_before_due: int | None
    action_overdue_grace_hours: int | None
    reassessment_days: int | None
    transition_warning_days: int | None
    high_risk_response_hours: int | None


class ScheduledCheck(_Out):
    """A future moment at which, if nothing else changes, a time-based escalation falls due:
    a workflow sets a timer for ``at`` and evaluates again with ``as_of = at``."""

    kind: EscalationKind
    at: datetime
    subject: str | None = None


class TriageResult(_Out):
    ruleset_version: str
    ruleset_name: str
    as_of: datetime
    score: int
    area_scores: dict[str, int] = Field(description="Score per indicator area (areas scored).")
    band_level: RiskLevel = Field(description="The level of the score's band alone.")
    suggested_level: RiskLevel = Field(description="The band after floors and overrides.")
    referrer_level: RiskLevel
    level: RiskLevel = Field(
        description="The level the case proceeds at: the suggestion, or the referrer's when "
        "higher. A lower judgement is kept beside it for the panel to decide."
    )
    judgement: Judgement
    recommendation: PreMsetRecommendation
    escalations: list[Escalation]
    fired: list[FiredRule]
    timers: TriageTimers
    next_checks: list[ScheduledCheck]


class RulesetInfo(_Out):
    """A rules version the triage service can evaluate with (``GET /v1/rulesets``)."""

    version: str
    name: str
    published: str
    description: str
    default: bool
    rules: int = Field(description="How many rules the version's ruleset has.")
    timers: TriageTimers
