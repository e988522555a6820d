"""Agencies, as the referral service's directory knows them (it owns identity; this service
never reads its tables): an action's owner must exist, and the minutes name agencies.

The directory is asked over HTTP (``GET /v1/agencies?id=...``) with the MSET service token.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Protocol

import httpx

from mset_contract.agencies import AgencyPublic
from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_platform.paging import every_item
from services.meeting.domain import DecisionInvalid, MeetingError

# The directory answers at most this many ids per request.
BATCH = 100


class DirectoryUnavailable(MeetingError):
    """The referral service's agency directory could not be asked; nothing was recorded."""


class AgencyDirectory(Protocol):
    async def lookup(self, ids: Collection[uuid.UUID]) -> Mapping[uuid.UUID, AgencyPublic]:
        """The agencies among ``ids`` that exist (an unknown id is simply absent)."""


class HttpAgencyDirectory:
    def __init__(self, base_url: str, service_token: str, timeout: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )

    async def lookup(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, AgencyPublic]:
        wanted = sorted(set(ids))
        found: dict[uuid.UUID, AgencyPublic] = {}
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            try:
                # Every page: a directory that answered fewer per page than asked would
                # otherwise leave owners that exist looking unknown.
                items = await every_item(
                    self._client, "/v1/agencies", [("id", str(i)) for i in chunk]
                )
            except httpx.HTTPError as exc:
                raise DirectoryUnavailable(
                    "the agency directory (referral service) could not be asked just now"
                ) from exc
            for a in map(AgencyPublic.model_validate, items):
                found[a.agency_id] = a
        return found

    async def aclose(self) -> None:
        await self._client.aclose()


async def check_owners(
    directory: AgencyDirectory, body: PreMsetDecisionRequest | MsetReviewRequest
) -> None:
    """An MSET review's actions are owned by agencies that exist (before anything is sent)."""
    if not isinstance(body, MsetReviewRequest) or not body.actions:
        return
    known = await directory.lookup({a.owner_agency_id for a in body.actions})
    for n, action in enumerate(body.actions):
        if action.owner_agency_id not in known:
            raise DecisionInvalid(
                f"actions.{n}.owner_agency_id",
                f"no agency {action.owner_agency_id}: choose the owner from the agency "
                "directory (GET /v1/agencies on the referral API)",
            )


async def agency_names(
    directory: AgencyDirectory, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return {i: a.name for i, a in (await directory.lookup(ids)).items()}
