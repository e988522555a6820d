"""Inputs and results of the inbox re-escalation timer (``workflows/inbox_reescalation.py``,
hosted by the notifications worker on its own task queue) and of the activity it calls.
Plain pydantic: safe in the sandbox. The names are in ``mset_contract/temporal.py``."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from mset_contract.events import ReferralEscalated


class ReescalationInput(BaseModel):
    item_id: uuid.UUID
    after_seconds: float = Field(gt=0)


class ReescalationResult(BaseModel):
    outcome: Literal["acknowledged", "reescalated", "top_of_line", "not_found"]
    event_id: uuid.UUID | None = None


class ReescalateInput(BaseModel):
    """Activity ``notifications.reescalate``: if the item is still unacknowledged, mark it
    re-escalated and return the escalation for the next role up the line."""

    item_id: uuid.UUID
    workflow_id: str


class ReescalateResult(BaseModel):
    outcome: Literal["acknowledged", "reescalated", "top_of_line", "not_found"]
    event: ReferralEscalated | None = None
