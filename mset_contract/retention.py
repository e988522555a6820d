"""The retention sweep's inputs and results: ``RetentionSweepWorkflow`` and the activities it
calls on each service that holds a child's records (docs/retention.md, ADR 0024).

Ids and counts only. The child's date of birth (which decides when a record falls due) stays
in the referral service's tables: no due date, birthday or reference enters the sweep's
history, because a due date of "the 25th birthday" would give the birthday away.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.temporal import (
    MEETING_TASK_QUEUE,
    NOTIFICATIONS_TASK_QUEUE,
    REFERRAL_TASK_QUEUE,
)

# What the sweep erases in each store, as "<service>.<record kind>" → rows (or executions).
Counts = dict[str, int]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetentionSweepInput(_Model):
    # How many children one run erases before it continues as new (its history stays short).
    batch: int = Field(default=50, ge=1, le=500)
    # Each service's own queue (tests give fresh ones).
    referral_task_queue: str = REFERRAL_TASK_QUEUE
    meeting_task_queue: str = MEETING_TASK_QUEUE
    notifications_task_queue: str = NOTIFICATIONS_TASK_QUEUE


class RetentionSweepResult(_Model):
    erased: int = 0
    # Children whose erasure failed this run (retried by the next run: every step is
    # idempotent).
    failed: int = 0
    record_ids: list[UUID] = Field(default_factory=list)


class RetentionSubject(_Model):
    """One child's records whose time has come, by id: every referral (the cases, their
    reassessments, re-referrals) and every missing episode. The ids every other store keys
    the child's records by (a case's id is its first referral's)."""

    referral_ids: list[UUID]
    episode_ids: list[UUID] = Field(default_factory=list)

    @property
    def subject_ids(self) -> list[UUID]:
        """Every id another store may hold the child's records under (an event's subject is
        a case id, or an episode id for an episode with no case)."""
        return [*self.referral_ids, *self.episode_ids]


class DueInput(_Model):
    limit: int = Field(ge=1, le=500)


class DueResult(_Model):
    subjects: list[RetentionSubject]


class BeginErasureInput(_Model):
    subject: RetentionSubject
    # The sweep's workflow id, kept on the record (which run erased it).
    sweep_id: str


class ErasureRef(_Model):
    record_id: UUID
    # False: the child's records are no longer due (a new referral arrived since the list
    # was made): nothing is erased.
    still_due: bool = True


class EraseInput(_Model):
    """What another service erases: everything it holds keyed by any of these ids (case
    ids, episode ids)."""

    subject_ids: list[UUID]


class EraseResult(_Model):
    counts: Counts = Field(default_factory=dict)


class RecordProgressInput(_Model):
    record_id: UUID
    counts: Counts


class FinishErasureInput(_Model):
    record_id: UUID
    subject: RetentionSubject


class FinishErasureResult(_Model):
    counts: Counts = Field(default_factory=dict)
