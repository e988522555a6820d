"""Missing episodes: police report a child missing and returned; a provider records the Return
Home Interview. Each episode is a ``MissingEpisodeWorkflow``; the report itself (which may
hold circumstances in free text) stays in this service's table.

Linking to the child's case: the reporter may name the child's MSET referral id; otherwise
an open case from the same agency for the same child reference and authority is used.
Intake is idempotent and all-or-nothing exactly as for referrals (see intake.py).
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
from mset_contract.referral import (
    MissingEpisodeAccepted,
    MissingReportCreate,
    ReturnCreate,
    RhiOutcomeCreate,
)
from mset_contract.referral_workflow import (
    UPDATE_RECORD_RETURN,
    UPDATE_RECORD_RHI,
    MissingEpisodeState,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
    missing_episode_workflow_id,
)
from mset_contract.vocab import Role
from services.referral.domain import (
    CLOSED_STAGES,
    PARTNERSHIP_ROLES,
    IdempotencyKeyReused,
    NotAPartnerSystem,
    ReferralNotFound,
    UnknownCase,
    WorkflowUnavailable,
)
from services.referral.store import MissingEpisode, Referral, Store

RHI_ROLES = (Role.provider, Role.coordinator)


class EpisodeWorkflows(Protocol):
    async def start_episode(self, workflow_id: str, inp: StartMissingEpisodeInput) -> None: ...

    async def episode_update(
        self, workflow_id: str, name: str, arg: ReturnInput | RhiOutcomeInput, result: type
    ) -> object: ...

    async def episode_state(self, workflow_id: str) -> MissingEpisodeState | None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MissingDesk:
    def __init__(
        self, store: Store, workflows: EpisodeWorkflows, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.clock = clock

    async def report(
        self, principal: Principal, body: MissingReportCreate, idempotency_key: str | None
    ) -> MissingEpisodeAccepted:
        if principal.kind != "agency":
            raise NotAPartnerSystem("report missing episodes with your agency's API key")
        row, created = await run_in_threadpool(self._record, principal, body, idempotency_key)
        if row.workflow_started:
            return _accepted(row, duplicate=not created)
        try:
            await self.workflows.start_episode(row.workflow_id, _start(row))
        except Exception as exc:
            if created:
                await run_in_threadpool(self._remove_unstarted, row.id)
            raise WorkflowUnavailable(
                "the report could not be accepted now; nothing was recorded, please retry"
            ) from exc
        await run_in_threadpool(self._mark_started, row.id)
        return _accepted(row, duplicate=not created)

    def _record(
        self, principal: Principal, body: MissingReportCreate, idempotency_key: str | None
    ) -> tuple[MissingEpisode, bool]:
        with self.store.session() as s:
            existing = self.store.episode_by_partner_ref(
                s, principal.agency_id, body.partner_reference
            )
            if idempotency_key is not None:
                by_key = self.store.episode_by_idempotency_key(
                    s, principal.agency_id, idempotency_key
                )
                if by_key is not None and by_key.partner_reference != body.partner_reference:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for another report; use a new key"
                    )
                existing = existing or by_key
            if existing is not None:
                return existing, False
            case_id = self._case_for(s, principal, body)
        episode_id = uuid.uuid4()
        row = MissingEpisode(
            id=episode_id,
            agency_id=principal.agency_id,
            partner_reference=body.partner_reference,
            idempotency_key=idempotency_key,
            local_authority=body.child.local_authority,
            agency_child_ref=body.child.agency_child_ref,
            case_referral_id=case_id,
            workflow_id=missing_episode_workflow_id(episode_id),
            workflow_started=False,
            reported_at=body.reported_at,
            report=body.model_dump(mode="json"),
            created_at=self.clock(),
        )
        try:
            with self.store.session() as s:
                s.add(row)
            return row, True
        except IntegrityError:
            with self.store.session() as s:
                winner = self.store.episode_by_partner_ref(
                    s, principal.agency_id, body.partner_reference
                )
            if winner is None:
                raise
            return winner, False

    def _case_for(
        self, s: object, principal: Principal, body: MissingReportCreate
    ) -> uuid.UUID | None:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        if body.case_referral_id is not None:
            case = s.get(Referral, body.case_referral_id)
            if case is not None and case.case_referral_id is not None:
                case = s.get(Referral, case.case_referral_id)
            if case is None or not case.workflow_started or case.stage in CLOSED_STAGES:
                raise UnknownCase("case_referral_id: no open MSET case with this id")
            return case.id
        own = self.store.open_case_for_child(
            s, principal.agency_id, body.child.agency_child_ref, body.child.local_authority
        )
        return own.id if own is not None and own.stage not in CLOSED_STAGES else None

    def _remove_unstarted(self, episode_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                delete(MissingEpisode).where(
                    MissingEpisode.id == episode_id, MissingEpisode.workflow_started.is_(False)
                )
            )

    def _mark_started(self, episode_id: uuid.UUID) -> None:
        with self.store.session() as s:
            s.execute(
                update(MissingEpisode)
                .where(MissingEpisode.id == episode_id)
                .values(workflow_started=True)
            )

    def _episode(self, principal: Principal, episode_id: uuid.UUID, *, rhi: bool) -> MissingEpisode:
        with self.store.session() as s:
            row = s.get(MissingEpisode, episode_id)
        allowed = (
            row is not None
            and row.workflow_started
            and (
                (principal.agency_id == row.agency_id and principal.kind == "agency")
                or principal.has_role(*PARTNERSHIP_ROLES, Role.provider)
            )
        )
        if rhi and not principal.has_role(*RHI_ROLES):
            allowed = False
        if not allowed or row is None:
            raise ReferralNotFound(f"no missing episode {episode_id} that you may see")
        return row

    async def record_return(
        self, principal: Principal, episode_id: uuid.UUID, body: ReturnCreate
    ) -> ReturnRecorded:
        row = await run_in_threadpool(self._episode, principal, episode_id, rhi=False)
        if principal.kind != "agency":
            raise NotAPartnerSystem("the reporting agency records the return with its API key")
        result = await self.workflows.episode_update(
            row.workflow_id,
            UPDATE_RECORD_RETURN,
            ReturnInput(**body.model_dump()),
            ReturnRecorded,
        )
        assert isinstance(result, ReturnRecorded)
        return result

    async def record_rhi(
        self, principal: Principal, episode_id: uuid.UUID, body: RhiOutcomeCreate
    ) -> RhiRecorded:
        row = await run_in_threadpool(self._episode, principal, episode_id, rhi=True)
        assert principal.user_id is not None
        result = await self.workflows.episode_update(
            row.workflow_id,
            UPDATE_RECORD_RHI,
            RhiOutcomeInput(by=principal.user_id, **body.model_dump()),
            RhiRecorded,
        )
        assert isinstance(result, RhiRecorded)
        return result

    async def view(self, principal: Principal, episode_id: uuid.UUID) -> MissingEpisodeState:
        row = await run_in_threadpool(self._episode, principal, episode_id, rhi=False)
        state = await self.workflows.episode_state(row.workflow_id)
        if state is None:
            raise ReferralNotFound(f"no missing episode {episode_id} that you may see")
        return state


def _start(row: MissingEpisode) -> StartMissingEpisodeInput:
    return StartMissingEpisodeInput(
        episode_id=row.id,
        reporting_agency_id=row.agency_id,
        local_authority=row.local_authority,
        reported_at=row.reported_at,
        case_referral_id=row.case_referral_id,
    )


def _accepted(row: MissingEpisode, *, duplicate: bool) -> MissingEpisodeAccepted:
    return MissingEpisodeAccepted(
        episode_id=row.id,
        workflow_id=row.workflow_id,
        case_referral_id=row.case_referral_id,
        duplicate=duplicate,
    )
