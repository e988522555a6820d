"""Paging, written once: every list answers a page in a stable order, after a cursor, and says
whether there is more (the page model is ``mset_contract.paging.Page``).

A list's order is a ``Keyset``, declared in the owning service's ``store.py`` beside its
table: sort columns ending in one that is unique, so no two rows tie. A page is the rows
*after* the last one shown (``WHERE (key) > (last key)`` in that order, one more row than
asked for, to know whether there is more), not ``OFFSET``: an item that arrives while a
manager walks their inbox would shift every later offset by one, and one item would be shown
twice or never; "after this row" stays put, and costs an index seek rather than a scan past
the rows already read.

The cursor is the last row's key, as base64url JSON naming its list. It is validated, not
signed: it says only where to resume, and the list's query still decides what the caller may
see, so a made-up cursor shows nothing that walking the pages would not. What validation
refuses (a cursor cut short, edited into nonsense, or made by another list) is a 422 naming
``query.cursor``, answered like any other bad query parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import httpx
from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, TypeAdapter, ValidationError
from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Far more than any key here needs (a name of 120 characters and a uuid, encoded).
MAX_CURSOR_CHARS = 600
_VERSION = 1

R = TypeVar("R")
Key = tuple[Any, ...]
Direction = Literal["asc", "desc"]


class InvalidCursor(Exception):
    """A cursor this list did not make: malformed, cut short, or another list's."""


@dataclass(frozen=True)
class PageRequest:
    """Which page: the rows after ``after`` (the first page when None), at most ``limit``."""

    after: Key | None = None
    limit: int = DEFAULT_LIMIT


FIRST_PAGE = PageRequest()


@dataclass(frozen=True)
class Paged(Generic[R]):
    """One page of rows, and the cursor of the next (None: this is the last)."""

    rows: list[R]
    next_cursor: str | None


class Keyset:
    """One list's stable order, and the cursor that marks a place in it.

    ``Keyset("inbox", (InboxItem.created_at, "desc"), (InboxItem.id, "asc"))``: newest first,
    ties broken by id. The columns must be NOT NULL (a NULL compares as unknown and its row
    would fall out of every page) and the last unique (else rows that tie are split by a page
    boundary and one is skipped); both are checked here, when the store module loads. A list
    that only holds rows where a nullable column is set (returned episodes, by when their
    interview is due) says so with ``without_nulls=True``: its query then leaves out the rows
    where any of its columns is NULL, so none falls out of a page unseen.
    """

    def __init__(
        self,
        name: str,
        *order: tuple[InstrumentedAttribute[Any], Direction],
        without_nulls: bool = False,
    ) -> None:
        if not order:
            raise ValueError(f"keyset {name!r}: at least one column")
        columns = [attr.property.columns[0] for attr, _ in order]
        self._nullable = [
            attr for (attr, _), col in zip(order, columns, strict=True) if col.nullable
        ]
        if self._nullable and not without_nulls:
            raise ValueError(f"keyset {name!r}: {self._nullable[0]} may be NULL")
        if not (columns[-1].primary_key or columns[-1].unique):
            raise ValueError(f"keyset {name!r}: its last column must be unique")
        self.name = name
        self._order = order
        # A datetime in a cursor must carry its zone: a naive one would reach the database as
        # something no column holds (and UTCDateTime refuses it, which would be a 500).
        self._adapters: list[TypeAdapter[Any]] = [
            TypeAdapter(AwareDatetime if issubclass(t, datetime) else t)
            for t in (_python_type(name, col) for col in columns)
        ]

    # --- SQL --------------------------------------------------------------------------------

    def order_by(self) -> list[ColumnElement[Any]]:
        return [attr.desc() if d == "desc" else attr.asc() for attr, d in self._order]

    def after(self, key: Key) -> ColumnElement[bool]:
        """Rows after ``key`` in this order: (a, b) after (x, y) is a > x, or a = x and b > y,
        each comparison turned round for a descending column."""
        alternatives = []
        for n, (attr, direction) in enumerate(self._order):
            same = [a == key[i] for i, (a, _) in enumerate(self._order[:n])]
            beyond = attr < key[n] if direction == "desc" else attr > key[n]
            alternatives.append(and_(*same, beyond))
        return or_(*alternatives)

    def select(self, q: Select[R], page: PageRequest) -> Select[R]:
        """``q`` ordered, after the page's cursor, with one row more than the page holds."""
        for attr in self._nullable:
            q = q.where(attr.is_not(None))
        if page.after is not None:
            q = q.where(self.after(page.after))
        return q.order_by(*self.order_by()).limit(page.limit + 1)

    def cut(self, rows: Sequence[R], page: PageRequest) -> Paged[R]:
        """The page from ``select``'s rows: the extra row, if there, says there is more."""
        if len(rows) <= page.limit:
            return Paged(list(rows), None)
        shown = list(rows[: page.limit])
        return Paged(shown, self.encode(self.key_of(shown[-1])))

    def fetch(self, s: Session, q: Select[R], page: PageRequest) -> Paged[R]:
        return self.cut(s.scalars(self.select(q, page)).all(), page)

    def key_of(self, row: Any) -> Key:
        return tuple(getattr(row, attr.key) for attr, _ in self._order)

    # --- the cursor -------------------------------------------------------------------------

    def encode(self, key: Key) -> str:
        values = [a.dump_python(v, mode="json") for a, v in zip(self._adapters, key, strict=True)]
        raw = json.dumps([_VERSION, self.name, values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> Key:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            version, name, values = json.loads(raw)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidCursor("not a cursor this API made: pass next_cursor as it is") from exc
        if version != _VERSION or name != self.name:
            raise InvalidCursor("not a cursor of this list: pass this list's next_cursor")
        if not isinstance(values, list) or len(values) != len(self._adapters):
            raise InvalidCursor("not a cursor this API made: pass next_cursor as it is")
        try:
            return tuple(a.validate_python(v) for a, v in zip(self._adapters, values, strict=True))
        except ValidationError as exc:
            raise InvalidCursor("not a cursor this API made: pass next_cursor as it is") from exc


def _python_type(name: str, column: ColumnElement[Any]) -> type:
    """The Python type a column's values have, through any TypeDecorator (UTCDateTime)."""
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    python_type: type = sql_type.python_type
    if python_type is object:  # a cursor would then accept anything, and the query fail
        raise ValueError(f"keyset {name!r}: no Python type for the column {column}")
    return python_type


def page_query(keyset: Keyset) -> Any:
    """A route's ``cursor`` and ``limit`` query parameters, as a ``PageRequest`` for
    ``keyset``'s list: ``page: Annotated[PageRequest, page_query(INBOX)]``."""

    def page(
        cursor: Annotated[
            str | None,
            Query(
                max_length=MAX_CURSOR_CHARS,
                description="`next_cursor` of the previous page; leave out for the first.",
            ),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="At most this many on the page.")
        ] = DEFAULT_LIMIT,
    ) -> PageRequest:
        if not cursor:
            return PageRequest(limit=limit)
        try:
            return PageRequest(keyset.decode(cursor), limit)
        except InvalidCursor as exc:
            # Answered by the edge's validation handler: the same 422 as any bad parameter.
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(exc)}]
            ) from exc

    return Depends(page)


async def every_item(
    client: httpx.AsyncClient,
    url: str,
    params: Sequence[tuple[str, str | int]] = (),
    limit: int = MAX_LIMIT,
) -> list[Any]:
    """Every item of a list endpoint, its pages walked to the end: how a caller that needs
    the whole list reads one, rather than page one alone. Raises ``httpx.HTTPStatusError``
    for an answer that is not a success."""
    items: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        query = httpx.QueryParams(list(params)).set("limit", limit)
        if cursor is not None:
            query = query.set("cursor", cursor)
        resp = await client.get(url, params=query)
        resp.raise_for_status()
        body = resp.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        if cursor in seen:  # a server that answers the same page again would loop forever
            raise RuntimeError(f"{url} answered the cursor {cursor!r} twice")
        seen.add(cursor)
