"""A page of a list: what every MSET list endpoint answers.

A list answers one page at a time, in an order that does not change while it is walked, and
says whether there is more: ``next_cursor`` is null on the last page and only there. Pass it
back as the ``cursor`` query parameter (with any ``limit``, 1 to 200, default 50) for the
next page. A cursor is opaque: it marks a place in one list's order, nothing else. Each list
names its page model after what it holds (``InboxPage``, ``AgencyPage``), the last rung of
the schema ladder.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page; null when this is the last page.",
    )
