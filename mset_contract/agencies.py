"""The agency directory the referral service keeps (it owns identity): which agencies exist,
their names, types and authorities. Staff choose an action's owner from it, and the other
services name agencies with it (``GET /v1/agencies`` on the referral API)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.paging import Page
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import AgencyType


class AgencyPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    agency_id: UUID
    name: str
    type: AgencyType
    local_authority: LocalAuthorityCode | None = Field(
        default=None, description="The authority the agency belongs to, where one."
    )
    rhi_provider_for: list[LocalAuthorityCode] = Field(
        default_factory=list,
        description="The authorities that commission it for Return Home Interviews.",
    )


class AgencyPage(Page[AgencyPublic]):
    """Agencies in name order."""
