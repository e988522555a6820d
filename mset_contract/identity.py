"""The child's identity (name, NHS number, postcode) and same-child links across agencies.

The identity is optional in a Risk Assessment Tool (partner systems written before it keep
working); when sent it is held encrypted by the referral service, shown only to those who may
see the case, and never put in events, workflow history, logs, metrics or search attributes
(ADR 0002, ADR 0028). Links say that two tools are about the same child: certain (same NHS
number) links are made at intake, other likely matches wait for a coordinator's decision.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from mset_contract.types import TEXT_CONTROLS, TEXT_SPACES, SchemaRules, ShortText

# --- NHS number --------------------------------------------------------------------------
#
# Ten digits, the last a modulus-11 check digit: the first nine weighted 10 down to 2, the sum
# taken mod 11, subtracted from 11; 11 means a check digit of 0 and 10 means the number is not
# valid (NHS Data Dictionary, "NHS Number"). Partners write it as "943 476 5919" or
# "943-476-5919"; it is held as the ten digits.

_NHS_SEPARATORS = re.compile(r"[\s-]")
# The number as a partner may send it: the schema's pattern, and the validator's (one rule).
_NHS_SENT = r"^[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}$"
# One digit ten times passes the check digit but is no NHS number: the schema refuses it
# with ``not`` (no back-reference or look-ahead, which not every partner's engine reads).
_NHS_REPEATED = "^(?:" + "|".join(f"{d}{{3}}[ -]?{d}{{3}}[ -]?{d}{{4}}" for d in range(10)) + ")$"


def nhs_check_digit(first_nine: str) -> int | None:
    """The check digit of nine digits; None when no check digit can make them valid."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_number_problem(value: str) -> str | None:
    """Why ``value`` (separators already removed) is not an NHS number, or None."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "an NHS number is 10 digits (spaces or hyphens between groups are allowed)"
    if len(set(value)) == 1:
        return "an NHS number is not one digit repeated"
    if nhs_check_digit(value[:9]) != int(value[9]):
        return "the NHS number's check digit does not match (modulus 11): check each digit"
    return None


def _nhs_clean(value: Any) -> Any:
    # Separators only where the schema allows them ("943 476 5919"): anything else is left
    # as sent, and refused as not 10 digits.
    if isinstance(value, str) and re.fullmatch(_NHS_SENT, value):
        return _NHS_SEPARATORS.sub("", value)
    return value


def _nhs_valid(value: str) -> str:
    problem = nhs_number_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


NhsNumber = Annotated[
    str,
    BeforeValidator(_nhs_clean),
    AfterValidator(_nhs_valid),
    # The schema says what a partner may send; the validators say why a number is refused.
    WithJsonSchema({"type": "string", "pattern": _NHS_SENT, "not": {"pattern": _NHS_REPEATED}}),
]

# --- postcode ----------------------------------------------------------------------------
# A UK postcode, held upper case with one space before the inward code ("NT1 2AB").
# As sent: either case, spaces around and between the outward and inward codes (ASCII only:
# the schema's pattern and the validator's are one, so the schema says what is refused).
_POSTCODE_SENT = r"^ *([A-Za-z]{1,2}[0-9][A-Za-z0-9]?) *([0-9][A-Za-z]{2}) *$"
_POSTCODE_MAX = 10


def _postcode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    m = re.fullmatch(_POSTCODE_SENT, value)
    if m is None or len(value) > _POSTCODE_MAX:
        raise ValueError("not a UK postcode (e.g. 'NT1 2AB')")
    return f"{m.group(1).upper()} {m.group(2).upper()}"


Postcode = Annotated[
    str,
    BeforeValidator(_postcode),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": _POSTCODE_MAX,
            "pattern": _POSTCODE_SENT,
            "examples": ["NT1 2AB"],
        }
    ),
]

# A name as written: letters of any alphabet, spaces, hyphens and apostrophes; no digits.
_NAME_REFUSED = r"\d@#$%^&*()_+=<>{}\[\]|\\/:;\"~`!?,"
# The OpenAPI's one pattern holds both rules a name is checked against, the name's and free
# text's (no control characters, not only white space): a schema-valid name is accepted.
_NAME_SCHEMA_PATTERN = (
    rf"^[^{TEXT_CONTROLS}{_NAME_REFUSED}]*"
    rf"[^{TEXT_CONTROLS}{TEXT_SPACES}{_NAME_REFUSED}][^{TEXT_CONTROLS}{_NAME_REFUSED}]*$"
)
PersonName = Annotated[
    ShortText,
    StringConstraints(max_length=80, pattern=rf"^[^{_NAME_REFUSED}]+$"),
    SchemaRules(pattern=_NAME_SCHEMA_PATTERN),
]


class ChildName(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given: PersonName = Field(description="Given (first) name.")
    family: PersonName = Field(description="Family name (surname).")
    known_as: PersonName | None = Field(
        default=None, description="The name the child uses, when not the given name."
    )
    aliases: list[PersonName] = Field(
        default_factory=list,
        max_length=10,
        description="Other names the child has used or been known by (whole names).",
    )


# --- the identity as shown ---------------------------------------------------------------


class ChildIdentityPublic(BaseModel):
    """What a tool said of who the child is: for those who may see the case, each read
    recorded in the information-sharing ledger."""

    referral_id: UUID
    name: ChildName | None = None
    nhs_number: str | None = None
    postcode: str | None = None
    date_of_birth: date
    gender: str
    local_authority: str
    key_id: str | None = Field(
        description="The key the identity is encrypted under at rest; None when the tool "
        "gave no name or NHS number (older partner systems)."
    )


# --- links -------------------------------------------------------------------------------


class LinkStatus(StrEnum):
    candidate = "candidate"  # a likely match waiting for a coordinator
    linked = "linked"  # the same child: automatically (NHS number) or confirmed
    rejected = "rejected"  # a coordinator said: not the same child
    unlinked = "unlinked"  # was linked, undone


class LinkBasis(StrEnum):
    nhs_number = "nhs_number"  # both tools give the same NHS number: certain
    probabilistic = "probabilistic"  # name, date of birth, gender, authority, postcode


class LinkAction(StrEnum):
    """What happened to a link: each is one row of its append-only record."""

    auto_linked = "auto_linked"
    proposed = "proposed"
    confirmed = "confirmed"
    rejected = "rejected"
    unlinked = "unlinked"


class Agreement(StrEnum):
    """How one field of two tools compares: codes, never the values."""

    exact = "exact"
    nickname = "nickname"
    close = "close"  # a typo or a transposition of letters
    sounds_alike = "sounds_alike"
    swapped = "swapped"  # given and family names swapped; day and month swapped
    partial = "partial"
    differs = "differs"
    missing = "missing"


class LinkDecision(BaseModel):
    """A coordinator's confirmation, rejection or undoing of a link, and why."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"reason": "Same date of birth and school; social worker confirmed."}]
        },
    )

    reason: Annotated[ShortText, StringConstraints(max_length=500)] = Field(
        description="Why: kept with the link's record (never published)."
    )


class LinkSide(BaseModel):
    referral_id: UUID
    case_id: UUID
    agency_id: UUID
    local_authority: str
    submitted_at: datetime
    identity: ChildIdentityPublic | None = None


class LinkEventPublic(BaseModel):
    action: LinkAction
    at: datetime
    by_user_id: UUID | None = Field(description="None: the system, at intake.")
    by_agency_id: UUID | None
    reason: str


class ChildLinkPublic(BaseModel):
    link_id: UUID
    status: LinkStatus
    basis: LinkBasis
    score: float = Field(description="Match weight (log2 of the likelihood ratio).")
    agreement: dict[str, Agreement] = Field(description="Field → how the two tools compare.")
    a: LinkSide
    b: LinkSide
    events: list[LinkEventPublic] = Field(default_factory=list)


class ChildLinkPage(BaseModel):
    items: list[ChildLinkPublic]
    next_cursor: str | None = None


class HistoryEntry(BaseModel):
    """One referral of the child's. Another authority's referral the caller may not see
    shows only that it exists (its authority and month), never its ids or detail."""

    visible: bool
    local_authority: str
    submitted_month: str
    referral_id: UUID | None = None
    case_id: UUID | None = None
    agency_id: UUID | None = None
    stage: str | None = None
    submitted_at: datetime | None = None
    kind: str | None = None
    linked_by: str | None = Field(
        default=None,
        description="How this referral joined the history: 'case' (same case or its "
        "re-referral), 'nhs_number' or 'confirmed' (a coordinator's link).",
    )


class ChildHistory(BaseModel):
    referral_id: UUID
    entries: list[HistoryEntry]
    links: list[UUID] = Field(description="The links that join this history.")
