"""Persons of concern and locations: an entity's page, the coordinator's same-entity review
queue and its decisions (ADR 0030). Access is the policy's; every mention's detail shown is
recorded in the information-sharing ledger first.

Need to know across borders: a mention's detail is shown to staff serving the authority
whose tool made it, or an authority it was shared with; any other mention shows only that it
exists (its authority), and counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.cases import NewAction
from mset_contract.entities import (
    EntityActionView,
    EntityKind,
    EntityMatchAction,
    EntityMatchDecision,
    EntityMatchEventPublic,
    EntityMatchPage,
    EntityMatchPublic,
    EntityMatchSide,
    EntityMatchStatus,
    EntityMention,
    EntityView,
    LocationKind,
    TimelineEntry,
)
from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_contract.vocab import ActionTarget
from services.referral.domain import ReferralError, ReferralNotFound, RequestInvalid
from services.referral.entities import (
    Entity,
    EntityAction,
    EntityMatch,
    EntityMatchEvent,
    EntityStore,
)
from services.referral.intake import Intake
from services.referral.ledger import Disclosed, to
from services.referral.policy import (
    ENTITY_MATCH_CONFIRM,
    ENTITY_MATCH_REJECT,
    ENTITY_MATCH_UNDO,
    ENTITY_MATCHES_REVIEW,
    ENTITY_READ,
    Facts,
    check,
    may,
    require,
)


class EntityMatchConflict(ReferralError):
    """The match is not in a state this decision applies to (409)."""


DECISIONS = {
    EntityMatchAction.confirmed: (
        ENTITY_MATCH_CONFIRM,
        {EntityMatchStatus.candidate, EntityMatchStatus.rejected, EntityMatchStatus.undone},
        EntityMatchStatus.confirmed,
    ),
    EntityMatchAction.rejected: (
        ENTITY_MATCH_REJECT,
        {EntityMatchStatus.candidate},
        EntityMatchStatus.rejected,
    ),
    EntityMatchAction.undone: (
        ENTITY_MATCH_UNDO,
        {EntityMatchStatus.confirmed},
        EntityMatchStatus.undone,
    ),
}
TARGET_KIND = {
    ActionTarget.perpetrator: EntityKind.person,
    ActionTarget.location: EntityKind.location,
}


def mention_facts(e: Entity, shared: Iterable[str] = ()) -> Facts:
    """A mention is its tool's authority's; and of the authorities it was shared with."""
    return Facts(local_authority=e.local_authority, told=frozenset(shared))


def match_facts(m: EntityMatch) -> Facts:
    """A match is in scope for staff serving either mention's authority."""
    return Facts(local_authority=m.a_local_authority, told=frozenset({m.b_local_authority}))


class EntityDesk:
    def __init__(self, intake: Intake, entities: EntityStore) -> None:
        self.intake = intake
        self.store = intake.store
        self.entities = entities

    # --- visibility ------------------------------------------------------------------------

    def visible(self, s: Session, principal: Principal, rows: Sequence[Entity]) -> set[uuid.UUID]:
        """The mentions whose detail ``principal`` may see."""
        shared = self.entities.shared_to(s, [r.id for r in rows])
        return {
            r.id
            for r in rows
            if may(principal, ENTITY_READ, mention_facts(r, shared.get(r.id, ())))
        }

    def disclose(self, principal: Principal, rows: Iterable[Entity]) -> None:
        self.intake.ledger.record(
            [
                Disclosed(
                    case_id=r.case_id,
                    record="entity",
                    record_id=r.id,
                    view=DisclosureView.entity,
                    purpose=DisclosurePurpose.case_work,
                    **to(principal),
                )
                for r in rows
            ]
        )

    # --- an entity's page ------------------------------------------------------------------

    async def view(self, principal: Principal, entity_id: uuid.UUID) -> EntityView:
        # A role that may read no entity gets the 404 of an entity that does not exist.
        return await run_in_threadpool(self._view, principal, entity_id)

    def _view(self, principal: Principal, entity_id: uuid.UUID) -> EntityView:
        not_found = f"no person or location {entity_id} that you may see"
        with self.store.session() as s:
            start = s.get(Entity, entity_id)
            if start is None:
                raise ReferralNotFound(not_found)
            rows = self.members(s, [start.id])
            seen = self.visible(s, principal, rows)
            if not seen:
                raise ReferralNotFound(not_found)
            view = self._build(s, start, rows, seen)
            shown = [r for r in rows if r.id in seen]
        self.disclose(principal, shown)
        return view

    def members(self, s: Session, start: Iterable[uuid.UUID]) -> list[Entity]:
        ids = self.entities.component(s, start)
        return sorted(
            s.scalars(select(Entity).where(Entity.id.in_(list(ids)))),
            key=lambda r: (r.created_at, str(r.id)),
        )

    def _build(
        self, s: Session, start: Entity, rows: list[Entity], seen: set[uuid.UUID]
    ) -> EntityView:
        ids = [r.id for r in rows]
        mentions = [
            EntityMention(
                entity_id=r.id,
                visible=True,
                local_authority=r.local_authority,
                mentioned_at=r.created_at,
                referral_id=r.referral_id,
                case_id=r.case_id,
                detail=self.entities.detail(r),
            )
            if r.id in seen
            else EntityMention(visible=False, local_authority=r.local_authority)
            for r in rows
        ]
        visible_cases = {r.case_id for r in rows if r.id in seen}
        actions = [
            a
            for a in s.scalars(
                select(EntityAction)
                .where(EntityAction.entity_id.in_(ids))
                .order_by(EntityAction.created_at)
            )
        ]
        seen_las = {r.local_authority for r in rows if r.id in seen}
        timeline = [
            TimelineEntry(
                at=r.created_at,
                what="mentioned",
                local_authority=r.local_authority,
                case_id=r.case_id if r.id in seen else None,
            )
            for r in rows
        ]
        shown_actions = []
        for a in actions:
            mine = a.case_id in visible_cases or a.local_authority in seen_las
            timeline.append(
                TimelineEntry(
                    at=a.created_at,
                    what="action_agreed",
                    local_authority=a.local_authority,
                    case_id=a.case_id if mine else None,
                )
            )
            if a.completed_at is not None:
                timeline.append(
                    TimelineEntry(
                        at=a.completed_at,
                        what="action_completed",
                        local_authority=a.local_authority,
                        case_id=a.case_id if mine else None,
                    )
                )
            if mine:
                shown_actions.append(
                    EntityActionView(
                        action_id=a.action_id,
                        case_id=a.case_id,
                        local_authority=a.local_authority,
                        aim=a.aim,
                        target=a.target,
                        status="open" if a.status == "open" else "completed",
                        due_at=a.due_at,
                        created_at=a.created_at,
                    )
                )
        confirmed = s.scalars(
            select(EntityMatchEvent)
            .join(EntityMatch, EntityMatch.id == EntityMatchEvent.match_id)
            .where(
                EntityMatchEvent.action == EntityMatchAction.confirmed.value,
                EntityMatch.status == EntityMatchStatus.confirmed.value,
                EntityMatch.a_entity_id.in_(ids),
            )
        )
        for e in confirmed:
            timeline.append(
                TimelineEntry(at=e.at, what="confirmed_same", local_authority=start.local_authority)
            )
        timeline.sort(key=lambda t: t.at)
        return EntityView(
            entity_id=start.id,
            kind=EntityKind(start.kind),
            location_kind=LocationKind(start.location_kind) if start.location_kind else None,
            mentions=mentions,
            children=len({r.case_id for r in rows}),
            authorities=sorted({r.local_authority for r in rows}),
            cases=sorted(visible_cases, key=str),
            actions=shown_actions,
            timeline=timeline,
        )

    # --- actions aimed at an entity --------------------------------------------------------

    def check_actions(self, principal: Principal, actions: Sequence[NewAction]) -> None:
        """Each action naming an entity names one the chair may see, of the kind it aims at
        (a perpetrator is a person, a location a place): else 422 naming the field."""
        with self.store.session() as s:
            for n, a in enumerate(actions):
                if a.entity_id is None:
                    continue
                field = f"actions[{n}].entity_id"
                row = s.get(Entity, a.entity_id)
                if row is None or not self.visible(s, principal, [row]):
                    raise RequestInvalid(
                        field, "no person or location with this id that you may see"
                    )
                want = TARGET_KIND.get(a.target)
                if want is None or want.value != row.kind:
                    raise RequestInvalid(
                        field,
                        f"the entity is a {row.kind}: an action aimed at it has target "
                        f"'{'perpetrator' if row.kind == 'person' else 'location'}'",
                    )

    # --- the review queue ------------------------------------------------------------------

    async def candidates(
        self, principal: Principal, after: uuid.UUID | None, limit: int
    ) -> EntityMatchPage:
        require(principal, ENTITY_MATCHES_REVIEW)
        return await run_in_threadpool(self._candidates, principal, after, limit)

    def _candidates(
        self, principal: Principal, after: uuid.UUID | None, limit: int
    ) -> EntityMatchPage:
        with self.store.session() as s:
            matches = self.entities.queue(s, principal.authorities, after, limit + 1)
            more = len(matches) > limit
            matches = matches[:limit]
            shown: list[Entity] = []
            items = [self._public(s, principal, m, shown) for m in matches]
        self.disclose(principal, shown)
        return EntityMatchPage(
            items=items, next_cursor=str(matches[-1].id) if more and matches else None
        )

    # --- decisions -------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        match_id: uuid.UUID,
        action: EntityMatchAction,
        decision: EntityMatchDecision,
    ) -> EntityMatchPublic:
        return await run_in_threadpool(self._decide, principal, match_id, action, decision)

    def _decide(
        self,
        principal: Principal,
        match_id: uuid.UUID,
        action: EntityMatchAction,
        decision: EntityMatchDecision,
    ) -> EntityMatchPublic:
        rule, applies_to, leaves = DECISIONS[action]
        not_found = f"no same-entity match {match_id} that you may see"
        with self.store.session() as s:
            match = s.get(EntityMatch, match_id, with_for_update=True)
            if match is None:
                raise ReferralNotFound(not_found)
            check(principal, rule, match_facts(match), not_found)
            status = EntityMatchStatus(match.status)
            if status not in applies_to:
                raise EntityMatchConflict(
                    f"the match is {status.value}: only a match that is "
                    f"{' or '.join(sorted(a.value for a in applies_to))} can be {action.value}"
                )
            self.entities.record(
                s,
                match,
                action,
                leaves,
                self.intake.clock(),
                user_id=principal.user_id,
                agency_id=principal.agency_id,
                role=principal.role.value if principal.role else None,
                reason=decision.reason,
            )
            s.flush()
            return self._public(s, principal, match, None)

    # --- shared ----------------------------------------------------------------------------

    def _public(
        self, s: Session, principal: Principal, m: EntityMatch, shown: list[Entity] | None
    ) -> EntityMatchPublic:
        sides = []
        for eid in (m.a_entity_id, m.b_entity_id):
            e = s.get(Entity, eid)
            assert e is not None
            see = shown is not None and bool(self.visible(s, principal, [e]))
            if see and shown is not None:
                shown.append(e)
            sides.append(
                EntityMatchSide(
                    entity_id=e.id,
                    local_authority=e.local_authority,
                    visible=see,
                    detail=self.entities.detail(e) if see else None,
                )
            )
        events = self.entities.events(s, [m.id]).get(m.id, [])
        return EntityMatchPublic(
            match_id=m.id,
            kind=EntityKind(m.kind),
            status=EntityMatchStatus(m.status),
            score=m.score,
            agreement=list(m.agreement),
            a=sides[0],
            b=sides[1],
            events=[
                EntityMatchEventPublic(
                    action=EntityMatchAction(e.action),
                    at=e.at,
                    by_user_id=e.by_user_id,
                    by_agency_id=e.by_agency_id,
                    reason=e.reason,
                )
                for e in events
            ],
        )
