"""The meetings list and an agenda, page by page, on SQLite and PostgreSQL. The meetings are
written to the store as the schedule's activity writes them (their cases are not the point
here: test_meeting_agenda.py draws agendas from real case workflows), and callers are
resolved by a stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mset_contract.agencies import AgencyPublic
from mset_contract.auth import Principal
from mset_contract.ledger import ShownTo
from mset_contract.meeting import AgendaReason, CaseSummary
from mset_contract.papers import PapersWho
from mset_contract.vocab import AgencyType, MeetingKind, RiskLevel, Role, Stage
from services.meeting.api import create_app
from services.meeting.domain import AgendaEntry
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store

LA = "northshire"
HELD = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


class _NoDirectory:
    async def lookup(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, AgencyPublic]:
        return {}


class _NoRecords:
    """The referral service holds none of these made-up cases: no `who` for any."""

    async def who(
        self, case_ids: Collection[uuid.UUID], shown: ShownTo | None = None
    ) -> dict[uuid.UUID, PapersWho]:
        return {}


@dataclass
class Meetings:
    store: Store
    transport: httpx.ASGITransport
    tokens: dict[str, Principal]

    def as_(self, role: Role) -> httpx.AsyncClient:
        token = f"tok-{role.value}"
        self.tokens[token] = Principal(
            kind="user",
            agency_id=uuid.uuid4(),
            agency_name="Northshire MSET Partnership",
            agency_type=AgencyType.local_authority,
            user_id=uuid.uuid4(),
            user_name="someone",
            role=role,
            # Serves another authority too: its meetings are readable, and left out of a
            # list asked for one authority.
            authorities=(LA, "eastmoor"),
        )
        return httpx.AsyncClient(
            transport=self.transport,
            base_url="http://meeting",
            headers={"Authorization": f"Bearer {token}"},
        )

    def meeting(self, held_at: datetime, entries: int = 0, la: str = LA) -> str:
        result = self.store.insert_meeting(
            kind=MeetingKind.pre_mset,
            local_authority=la,
            called_at=held_at - timedelta(days=7),
            held_at=held_at,
            origin=f"test:{uuid.uuid4()}",
            called_by=None,
            entries=[_entry(n) for n in range(entries)],
            now=datetime.now(UTC),
        )
        return str(result.meeting_id)


def _entry(n: int) -> AgendaEntry:
    referral = uuid.uuid4()
    case = CaseSummary.model_validate(
        {
            "referral_id": referral,
            "referring_agency_id": uuid.uuid4(),
            "local_authority": LA,
            "stage": Stage.awaiting_pre_mset,
            "submitted_at": HELD - timedelta(days=30 - n),
            "agreed_level": None,
            "triage": None,
            "missing_episodes": [],
            "open_actions": [],
            "breaches": [],
            "last_decision": None,
            "next_review_due": None,
            "reviews_total": 0,
        }
    )
    return AgendaEntry(
        referral_id=referral,
        reasons=[AgendaReason.new_referral],
        risk_level=RiskLevel.medium,
        waiting_since=case.submitted_at,
        case=case,
    )


@pytest.fixture
async def meetings(database_url: str) -> AsyncIterator[Meetings]:
    settings = MeetingSettings.model_validate(
        {"environment": "test", "database_url": database_url, "authorities": [LA]}
    )
    tokens: dict[str, Principal] = {}

    async def resolve(credential: str) -> Principal | None:
        return tokens.get(credential)

    # The lists never reach Temporal: the API's client is created lazily and never used.
    app = create_app(settings, resolver=resolve, directory=_NoDirectory(), records=_NoRecords())
    async with app.router.lifespan_context(app):
        yield Meetings(app.state.store, httpx.ASGITransport(app=app), tokens)


async def _walk(
    http: httpx.AsyncClient, url: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["next_cursor"] is not None:
        query = {**params, "limit": limit}
        if pages:
            query["cursor"] = pages[-1]["next_cursor"]
        resp = await http.get(url, params=query)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
    return pages


async def test_the_meetings_list_pages_latest_first_and_says_when_it_ends(
    meetings: Meetings,
) -> None:
    # Five of the authority's meetings, two held at the same time, and another authority's.
    held = [HELD + timedelta(days=d) for d in (0, 30, 30, 60, 90)]
    ids = [meetings.meeting(h) for h in held]
    elsewhere = meetings.meeting(HELD + timedelta(days=45), entries=2, la="eastmoor")

    async with meetings.as_(Role.panel_member) as http:
        pages = await _walk(http, "/v1/meetings", limit=2, local_authority=LA)
        agenda = (await http.get(f"/v1/meetings/{elsewhere}/agenda", params={"limit": 1})).json()
        crossed = await http.get("/v1/meetings", params={"cursor": agenda["next_cursor"]})

    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert pages[-1]["next_cursor"] is None
    seen = [m["meeting_id"] for p in pages for m in p["items"]]
    assert sorted(seen) == sorted(ids)  # each once, the other authority's left out
    stamps = [m["held_at"] for p in pages for m in p["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert crossed.status_code == 422  # an agenda's cursor is no place in the meetings list
    assert crossed.json()["errors"][0] == {
        "field": "query.cursor",
        "reason": "not a cursor of this list: pass this list's next_cursor",
    }


async def test_an_agenda_pages_in_its_own_order_for_every_role(meetings: Meetings) -> None:
    meeting_id = meetings.meeting(HELD, entries=5)
    for role in (Role.chair, Role.panel_member):
        async with meetings.as_(role) as http:
            pages = await _walk(http, f"/v1/meetings/{meeting_id}/agenda", limit=2)
        assert [len(p["items"]) for p in pages] == [2, 2, 1], role
        assert [i["position"] for p in pages for i in p["items"]] == [1, 2, 3, 4, 5]
        assert all(p["meeting_id"] == meeting_id for p in pages)  # each page says whose
        assert pages[-1]["next_cursor"] is None
    async with meetings.as_(Role.chair) as http:
        whole = (await http.get(f"/v1/meetings/{meeting_id}/agenda")).json()
        bad = await http.get(f"/v1/meetings/{meeting_id}/agenda", params={"limit": 201})
    assert len(whole["items"]) == 5 and whole["next_cursor"] is None  # default page: 50
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.limit"
