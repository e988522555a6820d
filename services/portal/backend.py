"""The portal's backend-for-frontend client: every read and write goes to the service that
owns the record, with the signed-in person's own credential, so each access rule stays in
that service (docs/access.md). The portal keeps none of the answers.

A service's refusal comes back as an exception the pages turn into what a person sees:
``Refused`` (403: a 403 page), ``NotFound`` (404: the same page a missing record gets, so a
refusal never tells that a record exists), ``Invalid`` (422: the GOV.UK error summary, each
error beside its field), ``Conflict`` (409), ``SignedOut`` (401: the credential was revoked
or has expired: sign in again) and ``Unavailable`` (a service not answering).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from mset_contract.agencies import AgencyPage, AgencyPublic
from mset_contract.cases import (
    CasePage,
    CaseView,
    MsetReviewCreate,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.episodes import ReturnedEpisodePage
from mset_contract.meeting import (
    AgendaPublic,
    AttendancePublic,
    AttendanceUpdate,
    ItemDecisionPublic,
    MeetingPage,
    MeetingPublic,
    ScheduleTriggered,
)
from mset_contract.operations import CaseAggregates, NotificationAggregates
from mset_contract.papers import PanelPapers
from mset_contract.referral import RhiOutcomeCreate
from mset_contract.referral_workflow import (
    MissingEpisodeState,
    MsetReviewRecorded,
    PreMsetDecisionResult,
    RhiRecorded,
)
from mset_contract.vocab import Stage
from mset_platform.edge import ErrorBody, FieldError
from services.notifications.schemas import ActionedCreate, InboxItemPublic, InboxPage, InboxState

M = TypeVar("M", bound=BaseModel)


class ServiceAnswer(Exception):
    """A service said no; ``detail`` and ``errors`` are its words (ErrorBody)."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(body.detail)
        self.status = status
        self.detail = body.detail
        self.errors: list[FieldError] = list(body.errors)


class Refused(ServiceAnswer):
    pass


class NotFound(ServiceAnswer):
    pass


class Invalid(ServiceAnswer):
    pass


class Conflict(ServiceAnswer):
    pass


class SignedOut(ServiceAnswer):
    pass


class Unavailable(Exception):
    """A service did not answer (or answered 5xx): nothing was done, try again shortly."""

    def __init__(self, service: str) -> None:
        super().__init__(f"the {service} service is not answering just now")
        self.service = service


@dataclass
class Download:
    """A document passed on as the service sends it, chunk by chunk (the board pack)."""

    kind: str
    disposition: str | None
    chunks: AsyncIterator[bytes]


_BY_STATUS: dict[int, type[ServiceAnswer]] = {
    401: SignedOut,
    403: Refused,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


class Backend:
    """One HTTP client per service, shared by every request; each call carries the caller's
    own credential."""

    def __init__(
        self, referral_url: str, meeting_url: str, notifications_url: str, timeout: float
    ) -> None:
        self._clients = {
            "referral": httpx.AsyncClient(base_url=referral_url, timeout=timeout),
            "meeting": httpx.AsyncClient(base_url=meeting_url, timeout=timeout),
            "notifications": httpx.AsyncClient(base_url=notifications_url, timeout=timeout),
        }

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def _call(
        self,
        service: str,
        method: str,
        path: str,
        credential: str,
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
    ) -> Any:
        client = self._clients[service]
        try:
            resp = await client.request(
                method,
                path,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=None if body is None else body.model_dump(mode="json", exclude_none=True),
                headers={"Authorization": f"Bearer {credential}"},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(service) from exc
        if resp.status_code >= 500:
            raise Unavailable(service)
        if resp.status_code >= 400:
            try:
                answer = ErrorBody.model_validate(resp.json())
            except ValueError:
                answer = ErrorBody(detail=resp.text[:200] or resp.reason_phrase)
            raise _BY_STATUS.get(resp.status_code, Invalid)(resp.status_code, answer)
        return resp.json()

    async def _bytes(
        self, service: str, path: str, credential: str
    ) -> tuple[bytes, str, str | None]:
        """A document (minutes as Markdown or PDF): its bytes, type and suggested name."""
        client = self._clients[service]
        try:
            resp = await client.get(path, headers={"Authorization": f"Bearer {credential}"})
        except httpx.HTTPError as exc:
            raise Unavailable(service) from exc
        if resp.status_code >= 500:
            raise Unavailable(service)
        if resp.status_code >= 400:
            try:
                answer = ErrorBody.model_validate(resp.json())
            except ValueError:
                answer = ErrorBody(detail=resp.text[:200] or resp.reason_phrase)
            raise _BY_STATUS.get(resp.status_code, Invalid)(resp.status_code, answer)
        kind = resp.headers.get("content-type", "application/octet-stream")
        return resp.content, kind, resp.headers.get("content-disposition")

    async def _get(self, model: type[M], service: str, path: str, credential: str, **kw: Any) -> M:
        return model.model_validate(await self._call(service, "GET", path, credential, **kw))

    # --- notifications: the inbox -------------------------------------------------------------

    async def inbox(
        self, credential: str, state: InboxState, cursor: str | None, limit: int
    ) -> InboxPage:
        params = {"state": state, "cursor": cursor, "limit": limit}
        return await self._get(InboxPage, "notifications", "/v1/inbox", credential, params=params)

    async def inbox_item(self, credential: str, item_id: uuid.UUID) -> InboxItemPublic:
        return await self._get(InboxItemPublic, "notifications", f"/v1/inbox/{item_id}", credential)

    async def acknowledge(self, credential: str, item_id: uuid.UUID) -> InboxItemPublic:
        path = f"/v1/inbox/{item_id}/acknowledge"
        found = await self._call("notifications", "POST", path, credential)
        return InboxItemPublic.model_validate(found)

    async def actioned(
        self, credential: str, item_id: uuid.UUID, note: ActionedCreate
    ) -> InboxItemPublic:
        path = f"/v1/inbox/{item_id}/actioned"
        found = await self._call("notifications", "POST", path, credential, body=note)
        return InboxItemPublic.model_validate(found)

    # --- referral: cases and decisions -----------------------------------------

    async def case(self, credential: str, referral_id: uuid.UUID) -> CaseView:
        return await self._get(CaseView, "referral", f"/v1/referrals/{referral_id}", credential)

    async def papers(self, credential: str, referral_id: uuid.UUID) -> PanelPapers:
        path = f"/v1/referrals/{referral_id}/papers"
        return await self._get(PanelPapers, "referral", path, credential)

    async def pre_mset_decision(
        self, credential: str, referral_id: uuid.UUID, decision: PreMsetDecisionRequest
    ) -> PreMsetDecisionResult:
        path = f"/v1/referrals/{referral_id}/pre-mset-decision"
        done = await self._call("referral", "POST", path, credential, body=decision)
        return PreMsetDecisionResult.model_validate(done)

    async def mset_review(
        self, credential: str, referral_id: uuid.UUID, review: MsetReviewCreate
    ) -> MsetReviewRecorded:
        """The MSET review and its plan's actions (chair), named by its ``review_id``."""
        path = f"/v1/referrals/{referral_id}/mset-review"
        done = await self._call("referral", "POST", path, credential, body=review)
        return MsetReviewRecorded.model_validate(done)

    async def cases_at(
        self,
        credential: str,
        stage: Stage,
        local_authority: str | None,
        cursor: str | None,
        limit: int,
    ) -> CasePage:
        """One page of the cases at ``stage`` the caller serves (never one case at a time)."""
        params = {
            "stage": stage.value,
            "local_authority": local_authority,
            "cursor": cursor,
            "limit": limit,
        }
        return await self._get(CasePage, "referral", "/v1/referrals", credential, params=params)

    async def agencies(self, credential: str, most: int = 1000) -> list[AgencyPublic]:
        """The partnership's agencies by name (to choose an action's owner): the directory,
        a page of 200 at a time, at most ``most`` of them."""
        found: list[AgencyPublic] = []
        cursor: str | None = None
        while len(found) < most:
            params = {"cursor": cursor, "limit": 200}
            page = await self._get(
                AgencyPage, "referral", "/v1/agencies", credential, params=params
            )
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        return found

    async def agency_names(
        self, credential: str, ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, str]:
        """The names of these agencies (the owners of a page's actions), asked of the
        directory by id, 100 at a time: never the whole directory, never one by one. An id
        the directory no longer holds is absent."""
        wanted = sorted(set(ids))
        names: dict[uuid.UUID, str] = {}
        for start in range(0, len(wanted), 100):
            chunk = [str(i) for i in wanted[start : start + 100]]
            params: dict[str, Any] = {"id": chunk, "limit": 100}
            page = await self._get(
                AgencyPage, "referral", "/v1/agencies", credential, params=params
            )
            names.update((a.agency_id, a.name) for a in page.items)
        return names

    # --- referral: returned children and their interviews ----------------------------------

    async def returned(
        self, credential: str, cursor: str | None, limit: int
    ) -> ReturnedEpisodePage:
        """One page of the returned children awaiting their interview (never one by one)."""
        params = {"status": "returned", "cursor": cursor, "limit": limit}
        return await self._get(
            ReturnedEpisodePage, "referral", "/v1/missing-episodes", credential, params=params
        )

    async def episode(self, credential: str, episode_id: uuid.UUID) -> MissingEpisodeState:
        path = f"/v1/missing-episodes/{episode_id}"
        return await self._get(MissingEpisodeState, "referral", path, credential)

    async def record_rhi(
        self, credential: str, episode_id: uuid.UUID, outcome: RhiOutcomeCreate
    ) -> RhiRecorded:
        path = f"/v1/missing-episodes/{episode_id}/rhi"
        done = await self._call("referral", "POST", path, credential, body=outcome)
        return RhiRecorded.model_validate(done)

    # --- meeting: meetings and their agendas ---------------------------------------------------

    async def meetings(
        self, credential: str, cursor: str | None, limit: int, **filters: str | None
    ) -> MeetingPage:
        params = {"cursor": cursor, "limit": limit, **filters}
        return await self._get(MeetingPage, "meeting", "/v1/meetings", credential, params=params)

    async def agenda(
        self, credential: str, meeting_id: uuid.UUID, cursor: str | None, limit: int
    ) -> AgendaPublic:
        path = f"/v1/meetings/{meeting_id}/agenda"
        params = {"cursor": cursor, "limit": limit}
        return await self._get(AgendaPublic, "meeting", path, credential, params=params)

    async def meeting(self, credential: str, meeting_id: uuid.UUID) -> MeetingPublic:
        """The meeting, its status and its attendance."""
        path = f"/v1/meetings/{meeting_id}"
        return await self._get(MeetingPublic, "meeting", path, credential)

    async def set_attendance(
        self, credential: str, meeting_id: uuid.UUID, attendance: AttendanceUpdate
    ) -> AttendancePublic:
        """Who attended and who sent apologies, by agency (coordinator): replaces the list."""
        path = f"/v1/meetings/{meeting_id}/attendance"
        done = await self._call("meeting", "PUT", path, credential, body=attendance)
        return AttendancePublic.model_validate(done)

    async def refresh_agenda(self, credential: str, meeting_id: uuid.UUID) -> AgendaPublic:
        """Draw the agenda up again from the cases as they are now (coordinator)."""
        path = f"/v1/meetings/{meeting_id}/agenda/refresh"
        done = await self._call("meeting", "POST", path, credential)
        return AgendaPublic.model_validate(done)

    async def decide_item(
        self,
        credential: str,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        decision: PreMsetDecisionRequest | MsetReviewRequest,
    ) -> ItemDecisionPublic:
        """The panel's decision on one agenda item, through the meeting service (which sends
        it to the case and keeps it for the minutes)."""
        path = f"/v1/meetings/{meeting_id}/items/{item_id}/decision"
        done = await self._call("meeting", "POST", path, credential, body=decision)
        return ItemDecisionPublic.model_validate(done)

    async def minutes(
        self, credential: str, meeting_id: uuid.UUID, fmt: str
    ) -> tuple[bytes, str, str | None]:
        """The meeting's minutes as the meeting service writes them (``md`` or ``pdf``), as
        the caller's role may see them."""
        return await self._bytes("meeting", f"/v1/meetings/{meeting_id}/minutes.{fmt}", credential)

    async def call_meeting(
        self, credential: str, local_authority: str, kind: str
    ) -> ScheduleTriggered:
        """Call an authority's Pre-MSET or MSET meeting now (its schedule, triggered)."""
        path = f"/v1/schedules/{local_authority}/{kind}/trigger"
        done = await self._call("meeting", "POST", path, credential)
        return ScheduleTriggered.model_validate(done)

    # --- operations: counts only (the ops dashboard) -----------------------------------------

    async def case_aggregates(self, credential: str) -> CaseAggregates:
        return await self._get(CaseAggregates, "referral", "/v1/aggregates/cases", credential)

    async def operation_aggregates(self, credential: str) -> NotificationAggregates:
        path = "/v1/aggregates/operations"
        return await self._get(NotificationAggregates, "notifications", path, credential)

    # --- referral: board reports -------------------------------------------------------------

    async def report(self, credential: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """A board report's JSON (counts; with ``suppress``, as published)."""
        found: dict[str, Any] = await self._call(
            "referral", "GET", f"/v1/reports/{name}", credential, params=params
        )
        return found

    async def report_svg(self, credential: str, name: str, params: dict[str, Any]) -> str:
        """The same report's charts, each beside its table, as one SVG document."""
        client = self._clients["referral"]
        try:
            resp = await client.get(
                f"/v1/reports/{name}",
                params={**params, "format": "svg"},
                headers={"Authorization": f"Bearer {credential}"},
            )
        except httpx.HTTPError as exc:
            raise Unavailable("referral") from exc
        _raise_for(resp, "referral")
        return resp.text

    async def board_pack(self, credential: str, params: dict[str, Any]) -> Download:
        """The board pack PDF, passed on chunk by chunk as the referral service sends it."""
        client = self._clients["referral"]
        request = client.build_request(
            "GET",
            "/v1/reports/board-pack.pdf",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {credential}"},
            # Every report of the period is made before the first byte: give it time.
            timeout=httpx.Timeout(120.0, connect=5.0),
        )
        try:
            resp = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise Unavailable("referral") from exc
        if resp.status_code >= 400:
            await resp.aread()
            await resp.aclose()
            _raise_for(resp, "referral")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_bytes():
                    yield chunk
            finally:
                await resp.aclose()

        kind = resp.headers.get("content-type", "application/pdf")
        return Download(kind, resp.headers.get("content-disposition"), chunks())


def _raise_for(resp: httpx.Response, service: str) -> None:
    """A service's refusal as the exception its page shows; nothing for a 2xx."""
    if resp.status_code >= 500:
        raise Unavailable(service)
    if resp.status_code >= 400:
        try:
            answer = ErrorBody.model_validate(resp.json())
        except ValueError:
            answer = ErrorBody(detail=resp.text[:200] or resp.reason_phrase)
        raise _BY_STATUS.get(resp.status_code, Invalid)(resp.status_code, answer)
