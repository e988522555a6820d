"""The information-sharing ledger and subject access (docs/ledger.md, ADR 0023).

Every time a child's record leaves an MSET service (an API read, an agenda or minutes shown to
a panel, a webhook delivery, an e-mail, an export) one ledger entry says what was shared (the
record and the view, with its fields), with whom (user, agency, role, or a partner system's
webhook or a team mailbox), why (the purpose), on what lawful basis, and when. The referral
service keeps the ledger (it owns the child's record); the other services report their
disclosures to it with these models. Nobody can change or delete an entry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.paging import Page
from mset_contract.vocab import LawfulBasis, Role


class DisclosurePurpose(StrEnum):
    """Why a record was shared."""

    panel = "panel"  # a Pre-MSET, MSET or LMAPS panel considers the case
    case_work = "case_work"  # an agency works the case: status, decisions, actions, escalations
    statutory_duty = "statutory_duty"  # a duty in law: a subject access request (UK GDPR art. 15)
    oversight = "oversight"  # the DPO reads the ledger (UK GDPR art. 5(2), accountability)


class DisclosureView(StrEnum):
    """What was shown: each view's fields are ``VIEW_FIELDS``."""

    case_status = "case_status"  # GET /v1/referrals/{id}
    panel_papers = "panel_papers"  # GET /v1/referrals/{id}/papers
    case_who = "case_who"  # GET /v1/cases/who, to a service that named no reader
    case_decision = "case_decision"  # a decision's answer (Pre-MSET, review, exit)
    action_progress = "action_progress"  # progress on an action, answered to its reporter
    owned_actions = "owned_actions"  # GET /v1/actions: an agency's actions on the case
    missing_episode = "missing_episode"  # GET /v1/missing-episodes/{id}
    agenda = "agenda"  # a meeting's agenda, each case named (meeting service)
    minutes = "minutes"  # a meeting's minutes, each case named (meeting service)
    inbox_item = "inbox_item"  # an escalation read in the inbox (notifications service)
    webhook = "webhook"  # an event posted to a partner's webhook (notifications service)
    email = "email"  # an escalation e-mailed to a role's mailbox (notifications service)
    ledger = "ledger"  # ledger entries, read or exported by the DPO
    subject_access = "subject_access"  # everything held about one child, exported
    # The child's identity (name, NHS number, postcode): GET /v1/referrals/{id}/child, and
    # both sides of a same-child candidate shown to a coordinator (ADR 0028).
    child_identity = "child_identity"
    # A child's referrals across agencies, linked (GET /v1/referrals/{id}/child-history).
    child_history = "child_history"
    # A person of concern or a location linked to the child (ADR 0030): its detail (names,
    # phones, vehicles, handles; address, postcode), in an entity's page, a match for review
    # or the child's linked entities.
    entity = "entity"
    # One authority's mentions of an entity shared with another authority (ADR 0030).
    entity_share = "entity_share"


# The fields each view shows (a reader's role may be shown fewer: the entry lists what was).
VIEW_FIELDS: dict[DisclosureView, tuple[str, ...]] = {
    DisclosureView.child_identity: (
        "name.given", "name.family", "name.known_as", "name.aliases", "nhs_number",
        "postcode", "date_of_birth", "gender", "local_authority",
    ),
    DisclosureView.entity: (
        "names", "description", "vehicles", "phones", "handles", "known_to_police",
        "place_name", "address", "postcode", "online",
    ),
    DisclosureView.entity_share: ("entity detail, to the other authority's staff",),
    DisclosureView.child_history: (
        "referral_id", "case_id", "agency_id", "local_authority", "stage", "submitted_at",
        "kind", "linked_by",
    ),
    DisclosureView.case_status: (
        "referral_id", "case_id", "partner_reference", "stage", "level", "suggested_level",
        "local_authority", "open_actions", "next_deadline", "exit_reason",
    ),
    DisclosureView.panel_papers: (
        "who.agency_child_ref", "who.age_years", "who.gender", "who.legal_status",
        "who.local_authority", "who.area_of_residence", "who.disability_or_sen",
        "who.known_to_services", "who.referring_agency", "why.indicators",
        "why.exploitation_types", "why.persons_of_concern", "why.locations",
        "why.referrer_level", "why.referrer_rationale", "why.rules", "history.decisions",
        "history.decisions[].rationale", "history.actions", "history.actions[].progress[].note",
        "history.missing_episodes", "links",
    ),
    DisclosureView.case_who: (
        "who.agency_child_ref", "who.age_years", "who.gender", "who.legal_status",
        "who.local_authority", "who.area_of_residence", "who.referring_agency", "who.links",
    ),
    DisclosureView.case_decision: ("case_id", "stage", "level", "action_ids"),
    DisclosureView.action_progress: ("case_id", "action_id", "completed", "open_actions"),
    DisclosureView.owned_actions: (
        "case_id", "action_id", "due_at", "aim", "target", "description", "status",
    ),
    DisclosureView.missing_episode: (
        "episode_id", "case_id", "reported_at", "returned_at", "rhi_deadline", "rhi_outcome",
    ),
    DisclosureView.agenda: (
        "case_id", "who", "stage", "level", "reasons", "decision",
    ),
    DisclosureView.minutes: (
        "case_id", "who", "level", "decision", "decision.rationale", "actions",
    ),
    DisclosureView.inbox_item: (
        "case_id", "kind", "urgency", "level", "local_authority", "rule", "fired_rules", "about",
    ),
    DisclosureView.webhook: ("case_id", "event_type", "event data (codes, levels, dates)"),
    DisclosureView.email: ("case_id", "kind", "urgency", "level", "inbox link"),
    DisclosureView.ledger: ("ledger entries",),
    DisclosureView.subject_access: (
        "referrals (tools)", "cases (decisions, actions, episodes)", "missing episodes",
        "meetings", "notifications", "disclosures",
    ),
}  # fmt: skip


RecipientKind = Literal["user", "partner_system", "service", "webhook", "mailbox"]
Reporter = Literal["referral", "meeting", "notifications"]


class ShownTo(BaseModel):
    """The person a service showed a child's record to (the meeting service names its reader
    when it asks who its agenda's cases are about)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UUID | None = None
    agency_id: UUID
    role: Role | None = None
    view: DisclosureView
    meeting_id: UUID | None = None


class DisclosureReport(BaseModel):
    """One disclosure another MSET service made (``POST /v1/disclosures``, service token).
    The same ``report_id`` twice is one entry: a service retries until it is recorded."""

    model_config = ConfigDict(extra="forbid")

    report_id: UUID = Field(description="The reporter's id for this disclosure (idempotency).")
    case_id: UUID = Field(description="The child's case (its first referral's id).")
    record: str = Field(max_length=40, description="The kind of record shared, e.g. 'event'.")
    record_id: UUID | None = None
    view: DisclosureView
    fields: list[str] = Field(default_factory=list, max_length=64)
    recipient_kind: RecipientKind
    user_id: UUID | None = None
    agency_id: UUID | None = None
    role: Role | None = None
    recipient: str | None = Field(default=None, max_length=300)
    purpose: DisclosurePurpose
    at: datetime


class DisclosureReports(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reporter: Literal["meeting", "notifications"]
    entries: list[DisclosureReport] = Field(min_length=1, max_length=100)


class DisclosuresRecorded(BaseModel):
    recorded: int = Field(description="New entries (a report already recorded is not counted).")


class DisclosurePublic(BaseModel):
    """One ledger entry."""

    id: UUID
    seq: int = Field(description="Its place in the ledger (the hash chain's order).")
    at: datetime
    case_id: UUID | None = Field(description="The child's case; null for a ledger read.")
    record: str
    record_id: UUID | None
    view: DisclosureView
    fields: list[str]
    recipient_kind: RecipientKind
    user_id: UUID | None
    agency_id: UUID | None
    role: Role | None
    recipient: str | None
    purpose: DisclosurePurpose
    lawful_basis: LawfulBasis
    reported_by: Reporter
    prev_hash: str
    entry_hash: str


class DisclosurePage(Page[DisclosurePublic]):
    pass


class SubjectAccessExport(BaseModel):
    """Everything the MSET services hold about one child, for a subject access request
    (``GET /v1/subject-access/{child}``, the DPO). Marked OFFICIAL-SENSITIVE."""

    marking: Literal["OFFICIAL-SENSITIVE"] = "OFFICIAL-SENSITIVE"
    generated_at: datetime
    generated_by: UUID
    child: dict[str, Any] = Field(description="How the child was found: agency, reference, LA.")
    referrals: list[dict[str, Any]] = Field(description="Each tool as submitted, with its row.")
    cases: list[dict[str, Any]] = Field(
        description="Each case's record from its workflow: stages, decisions, actions, "
        "missing episodes, exit (null where the case could not be read just now)."
    )
    missing_episodes: list[dict[str, Any]]
    meetings: list[dict[str, Any]] = Field(
        description="What the meeting service holds: agenda items, decisions, LMAPS referrals."
    )
    notifications: list[dict[str, Any]] = Field(
        description="What the notifications service holds: inbox items, webhook deliveries."
    )
    disclosures: list[DisclosurePublic]
    incomplete: list[str] = Field(
        default_factory=list,
        description="Parts that could not be gathered just now (the export says so, never "
        "silently leaves them out).",
    )
