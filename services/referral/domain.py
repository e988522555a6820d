"""Referral domain: plain rules and errors. Imports no web, database or Temporal code."""

from __future__ import annotations

from mset_contract.auth import Principal
from mset_contract.vocab import Role


class ReferralError(Exception):
    """Base of the referral service's domain errors."""


class ReferralNotFound(ReferralError):
    """No referral with that id that the caller may see (existence is not disclosed)."""


class IdempotencyKeyReused(ReferralError):
    """The Idempotency-Key was already used for a different submission."""


class WorkflowUnavailable(ReferralError):
    """Temporal could not start the referral's workflow; nothing was accepted."""


class AgencyExists(ReferralError):
    pass


class AgencyNotFound(ReferralError):
    pass


class NotAPartnerSystem(ReferralError):
    """Referrals are submitted by partner systems with an agency API key."""


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
