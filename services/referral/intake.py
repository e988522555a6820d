"""Accepting a Risk Assessment Tool: record it, start its workflow, answer idempotently.

Order matters for "nothing accepted is ever lost, nothing half-written is left behind":
the row is committed first (so a retry can find it), then the workflow is started under a
workflow id derived from the row, then the row is marked started. A partner is told 202
only after both exist. If Temporal cannot be reached the new row is removed and the partner
is told 503; if even that removal fails, the partner's retry finds the unstarted row and
completes the start (the workflow id is fixed, so this can never start a second workflow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.referral import ReferralAccepted, ReferralCreate, ReferralPublic
from mset_contract.referral_workflow import StartReferralInput
from mset_contract.temporal import referral_workflow_id
from mset_contract.vocab import RiskLevel, Stage
from services.referral.domain import (
    IdempotencyKeyReused,
    NotAPartnerSystem,
    ReferralNotFound,
    WorkflowUnavailable,
    may_read_referral,
)
from services.referral.store import Disclosure, Referral, Store


class WorkflowStarter(Protocol):
    async def start_referral(self, workflow_id: str, inp: StartReferralInput) -> None:
        """Start the referral's workflow; succeed quietly if it already exists."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self, store: Store, starter: WorkflowStarter, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.store = store
        self.starter = starter
        self.clock = clock

    async def submit(
        self, principal: Principal, tool: ReferralCreate, idempotency_key: str | None
    ) -> ReferralAccepted:
        if principal.kind != "agency":
            raise NotAPartnerSystem("submit referrals with your agency's API key (X-API-Key)")
        existing = await run_in_threadpool(
            self._find_existing, principal.agency_id, tool.partner_reference, idempotency_key
        )
        if existing is not None:
            return await self._answer_again(existing)
        row, created = await run_in_threadpool(self._insert, principal, tool, idempotency_key)
        if not created:
            return await self._answer_again(row)
        try:
            await self.starter.start_referral(row.workflow_id, _start_input(row))
        except Exception as exc:
            await run_in_threadpool(self._remove_unstarted, row.id)
            raise WorkflowUnavailable(
                "the referral could not be accepted now; nothing was recorded, please retry"
            ) from exc
        await run_in_threadpool(self._mark_started, row.id)
        return _accepted(row, duplicate=False)

    async def _answer_again(self, row: Referral) -> ReferralAccepted:
        if not row.workflow_started:
            # An earlier attempt recorded the row but could not confirm the workflow.
            try:
                await self.starter.start_referral(row.workflow_id, _start_input(row))
            except Exception as exc:
                raise WorkflowUnavailable(
                    "the referral is recorded but its workflow could not be started; retry"
                ) from exc
            await run_in_threadpool(self._mark_started, row.id)
        return _accepted(row, duplicate=True)

    def _find_existing(
        self, agency_id: uuid.UUID, partner_reference: str, idempotency_key: str | None
    ) -> Referral | None:
        with self.store.session() as s:
            if idempotency_key is not None:
                by_key = self.store.referral_by_idempotency_key(s, agency_id, idempotency_key)
                if by_key is not None:
                    if by_key.partner_reference != partner_reference:
                        raise IdempotencyKeyReused(
                            "this Idempotency-Key was used for partner reference "
                            f"{by_key.partner_reference!r}; use a new key for a new submission"
                        )
                    return by_key
            return self.store.referral_by_partner_ref(s, agency_id, partner_reference)

    def _insert(
        self, principal: Principal, tool: ReferralCreate, idempotency_key: str | None
    ) -> tuple[Referral, bool]:
        now = self.clock()
        referral_id = uuid.uuid4()
        row = Referral(
            id=referral_id,
            agency_id=principal.agency_id,
            partner_reference=tool.partner_reference,
            idempotency_key=idempotency_key,
            agency_child_ref=tool.child.agency_child_ref,
            local_authority=tool.child.local_authority,
            stage=Stage.submitted.value,
            referrer_level=tool.referrer_judgement.level.value,
            workflow_id=referral_workflow_id(referral_id),
            workflow_started=False,
            tool=tool.model_dump(mode="json"),
            submitted_at=now,
            updated_at=now,
        )
        try:
            with self.store.session() as s:
                s.add(row)
            return row, True
        except IntegrityError:
            # A concurrent identical submission won the unique constraint: answer with it.
            winner = self._find_existing(
                principal.agency_id, tool.partner_reference, idempotency_key
            )
            if winner is None:
                raise
            return winner, False

    def _remove_unstarted(self, referral_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                delete(Referral).where(
                    Referral.id == referral_id, Referral.workflow_started.is_(False)
                )
            )

    def _mark_started(self, referral_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                update(Referral).where(Referral.id == referral_id).values(workflow_started=True)
            )

    def get(self, principal: Principal, referral_id: uuid.UUID) -> ReferralPublic:
        """The referral's status for a caller allowed to see it; records the disclosure."""
        with self.store.session() as s:
            row = s.get(Referral, referral_id)
            if (
                row is None
                or not row.workflow_started
                or not may_read_referral(principal, row.agency_id)
            ):
                raise ReferralNotFound(f"no referral {referral_id} that you may see")
            s.add(
                Disclosure(
                    referral_id=row.id,
                    agency_id=principal.agency_id,
                    user_id=principal.user_id,
                    purpose="status",
                    at=self.clock(),
                )
            )
            return ReferralPublic(
                referral_id=row.id,
                partner_reference=row.partner_reference,
                stage=Stage(row.stage),
                local_authority=row.local_authority,
                submitted_at=row.submitted_at,
                updated_at=row.updated_at,
                referrer_level=RiskLevel(row.referrer_level),
                suggested_level=RiskLevel(row.suggested_level) if row.suggested_level else None,
                next_deadline=row.next_deadline,
            )


def _start_input(row: Referral) -> StartReferralInput:
    return StartReferralInput(
        referral_id=row.id,
        agency_id=row.agency_id,
        local_authority=row.local_authority,
        submitted_at=row.submitted_at,
        referrer_level=RiskLevel(row.referrer_level),
    )


def _accepted(row: Referral, *, duplicate: bool) -> ReferralAccepted:
    return ReferralAccepted(
        referral_id=row.id,
        workflow_id=row.workflow_id,
        stage=Stage(row.stage),
        submitted_at=row.submitted_at,
        duplicate=duplicate,
    )
