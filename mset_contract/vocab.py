"""Closed vocabularies. Each lives here once; services and workflows import them."""

from enum import StrEnum


class RiskLevel(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


_RISK_RANK = {RiskLevel.low: 0, RiskLevel.medium: 1, RiskLevel.high: 2}


class Stage(StrEnum):
    """Where a referral is in the MSET process (docs/architecture.md §1)."""

    submitted = "submitted"
    triaged = "triaged"
    awaiting_pre_mset = "awaiting_pre_mset"
    more_information_requested = "more_information_requested"
    closed_advice_given = "closed_advice_given"
    awaiting_mset = "awaiting_mset"
    active_plan = "active_plan"
    exited = "exited"


class ExitReason(StrEnum):
    sufficiently_safe = "sufficiently_safe"
    nothing_more_mset_can_offer = "nothing_more_mset_can_offer"
    moved_out_of_area = "moved_out_of_area"
    transition_to_adult_services = "transition_to_adult_services"
    other = "other"


class ActionDisposition(StrEnum):
    """What becomes of a plan action still open when the case exits MSET."""

    closed = "closed"  # no longer needed
    carried = "carried"  # the case holder carries it on outside MSET


class AgencyType(StrEnum):
    childrens_social_care = "childrens_social_care"
    police = "police"
    health = "health"
    education = "education"
    voluntary_provider = "voluntary_provider"
    youth_justice = "youth_justice"
    housing = "housing"
    local_authority = "local_authority"
    other = "other"


class Role(StrEnum):
    """Staff roles. Partner systems are not users: they hold an agency API key."""

    coordinator = "coordinator"
    chair = "chair"
    panel_member = "panel_member"
    manager = "manager"
    provider = "provider"
    analyst = "analyst"
    admin = "admin"
    # The Data Protection Officer: reads the information-sharing ledger and answers subject
    # access requests; sees no case through the case routes.
    dpo = "dpo"
    # Operations: keeps the platform running; reads counts (open cases, deadlines, breaches,
    # dead letters, failed workflows) and never a case's record.
    ops = "ops"


class LegalStatus(StrEnum):
    none = "none"
    child_in_need_s17 = "child_in_need_s17"
    child_protection_plan = "child_protection_plan"
    looked_after_s20 = "looked_after_s20"
    looked_after_s31 = "looked_after_s31"
    looked_after_s38 = "looked_after_s38"
    care_leaver = "care_leaver"


class Gender(StrEnum):
    female = "female"
    male = "male"
    non_binary = "non_binary"
    other = "other"
    not_known = "not_known"


class IndicatorKind(StrEnum):
    """How strongly an indicator points to exploitation (docs/architecture.md §8)."""

    vulnerability = "vulnerability"
    moderate = "moderate"
    significant = "significant"


class Recency(StrEnum):
    """When the indicator was last seen. 'current' means within the last 6 months."""

    current = "current"
    six_to_twelve_months = "six_to_twelve_months"
    over_twelve_months = "over_twelve_months"


class IndicatorArea(StrEnum):
    """The sixteen indicator areas used by tools in England (docs/architecture.md §8)."""

    missing = "missing"
    presentation = "presentation"
    education = "education"
    substance_misuse = "substance_misuse"
    sexual_health = "sexual_health"
    emotional_health = "emotional_health"
    family = "family"
    accommodation = "accommodation"
    adults_and_peers = "adults_and_peers"
    gifts_and_money = "gifts_and_money"
    online = "online"
    coercion_and_gangs = "coercion_and_gangs"
    trafficking = "trafficking"
    hotspots = "hotspots"
    engagement = "engagement"
    offending = "offending"


class ExploitationType(StrEnum):
    inappropriate_association = "inappropriate_association"
    boyfriend_model = "boyfriend_model"
    peer_on_peer = "peer_on_peer"
    gang = "gang"
    organised = "organised"
    party_commodity = "party_commodity"
    criminal_county_lines = "criminal_county_lines"
    cuckooing = "cuckooing"
    trafficking = "trafficking"
    modern_slavery = "modern_slavery"
    online = "online"


class LawfulBasis(StrEnum):
    """UK GDPR Article 6 basis on which the referrer shares the information."""

    consent = "consent"
    legal_obligation = "legal_obligation"
    vital_interests = "vital_interests"
    public_task = "public_task"
    legitimate_interests = "legitimate_interests"


class PreMsetOutcome(StrEnum):
    meets_criteria = "meets_criteria"
    not_met = "not_met"
    more_information = "more_information"


class ActionAim(StrEnum):
    remove = "remove"
    avoid = "avoid"
    reduce = "reduce"


class ActionTarget(StrEnum):
    victim = "victim"
    perpetrator = "perpetrator"
    location = "location"


class MeetingKind(StrEnum):
    pre_mset = "pre_mset"
    mset = "mset"
    lmaps = "lmaps"


class RhiOutcome(StrEnum):
    completed = "completed"
    refused_by_young_person = "refused_by_young_person"
    refused_by_parent_carer = "refused_by_parent_carer"
    not_offered = "not_offered"
