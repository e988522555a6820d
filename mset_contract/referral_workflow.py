"""Inputs, results and queries of ``ReferralWorkflow``.

Workflow payloads carry ids, codes, levels and dates only: the child's details stay in the
referral service's database, so Temporal's history holds no name, date of birth, address or
free text.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from mset_contract.vocab import RiskLevel, Stage

REFERRAL_WORKFLOW = "ReferralWorkflow"


class StartReferralInput(BaseModel):
    referral_id: UUID
    agency_id: UUID
    local_authority: str
    submitted_at: datetime
    referrer_level: RiskLevel


class ReferralState(BaseModel):
    referral_id: UUID
    agency_id: UUID
    local_authority: str
    stage: Stage
    submitted_at: datetime
    referrer_level: RiskLevel


class RecordStageInput(BaseModel):
    """Activity ``referral.record_stage``: keep the referral service's read model current."""

    referral_id: UUID
    stage: Stage
    suggested_level: RiskLevel | None = None
    next_deadline: datetime | None = None
    at: datetime


class RecordStageResult(BaseModel):
    updated: bool
