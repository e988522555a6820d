"""Lists of missing episodes: what a Return Home Interview provider works from
(``GET /v1/missing-episodes?status=returned``). Dates, codes and the reporting agency's
references only: the police report's circumstances stay in the referral service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from mset_contract.paging import Page

# The lists of episodes there are: returned children whose interview is not yet recorded.
EpisodeListStatus = Literal["returned"]


class ReturnedEpisode(BaseModel):
    """A child who has returned and whose Return Home Interview is not yet recorded."""

    episode_id: UUID
    local_authority: str = Field(description="The authority responsible for the child.")
    case_referral_id: UUID | None = Field(description="The child's MSET case, where there is one.")
    reporting_agency_id: UUID
    partner_reference: str = Field(description="The reporting agency's reference (MFH).")
    agency_child_ref: str = Field(description="The reporting agency's identifier for the child.")
    reported_at: datetime
    returned_at: datetime
    located_in_authority: str | None = None
    rhi_due_at: datetime = Field(description="When the interview is due (72 hours by default).")


class ReturnedEpisodePage(Page[ReturnedEpisode]):
    """Returned episodes, the interview due soonest first."""
