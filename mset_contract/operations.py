"""What operations read of the platform's state: counts only, never a case, a child or an
event id (the ops dashboard of the staff portal, issue 14). Each service answers for what it
owns: the referral service its cases, their deadlines and the workflows; the notifications
service its inbox, breaches, dead letters, consumer lag and parked webhooks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mset_contract.vocab import Stage


class StageCount(BaseModel):
    stage: Stage
    local_authority: str
    count: int = Field(ge=0)


class AuthorityCount(BaseModel):
    local_authority: str
    count: int = Field(ge=0)


class CaseAggregates(BaseModel):
    """``GET :8000/v1/aggregates/cases``: open cases by stage and authority, and their next
    deadlines, from the referral service's read model; failed workflows from Temporal."""

    as_of: datetime
    open_cases: list[StageCount]
    due_within_7_days: list[AuthorityCount]
    overdue: list[AuthorityCount]
    # Workflow executions of the namespace that closed as failed or timed out in the last
    # 7 days; None when Temporal did not answer in time (the page says "not known").
    failed_workflows: int | None = None
    failed_since: datetime
    namespace: str


class KindCount(BaseModel):
    kind: str
    local_authority: str
    count: int = Field(ge=0)


class UrgencyCount(BaseModel):
    kind: str
    urgency: str
    local_authority: str
    count: int = Field(ge=0)


class GroupCount(BaseModel):
    consumer_group: str
    count: int = Field(ge=0)


class NotificationAggregates(BaseModel):
    """``GET :8003/v1/aggregates/operations``: the inbox items nobody has acknowledged, the
    breaches escalated, the messages dead-lettered, consumer lag and parked webhooks."""

    as_of: datetime
    unacknowledged: list[UrgencyCount]
    breaches: list[KindCount]
    dead_letters: list[GroupCount]
    dead_letters_last_24h: int = Field(ge=0)
    consumer_lag: list[GroupCount]
    parked_webhooks: int = Field(ge=0)
