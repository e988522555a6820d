"""Decisions: a panel's decision on an agenda item, recorded by the case's workflow through the
case client (``mset_platform.cases``) and then here.

A decision is never half-recorded. The agenda item is claimed first, by a conditional UPDATE
(one chair wins; another gets 409). Then the case's workflow is asked to record it as an
update; if the workflow refuses, the claim is released and nothing is kept. Only when the
workflow has recorded it is the decision written here. If the answer is lost (timeout,
crash), the next attempt asks the case whether it already holds this decision id before
sending again, and the workflow itself treats the same decision id twice as one decision.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from mset_contract.auth import Principal
from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.meeting import AgreedAction, ItemDecisionPublic, RecordedVia
from mset_contract.referral_workflow import (
    MsetReviewInput,
    PreMsetDecisionInput,
    ReferralState,
    update_input,
)
from mset_contract.vocab import MeetingKind
from mset_platform.idempotency import body_hash, canonical
from services.meeting.domain import (
    DECISION_KIND_FOR,
    Cases,
    DecisionOutcome,
    ItemAlreadyDecided,
    ItemBeingDecided,
    Permission,
    check_decision,
    recorded_in_state,
    require,
    require_in,
)
from services.meeting.store import AgendaItem, Store

log = logging.getLogger("mset.meeting")

# Set by the meeting, never sent (check_decision refuses them): left out of the hash, so a
# request hashes as it did before the decision models were shared with the referral API.
_SET_BY_MEETING = {"meeting_id", "decision_id", "review_id"}


def request_hash(body: PreMsetDecisionRequest | MsetReviewRequest) -> str:
    return body_hash(canonical(body, exclude=_SET_BY_MEETING))


class Decisions:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        *,
        claim_ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.cases = cases
        self.claim_ttl = claim_ttl
        self.clock = clock

    async def decide_for_case(
        self,
        principal: Principal,
        meeting_id: uuid.UUID,
        referral_id: uuid.UUID,
        body: PreMsetDecisionRequest | MsetReviewRequest,
    ) -> ItemDecisionPublic:
        """A decision a chair sent through the referral API with this meeting's id: recorded
        on the case's agenda item exactly as one sent here (the same claim, case update and
        record), under the chair's own decision id."""
        require(principal, Permission.decide)
        await asyncio.to_thread(self._seen, principal, meeting_id)
        item_id = await asyncio.to_thread(self.store.item_for_case, meeting_id, referral_id)
        return await self.decide(principal, meeting_id, item_id, body, via=RecordedVia.referral_api)

    async def decide(
        self,
        principal: Principal,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        body: PreMsetDecisionRequest | MsetReviewRequest,
        *,
        via: RecordedVia = RecordedVia.meeting_api,
    ) -> ItemDecisionPublic:
        require(principal, Permission.decide)
        assert principal.user_id is not None  # a role implies a user
        await asyncio.to_thread(self._seen, principal, meeting_id)
        now = self.clock()
        digest = request_hash(body)
        m, item = await asyncio.to_thread(self.store.meeting_item, meeting_id, item_id)
        kind = MeetingKind(m.kind)
        own_id = check_decision(kind, body, now, meeting_id=m.id, via=via)
        if item.decided_at is not None:
            return _replay_or_conflict(item, principal, digest)
        token = str(uuid.uuid4())
        claimed = await asyncio.to_thread(
            self.claim, meeting_id, item_id, principal.user_id, token, now, own_id
        )
        if claimed is None:
            _, item = await asyncio.to_thread(self.store.meeting_item, meeting_id, item_id)
            if item.decided_at is not None:
                return _replay_or_conflict(item, principal, digest)
            raise ItemBeingDecided(
                "another chair's decision on this item is being recorded now; reload the "
                "agenda to see it"
            )
        attempt, decision_id = claimed
        try:
            outcome, decided_by = await self._send(
                kind, m.id, item, body, principal.user_id, attempt, decision_id
            )
        except BaseException:
            # Refused, or no answer: nothing is recorded here and the item is free again.
            await asyncio.to_thread(self.store.release_item, item_id, token)
            raise
        lmaps_reason = (
            body.raise_lmaps.reason
            if isinstance(body, MsetReviewRequest) and body.raise_lmaps
            else None
        )
        decision = ItemDecisionPublic(
            item_id=item.id,
            kind=DECISION_KIND_FOR[kind],
            decided_at=now,
            decided_by=decided_by,
            decided_by_name=principal.user_name if decided_by == principal.user_id else None,
            outcome=outcome.outcome,
            level=outcome.level,
            rationale=outcome.rationale,
            stage_after=outcome.stage_after,
            actions=outcome.actions,
            next_review_due=outcome.next_review_due,
            lmaps_referral_id=uuid.uuid4() if lmaps_reason else None,
            lmaps_reason=lmaps_reason,
            decision_id=decision_id,
            recorded_via=via,
        )
        recorded = await asyncio.to_thread(
            self.store.record_decision, m, item, token, decision, digest
        )
        if not recorded:
            # This attempt's claim went stale and another took over; that attempt reads
            # the decision back from the case and records it.
            log.warning("claim lost before recording: item %s", item.id)
        log.info("decision recorded: meeting %s item %s", m.id, item.id)
        if decided_by != principal.user_id:
            # An earlier attempt by another chair had reached the case: theirs stands.
            raise ItemAlreadyDecided("this item was already decided by another chair")
        return decision

    def _seen(self, principal: Principal, meeting_id: uuid.UUID) -> None:
        """A meeting of an authority the chair does not serve is one that does not exist."""
        m = self.store.meeting(meeting_id)
        require_in(principal, Permission.decide, meeting_id, m.local_authority)

    def claim(
        self,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        user_id: uuid.UUID,
        token: str,
        now: datetime,
        decision_id: str | None = None,
    ) -> tuple[int, str] | None:
        """Take the item for this decision; the attempt number and the decision id, or None
        if it is taken (by a claim younger than ``claim_ttl``)."""
        return self.store.claim_item(
            meeting_id,
            item_id,
            user_id,
            token,
            now,
            stale_before=now - self.claim_ttl,
            decision_id=decision_id,
        )

    async def _send(
        self,
        kind: MeetingKind,
        meeting_id: uuid.UUID,
        item: AgendaItem,
        body: PreMsetDecisionRequest | MsetReviewRequest,
        user_id: uuid.UUID,
        attempt: int,
        decision_id: str,
    ) -> tuple[DecisionOutcome, uuid.UUID]:
        if attempt > 1:
            # An earlier attempt may have reached the case and lost its answer.
            state = await self.cases.state(item.referral_id)
            prior = recorded_in_state(state, DECISION_KIND_FOR[kind], decision_id)
            if prior is not None:
                return prior, _decided_by(state, decision_id) or user_id
        update_id = f"meeting-item-{decision_id}-{attempt}"
        if isinstance(body, PreMsetDecisionRequest):
            got = await self.cases.record_pre_mset(
                item.referral_id,
                update_input(
                    PreMsetDecisionInput,
                    body,
                    decided_by=user_id,
                    meeting_id=meeting_id,
                    decision_id=decision_id,
                ),
                update_id,
            )
            return DecisionOutcome(
                stage_after=got.stage,
                level=got.level,
                outcome=body.outcome,
                rationale=body.rationale,
            ), user_id
        review = await self.cases.record_review(
            item.referral_id,
            update_input(
                MsetReviewInput,
                body,
                decided_by=user_id,
                meeting_id=meeting_id,
                review_id=decision_id,
            ),
            update_id,
        )
        if len(review.action_ids) == len(body.actions):
            actions = [
                AgreedAction(action_id=aid, **a.model_dump())
                for aid, a in zip(review.action_ids, body.actions, strict=True)
            ]
        else:  # not one id per action as sent: read what the case holds
            state = await self.cases.state(item.referral_id)
            held = recorded_in_state(state, DECISION_KIND_FOR[kind], decision_id)
            actions = held.actions if held else []
        return DecisionOutcome(
            stage_after=review.stage,
            level=review.level,
            rationale=body.rationale,
            actions=actions,
            next_review_due=review.next_review_due,
        ), user_id


def _replay_or_conflict(item: AgendaItem, principal: Principal, digest: str) -> ItemDecisionPublic:
    """The same chair sending the same decision again (a retried request) gets the recorded
    answer; anything else on a decided item is a conflict."""
    assert item.decision is not None and item.decided_at is not None
    recorded = ItemDecisionPublic.model_validate(item.decision)
    if item.decided_by == principal.user_id and item.request_hash == digest:
        return recorded
    by = recorded.decided_by_name or "another chair"
    raise ItemAlreadyDecided(
        f"this item was already decided by {by} at {item.decided_at.isoformat()}; "
        "a decision is recorded once"
    )


def _decided_by(state: ReferralState, decision_id: str) -> uuid.UUID | None:
    if state.pre_mset is not None and state.pre_mset.decision_id == decision_id:
        return state.pre_mset.decided_by
    review = next((r for r in state.reviews if r.review_id == decision_id), None)
    return review.decided_by if review else None
