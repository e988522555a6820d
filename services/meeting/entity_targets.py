"""The people and places an MSET review's actions are aimed at, as the referral service keeps
them (ADR 0030; this service never reads its tables): before a decision is sent, each entity
an action names must be one the chair may see, of the kind its target aims at.

The referral service answers ``POST /v1/entity-targets/check``, asked with the chair's own
credential, so its need-to-know rule decides which entities this chair may name: the same
check its own ``mset-review`` route makes. Without it an action recorded here could name an
entity that does not exist, or one of another authority the chair may not see, and show on
that entity's page for everyone who can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from mset_contract.cases import MsetReviewRequest, NewAction, PreMsetDecisionRequest
from mset_contract.entities import ActionAimedAt, ActionTargetsCheck
from mset_platform.edge import ErrorBody
from services.meeting.domain import DecisionInvalid, MeetingError, NotAllowed


class EntityTargetsUnavailable(MeetingError):
    """The referral service could not be asked about the entities; nothing was recorded."""


class EntityTargets(Protocol):
    async def check(self, credential: str, actions: Sequence[NewAction]) -> None:
        """Return when every entity ``actions`` name may be aimed at by this caller; else
        ``DecisionInvalid`` naming ``actions.<n>.entity_id``."""


class HttpEntityTargets:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        # No credential of its own: each check is asked with the caller's.
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def check(self, credential: str, actions: Sequence[NewAction]) -> None:
        body = ActionTargetsCheck(
            actions=[ActionAimedAt(entity_id=a.entity_id, target=a.target) for a in actions]
        )
        try:
            resp = await self._client.post(
                "/v1/entity-targets/check",
                json=body.model_dump(mode="json", exclude_none=True),
                headers={"Authorization": f"Bearer {credential}"},
            )
        except httpx.HTTPError as exc:
            raise EntityTargetsUnavailable(
                "the referral service could not be asked about the people and places the "
                "actions are aimed at just now"
            ) from exc
        if resp.status_code == 204:
            return
        try:
            answer = ErrorBody.model_validate(resp.json())
        except ValueError:
            answer = ErrorBody(detail=resp.text[:200] or f"status {resp.status_code}")
        if resp.status_code == 422 and answer.errors:
            first = answer.errors[0]
            raise DecisionInvalid(first.field, first.reason)
        if resp.status_code == 403:
            raise NotAllowed(answer.detail)
        raise EntityTargetsUnavailable(
            f"the referral service did not check the people and places the actions are "
            f"aimed at just now ({resp.status_code})"
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def check_entity_targets(
    targets: EntityTargets,
    credential: str | None,
    body: PreMsetDecisionRequest | MsetReviewRequest,
) -> None:
    """An MSET review whose actions name entities: each one the caller may aim at (before
    anything is sent). Other decisions, and plans naming no entity, are not asked about."""
    if not isinstance(body, MsetReviewRequest):
        return
    if not any(a.entity_id for a in body.actions):
        return
    await targets.check(credential or "", body.actions)
