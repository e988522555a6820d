"""Decisions taken in a meeting go to the meeting service, which keeps the meeting's record.

A chair may record a Pre-MSET decision or an MSET review through the referral API with the
``meeting_id`` of the meeting that took it. The meeting's minutes list every decision taken
in it, so such a decision takes the one way in that the meeting's own decisions take: the
meeting service's ``POST /v1/meetings/{id}/cases/{case id}/decision``, which claims the case's
agenda item, sends the decision to the case (``mset_platform.cases``) and records it. It is
sent with the chair's own credential: the meeting service decides, as for any caller, whether
this chair may decide there. Its answer is told to the caller unchanged, but for an unknown
meeting or a case not on its agenda, which is a 422 naming ``meeting_id``.
"""

from __future__ import annotations

import uuid

import httpx

from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.meeting import ItemDecisionPublic
from mset_platform.edge import ErrorBody
from services.referral.domain import ReferralError, RequestInvalid


class MeetingRefused(ReferralError):
    """The meeting service refused the decision (nothing was recorded): its status and
    words, told to the caller as they are."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(body.detail)
        self.status = status
        self.body = body


class MeetingsUnavailable(ReferralError):
    """The meeting service could not be asked, or did not answer in time."""


class HttpMeetings:
    def __init__(self, base_url: str, timeout: float = 45.0) -> None:
        # Longer than the meeting service's own wait for the case (30 s by default), so its
        # 503 comes first; a timeout here is a 503 too, and the retry is recorded once.
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def decide(
        self,
        credential_headers: dict[str, str],
        meeting_id: uuid.UUID,
        case_id: uuid.UUID,
        body: PreMsetDecisionRequest | MsetReviewRequest,
    ) -> ItemDecisionPublic:
        try:
            resp = await self._client.post(
                f"/v1/meetings/{meeting_id}/cases/{case_id}/decision",
                json=body.model_dump(mode="json", exclude_none=True),
                headers=credential_headers,
            )
        except httpx.HTTPError as exc:
            raise MeetingsUnavailable(
                "the meeting service could not be reached just now; please retry (the same "
                "review or decision id is recorded once)"
            ) from exc
        if resp.status_code == 200:
            return ItemDecisionPublic.model_validate(resp.json())
        try:
            answer = ErrorBody.model_validate(resp.json())
        except ValueError:
            answer = ErrorBody(detail=resp.text[:200] or f"status {resp.status_code}")
        if resp.status_code == 404:
            raise RequestInvalid("meeting_id", answer.detail)
        if resp.status_code in (401, 500, 502, 503, 504):
            raise MeetingsUnavailable(
                f"the meeting service could not record it just now ({answer.detail}); please "
                "retry (the same review or decision id is recorded once)"
            )
        raise MeetingRefused(resp.status_code, answer)

    async def aclose(self) -> None:
        await self._client.aclose()
