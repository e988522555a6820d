"""Plain notification logic and domain errors: who an escalation reaches, who sees an inbox
item, who is next up the line, how long to wait before retrying. No web, DB or Temporal code.

Inbox routing. An escalation names each target as a role at an agency *designated by its part
in the case* (triage's vocabulary). Identity tells us, for each staff user, their role, agency,
the local authorities they serve, the authority their agency belongs to and the authorities
that commission it for Return Home Interviews. A target reaches:

=====================  ======================================================================
designation            who sees the item (those with the role, when the target names one)
=====================  ======================================================================
referring_agency       users of the agency that submitted the referral
action_owner           users of the agency owning the action (``agency_ref`` = its id)
local_authority        users who serve the authority (``agency_ref``, else the case's one),
                       whatever their agency's type
other_authority        users who serve the authority the child was found in (``agency_ref``)
rhi_provider           users of an agency that is the authority's RHI provider: commissioned
                       by it, or a voluntary provider belonging to it or whose user serves it
=====================  ======================================================================

A user with no authorities recorded serves none: authority-level items do not reach them.
docs/escalation-routing.md is the table with every row spelled out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from mset_contract.auth import Principal
from mset_contract.events import EscalationTargetRef, MsetEvent, ReferralEscalated
from mset_contract.triage import AgencyDesignation
from mset_contract.vocab import AgencyType, Role

INBOX_ITEM_NAMESPACE = uuid.UUID("0b7d3f0e-4c55-5d8b-9a47-2b8a2f8ef2a1")

# Roles that sit at the authority's MSET partnership rather than at one agency.
AUTHORITY_ROLES = frozenset({Role.chair, Role.coordinator})

# Designations routed to one agency, and to the people serving an authority.
AGENCY_DESIGNATIONS = frozenset(
    {AgencyDesignation.referring_agency, AgencyDesignation.action_owner}
)
AUTHORITY_DESIGNATIONS = frozenset(
    {AgencyDesignation.local_authority, AgencyDesignation.other_authority}
)


# --- errors ------------------------------------------------------------------------------


class InboxItemNotFound(Exception):
    """No such item, or not one for the caller's role and agency (the same answer: the
    caller learns nothing about items that are not theirs)."""


class AlreadyActioned(Exception):
    pass


class StaffOnly(Exception):
    """The inbox is for staff users; partner systems are told by webhook."""


class OpsOnly(Exception):
    """The operations counts are for the ops role."""


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
    """Whom an item is for: the role (none: everyone there) and either one agency
    (``agency_id``, agency designations) or an authority (``authority``, the others)."""

    designation: AgencyDesignation
    agency_ref: str | None
    role: Role | None
    agency_id: uuid.UUID | None
    authority: str


def webhook_agencies(event: MsetEvent) -> list[uuid.UUID]:
    """The agencies whose systems hear of an event: the one that referred the case, and for
    an action's events (assigned, due soon, overdue, completed) the agency owning it."""
    agencies = [event.referrer_agency_id]
    owner = getattr(event, "owner_agency_id", None)
    if isinstance(owner, uuid.UUID) and owner not in agencies:
        agencies.append(owner)
    return agencies


def resolve_target(event: ReferralEscalated, ref: EscalationTargetRef) -> Target:
    d = ref.agency
    if d is AgencyDesignation.referring_agency:
        return Target(d, None, ref.role, event.referrer_agency_id, event.local_authority)
    if d is AgencyDesignation.action_owner:
        try:
            owner = uuid.UUID(ref.agency_ref or "")
        except ValueError:
            raise UnresolvableTarget("action_owner target without an agency id") from None
        return Target(d, ref.agency_ref, ref.role, owner, event.local_authority)
    if d in (AgencyDesignation.local_authority, AgencyDesignation.rhi_provider):
        return Target(d, ref.agency_ref, ref.role, None, ref.agency_ref or event.local_authority)
    if d is AgencyDesignation.other_authority:
        if not ref.agency_ref:
            raise UnresolvableTarget("other_authority target without an authority code")
        return Target(d, ref.agency_ref, ref.role, None, ref.agency_ref)
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


def rhi_provider_for(principal: Principal) -> frozenset[str]:
    """The authorities whose Return Home Interview provider the user's agency is: those that
    commission it and, for a voluntary provider, the authority it belongs to and those its
    user serves."""
    out = set(principal.rhi_provider_for)
    if principal.agency_type is AgencyType.voluntary_provider:
        out.update(principal.authorities)
        if principal.agency_authority:
            out.add(principal.agency_authority)
    return frozenset(out)


def visible_to(principal: Principal, target: Target) -> bool:
    """Whether a staff user sees an item for ``target`` (store.visible_to is its SQL form)."""
    if principal.kind != "user":
        return False
    if target.role is not None and target.role != principal.role:
        return False
    d = target.designation
    if d in AGENCY_DESIGNATIONS:
        return target.agency_id == principal.agency_id
    if d in AUTHORITY_DESIGNATIONS:
        return target.authority in principal.authorities
    if d is AgencyDesignation.rhi_provider:
        return target.authority in rhi_provider_for(principal)
    return False


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
