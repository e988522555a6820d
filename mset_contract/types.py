"""Shared constrained types: one definition of what a valid value looks like."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import StringConstraints

UK = ZoneInfo("Europe/London")

# A partner system's own reference (for a referral or a child): no spaces, bounded.
PartnerRef = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
    ),
]
# Local authority code, e.g. "northshire". The region's authorities are configuration.
LocalAuthorityCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9-]*$"
    ),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# Free text written by professionals. Kept only in the owning service's database: free text
# never goes into events, logs, metrics or search attributes.
FreeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
IndicatorCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)
]


def today_uk(now: datetime | None = None) -> date:
    """Today's date in England, where every MSET partnership works."""
    return (now or datetime.now(UK)).astimezone(UK).date()


def birthday(date_of_birth: date, years: int) -> date:
    """The date a child turns ``years`` old (29 February birthdays fall on 1 March)."""
    try:
        return date_of_birth.replace(year=date_of_birth.year + years)
    except ValueError:
        return date(date_of_birth.year + years, 3, 1)


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years of age on ``on`` (a child born 29 February turns a year older on 1 March)."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)
