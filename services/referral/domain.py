"""Referral domain: plain rules and errors. Imports no web, database or Temporal code."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from mset_contract.cases import NewAction
from mset_contract.vocab import Stage
from mset_platform.idempotency import body_hash, differing_fields
from mset_platform.settings import authority_refusal

CLOSED_STAGES = (Stage.exited.value, Stage.closed_advice_given.value)


class ReferralError(Exception):
    """Base of the referral service's domain errors."""


class ReferralNotFound(ReferralError):
    """No referral with that id that the caller may see (existence is not disclosed)."""


class NotPermitted(ReferralError):
    """The caller may see the referral but their role may not do this to it."""


class IdempotencyKeyReused(ReferralError):
    """The Idempotency-Key was already used for a different submission."""


class SubmissionConflict(ReferralError):
    """A submission's Idempotency-Key or partner reference was used before with a different
    body; ``fields`` names what differs (never the values)."""

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super().__init__(message)
        self.fields = list(fields)


def matched_by(row_key: str | None, idempotency_key: str | None) -> str:
    """What an earlier submission was found by: the request's key, or its reference."""
    return (
        "Idempotency-Key"
        if idempotency_key is not None and row_key == idempotency_key
        else "partner_reference"
    )


def check_same_submission(
    first: dict[str, Any],
    first_hash: str | None,
    again: dict[str, Any],
    *,
    what: str,
    by: str,
    as_stored: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    sealed: Sequence[str] = (),
) -> None:
    """A retried submission must be the first one again (``first_hash``: the hash recorded
    with the first; rows from before it was recorded are hashed from the stored body):
    refused naming what differs. ``first`` is the body as stored: ``as_stored`` makes the
    retry comparable with it, and where only parts stored apart (``sealed``) can differ,
    those are named."""
    if (first_hash or body_hash(first)) == body_hash(again):
        return
    fields = differing_fields(first, as_stored(again) if as_stored else again) or list(sealed)
    if fields:
        raise SubmissionConflict(
            f"this {by} was used for a {what} with a different body ({', '.join(fields)} "
            f"differ); send the first {what} again unchanged to get its answer, or use a new "
            f"{by} for a new {what}",
            fields,
        )


class WorkflowUnavailable(ReferralError):
    """Temporal could not start the referral's workflow; nothing was accepted."""


class RequestInvalid(ReferralError):
    """A request the model admits but this service cannot take; ``field`` says which part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownCase(ReferralError):
    """A report names a case that does not exist or is closed."""


class AgencyExists(ReferralError):
    pass


class AgencyNotFound(ReferralError):
    pass


class UserNotFound(ReferralError):
    pass


class UserDisabled(ReferralError):
    """A disabled user is issued no new token."""


class CredentialNotFound(ReferralError):
    """No API key or staff token with that id."""


class InvalidAuthority(ReferralError):
    """A local authority code that is not one (lower case letters, digits and hyphens)."""


class NotAPartnerSystem(ReferralError):
    """Referrals are submitted by partner systems with an agency API key."""


class NotStaff(ReferralError):
    """Only MSET staff (and the MSET services) may do this, not a partner system's key."""


class NotAService(ReferralError):
    """For the other MSET services only (the shared service token)."""


class NotAnOwner(ReferralError):
    """Owned actions are for the owning agency's system and staff."""


def check_authority(code: str, known: Collection[str], field: str) -> None:
    """A local authority of the partnership's (configuration), or ``RequestInvalid`` in the
    words every service uses for it."""
    refusal = authority_refusal(code, known)
    if refusal is not None:
        raise RequestInvalid(field, refusal)


def check_owners(actions: Sequence[NewAction], unknown: Collection[uuid.UUID]) -> None:
    """Every action is owned by an agency that exists; the first that is not is named."""
    for n, action in enumerate(actions):
        if action.owner_agency_id in unknown:
            raise RequestInvalid(
                f"actions.{n}.owner_agency_id",
                f"no agency {action.owner_agency_id}: choose the owner from GET /v1/agencies",
            )
