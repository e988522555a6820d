"""Accepting a Risk Assessment Tool: record it, deliver it to its case, answer idempotently.

A tool is one of three things, decided by the child's previous cases from the same agency
(same ``agency_child_ref`` in the same local authority — the child identity we match on):
- a **new case**: no previous case; its own ``ReferralWorkflow`` is started;
- a **reassessment**: the child has an open case; the tool is signalled to that case, which
  re-triages instead of a second case being opened;
- a **re-referral**: the child's last case is closed; a new case starts, linked to it.

Order matters for "nothing accepted is ever lost, nothing half-written is left behind":
the row is committed first (so a retry can find it), then it is delivered (workflow started
under an id derived from the row, or the case signalled), then the row is marked delivered.
A partner is told 202 only after delivery. If Temporal cannot be reached the new row is
removed and the partner is told 503; if even that removal fails, the partner's retry finds
the undelivered row and completes it (a start uses the row's fixed workflow id, so this can
never start a second workflow).
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
from mset_contract.referral import ReferralAccepted, ReferralCreate
from mset_contract.referral_workflow import ReassessedSignal, StartReferralInput
from mset_contract.temporal import referral_workflow_id
from mset_contract.vocab import RiskLevel, Stage
from services.referral.domain import (
    CLOSED_STAGES,
    CaseClosed,
    IdempotencyKeyReused,
    NotAPartnerSystem,
    ReferralNotFound,
    WorkflowUnavailable,
    may_read_referral,
)
from services.referral.store import Disclosure, Referral, Store


class CaseGateway(Protocol):
    async def start_referral(self, workflow_id: str, inp: StartReferralInput) -> None:
        """Start the case's workflow; succeed quietly if it already exists."""

    async def reassess(self, workflow_id: str, signal: ReassessedSignal) -> None:
        """Give an open case its new tool; raise ``CaseClosed`` if it has ended."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self, store: Store, gateway: CaseGateway, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.store = store
        self.gateway = gateway
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
            return await self._answer_again(existing, principal)
        row, created = await run_in_threadpool(self._insert, principal, tool, idempotency_key)
        if not created:
            return await self._answer_again(row, principal)
        try:
            await self._deliver(row, principal)
        except Exception as exc:
            if row.case_referral_id is None:
                # A new case: its workflow, if the start did reach Temporal, finds no row and
                # ends; a retry starts afresh.
                await run_in_threadpool(self._remove_undelivered, row.id)
                raise WorkflowUnavailable(
                    "the referral could not be accepted now; nothing was recorded, please retry"
                ) from exc
            # A reassessment may have reached its case even though we saw an error: keep the
            # tool (undelivered, so no one is shown it) for the partner's retry to confirm.
            raise WorkflowUnavailable(
                "the reassessment could not be confirmed; retry with the same Idempotency-Key"
            ) from exc
        return _accepted(row, duplicate=False)

    async def _deliver(self, row: Referral, principal: Principal) -> None:
        if row.case_referral_id is not None:
            try:
                await self.gateway.reassess(
                    referral_workflow_id(row.case_referral_id),
                    ReassessedSignal(
                        assessment_id=row.id,
                        assessed_at=row.submitted_at,
                        referrer_level=RiskLevel(row.referrer_level),
                    ),
                )
            except CaseClosed:
                # The case ended between our look and the signal: this tool opens a new
                # case, linked to the one that just closed.
                await run_in_threadpool(self._make_re_referral, row)
        if row.case_referral_id is None:
            await self.gateway.start_referral(row.workflow_id, _start_input(row, principal))
        await run_in_threadpool(self._mark_delivered, row.id)

    async def _answer_again(self, row: Referral, principal: Principal) -> ReferralAccepted:
        if not row.workflow_started:
            # An earlier attempt recorded the row but could not confirm its delivery.
            try:
                await self._deliver(row, principal)
            except Exception as exc:
                raise WorkflowUnavailable(
                    "the referral is recorded but could not be delivered to its case; retry"
                ) from exc
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
        try:
            with self.store.session() as s:
                case = self.store.open_case_for_child(
                    s, principal.agency_id, tool.child.agency_child_ref, tool.child.local_authority
                )
                is_open = case is not None and case.stage not in CLOSED_STAGES
                row = Referral(
                    id=referral_id,
                    agency_id=principal.agency_id,
                    partner_reference=tool.partner_reference,
                    idempotency_key=idempotency_key,
                    agency_child_ref=tool.child.agency_child_ref,
                    local_authority=tool.child.local_authority,
                    stage=case.stage if case is not None and is_open else Stage.submitted.value,
                    referrer_level=tool.referrer_judgement.level.value,
                    workflow_id=referral_workflow_id(referral_id),
                    workflow_started=False,
                    case_referral_id=case.id if case is not None and is_open else None,
                    previous_referral_id=case.id if case is not None and not is_open else None,
                    tool=tool.model_dump(mode="json"),
                    submitted_at=now,
                    updated_at=now,
                )
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

    def _make_re_referral(self, row: Referral) -> None:
        with self.store.session() as s:
            s.execute(
                update(Referral)
                .where(Referral.id == row.id)
                .values(
                    case_referral_id=None,
                    previous_referral_id=row.case_referral_id,
                    stage=Stage.submitted.value,
                )
            )
        row.previous_referral_id, row.case_referral_id = row.case_referral_id, None
        row.stage = Stage.submitted.value

    def _remove_undelivered(self, referral_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                delete(Referral).where(
                    Referral.id == referral_id, Referral.workflow_started.is_(False)
                )
            )

    def _mark_delivered(self, referral_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                update(Referral).where(Referral.id == referral_id).values(workflow_started=True)
            )

    def readable(self, principal: Principal, referral_id: uuid.UUID, purpose: str) -> Referral:
        """The referral, for a caller allowed to see it; records the disclosure."""
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
                    purpose=purpose,
                    at=self.clock(),
                )
            )
            return row

    def delivered(self, referral_id: uuid.UUID) -> Referral:
        """The referral, with no access check: for callers that check access another way
        (then call ``disclose``)."""
        with self.store.session() as s:
            row = s.get(Referral, referral_id)
        if row is None or not row.workflow_started:
            raise ReferralNotFound(f"no referral {referral_id} that you may see")
        return row

    def disclose(self, principal: Principal, referral_id: uuid.UUID, purpose: str) -> None:
        with self.store.session() as s:
            s.add(
                Disclosure(
                    referral_id=referral_id,
                    agency_id=principal.agency_id,
                    user_id=principal.user_id,
                    purpose=purpose,
                    at=self.clock(),
                )
            )

    def case_row(self, row: Referral) -> Referral:
        """The case-opening referral a reassessment belongs to (or the row itself)."""
        if row.case_referral_id is None:
            return row
        with self.store.session() as s:
            case = s.get(Referral, row.case_referral_id)
            if case is None:
                raise ReferralNotFound(f"no case {row.case_referral_id}")
            return case


def _start_input(row: Referral, principal: Principal) -> StartReferralInput:
    return StartReferralInput(
        referral_id=row.id,
        agency_id=row.agency_id,
        agency_type=principal.agency_type,
        local_authority=row.local_authority,
        submitted_at=row.submitted_at,
        referrer_level=RiskLevel(row.referrer_level),
        previous_referral_id=row.previous_referral_id,
    )


def _accepted(row: Referral, *, duplicate: bool) -> ReferralAccepted:
    case_id = row.case_referral_id or row.id
    kind = (
        "reassessment"
        if row.case_referral_id
        else "re_referral"
        if row.previous_referral_id
        else "new_case"
    )
    return ReferralAccepted(
        referral_id=row.id,
        case_id=case_id,
        kind=kind,
        workflow_id=referral_workflow_id(case_id),
        stage=Stage(row.stage),
        submitted_at=row.submitted_at,
        duplicate=duplicate,
    )
