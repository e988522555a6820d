"""Who each case is about, as its owner, the referral service, says (the partner's child
reference, age, gender, legal status, area, the referring agency by name): asked over HTTP
with the MSET service token (``GET /v1/cases/who?id=...``) each time an agenda or minutes are
shown, naming the reader they are shown to, so that the referral service records the
disclosure in its information-sharing ledger before it answers (ADR 0023). This service never
stores it: it is not in the agenda's snapshot, the meeting tables, workflow history or any
event, so a correction in the referral service shows at once and the child's details stay with
the service that holds the tool.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Protocol

import httpx

from mset_contract.ledger import ShownTo
from mset_contract.papers import CaseWhoPage, PapersWho
from services.meeting.domain import MeetingError

# The referral service answers at most this many cases per request.
BATCH = 100


class RecordsUnavailable(MeetingError):
    """The referral service could not be asked who the cases are about just now."""


class CaseRecords(Protocol):
    async def who(
        self, case_ids: Collection[uuid.UUID], shown: ShownTo | None = None
    ) -> Mapping[uuid.UUID, PapersWho]:
        """Who each case among ``case_ids`` is about (a case it does not hold is absent);
        ``shown``: to whom they are shown, for the information-sharing ledger."""


class HttpCaseRecords:
    def __init__(self, base_url: str, service_token: str, timeout: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )

    async def who(
        self, case_ids: Collection[uuid.UUID], shown: ShownTo | None = None
    ) -> dict[uuid.UUID, PapersWho]:
        wanted = sorted(set(case_ids))
        # The reader, so that the referral service records each case shown to them (one
        # ledger entry per case: ADR 0023); none is shown before it is recorded.
        reader: list[tuple[str, str]] = []
        if shown is not None:
            reader = [("for_agency", str(shown.agency_id)), ("view", shown.view.value)]
            reader += [("for_user", str(shown.user_id))] if shown.user_id else []
            reader += [("for_role", shown.role.value)] if shown.role else []
            reader += [("meeting_id", str(shown.meeting_id))] if shown.meeting_id else []
        found: dict[uuid.UUID, PapersWho] = {}
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            params = httpx.QueryParams([*(("id", str(i)) for i in chunk), *reader])
            try:
                resp = await self._client.get("/v1/cases/who", params=params)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                raise RecordsUnavailable(
                    "the referral service could not be asked who the cases are about just now"
                ) from exc
            for c in CaseWhoPage.model_validate(resp.json()).cases:
                found[c.case_id] = c.who
        return found

    async def aclose(self) -> None:
        await self._client.aclose()
