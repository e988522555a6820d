"""Referral domain: plain rules and errors. Imports no web, database or Temporal code."""

from __future__ import annotations

from mset_contract.auth import Principal
from mset_contract.vocab import Role, Stage

CLOSED_STAGES = (Stage.exited.value, Stage.closed_advice_given.value)


class ReferralError(Exception):
    """Base of the referral service's domain errors."""


class ReferralNotFound(ReferralError):
    """No referral with that id that the caller may see (existence is not disclosed)."""


class IdempotencyKeyReused(ReferralError):
    """The Idempotency-Key was already used for a different submission."""


class WorkflowUnavailable(ReferralError):
    """Temporal could not start the referral's workflow; nothing was accepted."""


class UnknownCase(ReferralError):
    """A report names a case that does not exist or is closed."""


class CaseClosed(ReferralError):
    """The case's workflow has ended; it takes no more decisions or tools."""


class DecisionRejected(ReferralError):
    """The case refused a decision (its workflow's validator said why); nothing was recorded."""


class CaseUnavailable(ReferralError):
    """The case's workflow could not be reached just now."""


class AgencyExists(ReferralError):
    pass


class AgencyNotFound(ReferralError):
    pass


class NotAPartnerSystem(ReferralError):
    """Referrals are submitted by partner systems with an agency API key."""


# Who may take which decision on a case. The chair decides for a panel; the coordinator may
# also record an exit (a child moves away between panels); progress on an action is reported
# by staff of the agency that owns it, or by the coordinator.
DECIDING_ROLES = (Role.chair,)
EXIT_ROLES = (Role.chair, Role.coordinator)
PROGRESS_ROLES = (Role.coordinator, Role.chair)

# Partnership roles that work across agencies' referrals (the MSET coordinator and panels).
# Admins manage accounts and analysts see aggregates: neither reads a child's record.
PARTNERSHIP_ROLES = (Role.coordinator, Role.chair, Role.panel_member, Role.manager)


def may_read_referral(principal: Principal, referral_agency_id: object) -> bool:
    """An agency sees the referrals it submitted; partnership staff see all of them."""
    if principal.agency_id == referral_agency_id and (
        principal.kind == "agency" or principal.has_role(*PARTNERSHIP_ROLES, Role.provider)
    ):
        return True
    return principal.has_role(*PARTNERSHIP_ROLES)
