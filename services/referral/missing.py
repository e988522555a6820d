"""Missing episodes: police report a child missing and returned; a provider records the Return
Home Interview. Each episode is a ``MissingEpisodeWorkflow``; the report itself (which may
hold circumstances in free text) stays in this service's table.

Linking to the child's case: the reporter may name the child's MSET referral id; otherwise
an open case from the same agency for the same child reference and authority is used.
Intake is idempotent and all-or-nothing exactly as for referrals (see intake.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.episodes import ReturnedEpisode, ReturnedEpisodePage
from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_contract.referral import (
    MissingEpisodeAccepted,
    MissingReportCreate,
    ReturnCreate,
    RhiOutcomeCreate,
)
from mset_contract.referral_workflow import (
    EpisodeStatus,
    MissingEpisodeState,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
)
from mset_contract.temporal import (
    missing_episode_workflow_id,
)
from mset_contract.types import DEFAULT_AUTHORITIES
from mset_platform.access import Rule, Scope
from mset_platform.cases import CaseClient, CaseClosed, DecisionRefused
from mset_platform.clock import Clock, utcnow
from mset_platform.idempotency import body_hash, canonical
from mset_platform.paging import FIRST_PAGE, PageRequest
from services.referral.domain import (
    CLOSED_STAGES,
    NotAPartnerSystem,
    ReferralNotFound,
    UnknownCase,
    WorkflowUnavailable,
    check_authority,
    check_same_submission,
    matched_by,
)
from services.referral.episode_records import returned_episodes
from services.referral.ledger import Disclosed, Ledger, episode_read, to
from services.referral.policy import (
    EPISODE_LINK,
    EPISODE_READ,
    EPISODE_REPORT,
    EPISODE_RETURN,
    EPISODE_RHI,
    EPISODES_RETURNED,
    Facts,
    check,
    may,
    require,
)
from services.referral.store import MissingEpisode, Referral, Store


class MissingDesk:
    def __init__(
        self,
        store: Store,
        cases: CaseClient,
        clock: Clock = utcnow,
        authorities: Collection[str] = DEFAULT_AUTHORITIES,
    ) -> None:
        self.store = store
        self.cases = cases
        self.clock = clock
        self.authorities = frozenset(authorities)
        self.ledger = Ledger(store, clock)

    async def report(
        self, principal: Principal, body: MissingReportCreate, idempotency_key: str | None
    ) -> MissingEpisodeAccepted:
        require(principal, EPISODE_REPORT, NotAPartnerSystem)
        check_authority(body.child.local_authority, self.authorities, "child.local_authority")
        row, created = await run_in_threadpool(self._record, principal, body, idempotency_key)
        if not created:
            check_same_submission(
                row.report,
                row.request_hash,
                canonical(body),
                what="missing report",
                by=matched_by(row.idempotency_key, idempotency_key),
            )
        if row.workflow_started:
            return _accepted(row, duplicate=not created)
        try:
            await self.cases.start_episode(_start(row))
        except Exception as exc:
            # Kept, undelivered, as intake keeps a referral: a start that timed out may have
            # reached Temporal, and the retry joins that workflow (fixed id) instead of
            # starting a second episode.
            raise WorkflowUnavailable(
                "the report could not be accepted now; it is held for your retry: send it "
                "again with the same Idempotency-Key or partner_reference"
            ) from exc
        await run_in_threadpool(self.store.mark_started, MissingEpisode, row.id)
        return _accepted(row, duplicate=not created)

    def _record(
        self, principal: Principal, body: MissingReportCreate, idempotency_key: str | None
    ) -> tuple[MissingEpisode, bool]:
        with self.store.session() as s:
            existing = self.store.earlier_submission(
                s,
                MissingEpisode,
                principal.agency_id,
                body.partner_reference,
                idempotency_key,
                key_reused="this Idempotency-Key was used for another report; use a new key",
            )
            if existing is not None:
                return existing, False
            case_id = self._case_for(s, principal, body)
        episode_id = uuid.uuid4()
        row = MissingEpisode(
            id=episode_id,
            agency_id=principal.agency_id,
            partner_reference=body.partner_reference,
            idempotency_key=idempotency_key,
            request_hash=body_hash(canonical(body)),
            local_authority=body.child.local_authority,
            agency_child_ref=body.child.agency_child_ref,
            case_referral_id=case_id,
            workflow_id=missing_episode_workflow_id(episode_id),
            workflow_started=False,
            reported_at=body.reported_at,
            report=canonical(body),
            created_at=self.clock(),
        )
        try:
            with self.store.session() as s:
                s.add(row)
            return row, True
        except IntegrityError:
            with self.store.session() as s:
                winner = self.store.by_partner_ref(
                    s, MissingEpisode, principal.agency_id, body.partner_reference
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
            # A case the reporter may not read is answered exactly as an id that names no
            # case: the episode would count toward its repeat-missing rule and reach its
            # agenda, and the answer would tell the reporter that the case exists.
            named = s.get(Referral, body.case_referral_id)
            case = named
            if case is not None and case.case_referral_id is not None:
                case = s.get(Referral, case.case_referral_id)
            if (
                named is None
                or case is None
                or not case.workflow_started
                or case.stage in CLOSED_STAGES
                or not may(principal, EPISODE_LINK, Facts(agency_id=named.agency_id))
                or not may(principal, EPISODE_LINK, Facts(agency_id=case.agency_id))
            ):
                raise UnknownCase("case_referral_id: no open MSET case with this id")
            return case.id
        own = self.store.open_case_for_child(
            s, principal.agency_id, body.child.agency_child_ref, body.child.local_authority
        )
        return own.id if own is not None and own.stage not in CLOSED_STAGES else None

    def _episode(self, principal: Principal, episode_id: uuid.UUID, rule: Rule) -> MissingEpisode:
        """The episode, for a caller the access policy lets do ``rule`` to it; 403 for one
        who may see it, else the 404 an episode that does not exist gets."""
        not_found = f"no missing episode {episode_id} that you may see"
        with self.store.session() as s:
            row = s.get(MissingEpisode, episode_id)
            # The episode's case (where it is on one) may have told other authorities.
            told = (
                self.store.authorities_told(s, row.case_referral_id)
                if row is not None and row.case_referral_id is not None
                else frozenset()
            )
        if row is None or not row.workflow_started:
            raise ReferralNotFound(not_found)
        facts = Facts(agency_id=row.agency_id, local_authority=row.local_authority, told=told)
        check(principal, rule, facts, not_found)
        return row

    async def record_return(
        self, principal: Principal, episode_id: uuid.UUID, body: ReturnCreate
    ) -> ReturnRecorded:
        row = await run_in_threadpool(self._episode, principal, episode_id, EPISODE_RETURN)
        arg = ReturnInput(**body.model_dump())
        try:
            return await self.cases.record_return(row.id, arg)
        except CaseClosed:
            # The episode has ended (its interview recorded): a retry of the same return
            # still gets the first answer, from the episode's final state.
            return _return_again(await self.cases.episode_state(row.id), arg)

    async def record_rhi(
        self, principal: Principal, episode_id: uuid.UUID, body: RhiOutcomeCreate
    ) -> RhiRecorded:
        row = await run_in_threadpool(self._episode, principal, episode_id, EPISODE_RHI)
        assert principal.user_id is not None
        arg = RhiOutcomeInput(by=principal.user_id, **body.model_dump())
        try:
            return await self.cases.record_rhi(row.id, arg)
        except CaseClosed:
            # Recording the outcome ends the episode: a retry of the same outcome gets the
            # first answer, from the episode's final state.
            return _rhi_again(await self.cases.episode_state(row.id), arg)

    async def returned(
        self, principal: Principal, page: PageRequest = FIRST_PAGE
    ) -> ReturnedEpisodePage:
        """The returned children awaiting their interview that the caller may act for, the
        one due soonest first, from this service's tables (no workflow is asked per row);
        each episode listed is recorded in the ledger as disclosed to the caller."""
        scope = require(principal, EPISODES_RETURNED)
        authorities: tuple[str, ...]
        told_to: tuple[str, ...]
        if scope is Scope.commissioned:
            authorities, told_to = principal.rhi_provider_for, ()
        else:  # served: staff record the authorities they serve
            served = principal.authorities if principal.kind == "user" else ()
            authorities, told_to = served, served
        return await run_in_threadpool(self._returned, principal, page, authorities, told_to)

    def _returned(
        self,
        principal: Principal,
        page: PageRequest,
        authorities: Collection[str],
        told_to: Collection[str],
    ) -> ReturnedEpisodePage:
        with self.store.session() as s:
            got = returned_episodes(s, page, authorities, told_to)
        items = [
            ReturnedEpisode(
                episode_id=r.episode_id,
                local_authority=r.local_authority,
                case_referral_id=r.case_referral_id,
                reporting_agency_id=r.agency_id,
                partner_reference=r.partner_reference,
                agency_child_ref=r.agency_child_ref,
                reported_at=r.reported_at,
                returned_at=r.returned_at,
                located_in_authority=r.located_in_authority,
                rhi_due_at=r.rhi_due_at,
            )
            for r in got.rows
        ]
        self.ledger.record(
            Disclosed(
                case_id=e.case_referral_id,
                record="missing_episode",
                record_id=e.episode_id,
                view=DisclosureView.missing_episode,
                purpose=DisclosurePurpose.case_work,
                **to(principal),
            )
            for e in items
        )
        return ReturnedEpisodePage(items=items, next_cursor=got.next_cursor)

    async def view(self, principal: Principal, episode_id: uuid.UUID) -> MissingEpisodeState:
        row = await run_in_threadpool(self._episode, principal, episode_id, EPISODE_READ)
        state = await self.cases.episode_state(row.id)
        await run_in_threadpool(episode_read(self.ledger, principal, row))
        return state


# A command sent again to an ended episode is answered as the episode's own validators answer
# it while it runs (workflows/missing_episode.py): the same command gets the first answer,
# a different one is refused saying what is recorded.


def _return_again(state: MissingEpisodeState, r: ReturnInput) -> ReturnRecorded:
    same = (state.returned_at, state.located_in_authority) == (
        r.returned_at,
        r.located_in_authority,
    )
    if not same or state.rhi_due_at is None:
        when = state.returned_at.isoformat() if state.returned_at else "?"
        raise DecisionRefused(
            f"the child's return is recorded already (returned_at {when}): a different "
            "return cannot replace it"
        )
    return ReturnRecorded(status=EpisodeStatus.returned, rhi_due_at=state.rhi_due_at)


def _rhi_again(state: MissingEpisodeState, o: RhiOutcomeInput) -> RhiRecorded:
    if state.rhi_outcome is None or (o.outcome, o.offered_at) != (
        state.rhi_outcome,
        state.rhi_offered_at,
    ):
        outcome = state.rhi_outcome.value if state.rhi_outcome else "none"
        raise DecisionRefused(
            f"the interview's outcome is recorded already ('{outcome}'): a different outcome "
            "cannot replace it"
        )
    return RhiRecorded(status=EpisodeStatus.closed, outcome=state.rhi_outcome)


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
