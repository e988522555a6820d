"""The one paging mechanism every list uses: its cursor, and how the edge answers a bad one."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mset_platform.edge import install_error_handlers
from mset_platform.paging import InvalidCursor, Keyset, PageRequest, page_query
from services.meeting.store import AGENDA_ORDER
from services.notifications.store import INBOX_ORDER
from services.referral.store import AGENCY_ORDER

WHEN = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
ID = uuid.UUID("0b7e0b5e-6a55-4e0c-9a3e-1f2d3c4b5a69")


def _raw(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _forge(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("keyset", "key"),
    [
        (INBOX_ORDER, (WHEN, ID)),
        (AGENCY_ORDER, ("Aston Police / Missing Persons Unit", ID)),
        (AGENDA_ORDER, (7, ID)),
    ],
)
def test_a_cursor_gives_back_exactly_the_key_it_was_made_from(keyset: Keyset, key: Any) -> None:
    cursor = keyset.encode(key)
    assert keyset.decode(cursor) == key
    assert all(c.isalnum() or c in "-_" for c in cursor)  # safe in a query string as it is


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        INBOX_ORDER.encode((WHEN, ID))[:-6],  # cut short
        AGENCY_ORDER.encode(("Aston Police", ID)),  # another list's
        _forge([2, "inbox", [WHEN.isoformat(), str(ID)]]),  # a version we never made
        _forge([1, "inbox", ["2026-03-01T09:30:00", str(ID)]]),  # no time zone
        _forge([1, "inbox", ["yesterday", str(ID)]]),
        _forge([1, "inbox", [WHEN.isoformat(), "not-a-uuid"]]),
        _forge([1, "inbox", [WHEN.isoformat()]]),  # a value missing
        _forge({"v": 1, "list": "inbox"}),
        _forge("inbox"),
        _forge(42),
    ],
)
def test_a_cursor_this_list_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        INBOX_ORDER.decode(cursor)


def test_an_edited_cursor_is_refused_or_names_a_place_in_the_same_list() -> None:
    # Not signed (see mset_platform/paging.py): an edit that still parses only moves where
    # the walk resumes, within the rows the list's own query lets this caller see.
    payload = _raw(INBOX_ORDER.encode((WHEN, ID)))
    payload[2][0] = "2025-01-01T00:00:00+00:00"
    assert INBOX_ORDER.decode(_forge(payload)) == (datetime(2025, 1, 1, tzinfo=UTC), ID)


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "paging_rows"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(20), nullable=True)


def test_an_order_that_could_skip_rows_is_refused_when_it_is_declared() -> None:
    with pytest.raises(ValueError, match="may be NULL"):
        Keyset("rows", (_Row.note, "asc"), (_Row.id, "asc"))
    with pytest.raises(ValueError, match="unique"):
        Keyset("rows", (_Row.name, "asc"))  # two rows of one name: a page could split them
    Keyset("rows", (_Row.name, "asc"), (_Row.id, "asc"))


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things")
    async def things(page: Annotated[PageRequest, page_query(INBOX_ORDER)]) -> dict[str, Any]:
        return {"after": [str(v) for v in page.after] if page.after else None, "limit": page.limit}

    return app


async def _get(**params: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get("/things", params=params)


async def test_the_edge_reads_cursor_and_limit_with_a_default_and_a_maximum() -> None:
    first = await _get()
    assert first.status_code == 200 and first.json() == {"after": None, "limit": 50}
    later = await _get(cursor=INBOX_ORDER.encode((WHEN, ID)), limit=200)
    assert later.json() == {"after": [str(WHEN), str(ID)], "limit": 200}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": AGENCY_ORDER.encode(("Aston Police", ID))}, "query.cursor"),
        ({"cursor": "x" * 601}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
    ],
)
async def test_a_bad_cursor_or_limit_is_a_422_naming_the_field(
    params: dict[str, Any], field: str
) -> None:
    resp = await _get(**params)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert field in body["detail"]
