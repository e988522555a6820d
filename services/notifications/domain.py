"""Plain notification logic and domain errors: who an escalation reaches, who sees an inbox
item, who is next up the line, how long to wait before retrying. No web, DB or Temporal code.

Inbox targeting. An escalation names each target as a role at an agency *designated by its
part in the case* (triage's vocabulary). Identity knows each staff user's role, agency and
agency type, but not yet which local authority a user serves, so a target resolves to:

=====================  ===================================================================
designation            who sees the item (besides the role, when the target names one)
=====================  ===================================================================
referring_agency       users of the agency that submitted the referral
action_owner           users of the agency owning the action (``agency_ref`` = its id)
local_authority        users of *local authority* agencies (the MSET partnership)
other_authority        users of local authority agencies (``agency_ref`` = the authority)
rhi_provider           users of *voluntary provider* agencies (Return Home Interviews)
=====================  ===================================================================

A target with no role (the case holder) is visible to every user of the designated agency.
The authority code is kept on each item; once identity records the authority a user serves,
authority-level items can be narrowed to it (one more condition in ``visible_to``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from mset_contract.auth import Principal
from mset_contract.events import EscalationTargetRef, ReferralEscalated
from mset_contract.triage import AgencyDesignation
from mset_contract.vocab import AgencyType, Role

INBOX_ITEM_NAMESPACE = uuid.UUID("0b7d3f0e-4c55-5d8b-9a47-2b8a2f8ef2a1")

# Roles that sit at the authority's MSET partnership rather than at one agency.
AUTHORITY_ROLES = frozenset({Role.chair, Role.coordinator})


# --- errors ------------------------------------------------------------------------------


class InboxItemNotFound(Exception):
    """No such item, or not one for the caller's role and agency (the same answer: the
    caller learns nothing about items that are not theirs)."""


class AlreadyActioned(Exception):
    pass


class StaffOnly(Exception):
    """The inbox is for staff users; partner systems are told by webhook."""


class PartnerSystemsOnly(Exception):
    """Webhook subscriptions belong to an agency's system (its API key), not to a user."""


class SubscriptionNotFound(Exception):
    pass


class InvalidSubscription(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TooManySubscriptions(Exception):
    pass


class UnresolvableTarget(Exception):
    """An escalation target the event does not say enough to resolve (dead-lettered)."""


# --- targeting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    designation: AgencyDesignation
    agency_ref: str | None
    role: Role | None
    agency_id: uuid.UUID | None
    agency_type: AgencyType | None
    authority: str


def resolve_target(event: ReferralEscalated, ref: EscalationTargetRef) -> Target:
    d = ref.agency
    if d is AgencyDesignation.referring_agency:
        return Target(d, None, ref.role, event.referrer_agency_id, None, event.local_authority)
    if d is AgencyDesignation.action_owner:
        try:
            owner = uuid.UUID(ref.agency_ref or "")
        except ValueError:
            raise UnresolvableTarget("action_owner target without an agency id") from None
        return Target(d, ref.agency_ref, ref.role, owner, None, event.local_authority)
    if d is AgencyDesignation.local_authority:
        authority = ref.agency_ref or event.local_authority
        return Target(d, ref.agency_ref, ref.role, None, AgencyType.local_authority, authority)
    if d is AgencyDesignation.other_authority:
        if not ref.agency_ref:
            raise UnresolvableTarget("other_authority target without an authority code")
        return Target(d, ref.agency_ref, ref.role, None, AgencyType.local_authority, ref.agency_ref)
    if d is AgencyDesignation.rhi_provider:
        authority = ref.agency_ref or event.local_authority
        return Target(d, ref.agency_ref, ref.role, None, AgencyType.voluntary_provider, authority)
    raise UnresolvableTarget(f"unknown designation {d}")


def resolve_targets(event: ReferralEscalated) -> list[Target]:
    return [resolve_target(event, ref) for ref in event.notify]


def inbox_item_id(event_id: uuid.UUID, index: int) -> uuid.UUID:
    """Deterministic: the inbox and e-mail consumers (separate groups) agree on it."""
    return uuid.uuid5(INBOX_ITEM_NAMESPACE, f"{event_id}/{index}")


def email_id(event_id: uuid.UUID, index: int) -> uuid.UUID:
    return uuid.uuid5(INBOX_ITEM_NAMESPACE, f"{event_id}/email/{index}")


def delivery_id(event_id: uuid.UUID, subscription_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(INBOX_ITEM_NAMESPACE, f"{event_id}/webhook/{subscription_id}")


def visible_to(
    principal: Principal,
    role: Role | None,
    agency_id: uuid.UUID | None,
    agency_type: AgencyType | None,
) -> bool:
    """Whether a staff user sees an item aimed at (role, agency_id, agency_type)."""
    if principal.kind != "user":
        return False
    return (
        (role is None or role == principal.role)
        and (agency_id is None or agency_id == principal.agency_id)
        and (agency_type is None or agency_type == principal.agency_type)
    )


# --- up the line -------------------------------------------------------------------------


def next_up_the_line(role: Role | None, ladder: Mapping[Role, Role]) -> Role | None:
    """Who hears of an unacknowledged item next: the case holder's manager, then the ladder
    (by default provider → manager → chair, panel member → coordinator → chair)."""
    if role is None:
        return Role.manager
    return ladder.get(role)


def reescalation_ref(
    designation: AgencyDesignation, agency_ref: str | None, next_role: Role
) -> EscalationTargetRef:
    """The target of a re-escalation: a role above an agency's (the chair, the coordinator)
    sits at the authority's partnership; any other stays at the same agency."""
    if next_role in AUTHORITY_ROLES and designation in (
        AgencyDesignation.referring_agency,
        AgencyDesignation.action_owner,
        AgencyDesignation.rhi_provider,
    ):
        return EscalationTargetRef(role=next_role, agency=AgencyDesignation.local_authority)
    return EscalationTargetRef(role=next_role, agency=designation, agency_ref=agency_ref)


# --- retries -----------------------------------------------------------------------------


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Delay before retry ``attempt + 1`` after ``attempt`` failures: base, 2 base, 4 base, ..."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


# --- e-mail ------------------------------------------------------------------------------


def case_ref(case_id: uuid.UUID) -> str:
    """A short case reference for people: the first 8 hex digits of the case id."""
    return case_id.hex[:8]


def compose_email(
    kind: str, urgency: str, role: Role, case_id: uuid.UUID, item_id: uuid.UUID, base_url: str
) -> tuple[str, str]:
    """Subject and body of an urgent-escalation e-mail: codes and a link, no personal data
    (the reader signs in to see the case)."""
    link = f"{base_url.rstrip('/')}/v1/inbox/{item_id}"
    subject = f"MSET urgent escalation: {kind} (case ref {case_ref(case_id)})"
    body = (
        f"An urgent escalation ({kind}, {urgency}) is waiting in the MSET inbox for the "
        f"{role.value} role.\n\n"
        f"Open it: {link}\n\n"
        "This message carries no personal details by design: sign in to see the case.\n"
        "Acknowledge the item so it is not escalated further.\n"
    )
    return subject, body
