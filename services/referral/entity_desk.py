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
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.cases import NewAction
from mset_contract.entities import (
    ActionAimedAt,
    ActionTargetsCheck,
    ChildEntities,
    ChildEntity,
    EntityActionView,
    EntityGraph,
    EntityKind,
    EntityMatchAction,
    EntityMatchDecision,
    EntityMatchEventPublic,
    EntityMatchPage,
    EntityMatchPublic,
    EntityMatchSide,
    EntityMatchStatus,
    EntityMention,
    EntityShared,
    EntityShareRequest,
    EntityView,
    GraphEdge,
    GraphNode,
    Hotspot,
    HotspotList,
    LocationKind,
    TimelineEntry,
)
from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_contract.vocab import ActionTarget, Role
from services.referral.domain import (
    ReferralError,
    ReferralNotFound,
    RequestInvalid,
    check_authority,
)
from services.referral.entities import (
    Entity,
    EntityAction,
    EntityMatch,
    EntityMatchEvent,
    EntityShare,
    EntityStore,
)
from services.referral.intake import Intake
from services.referral.ledger import Disclosed, to
from services.referral.network_svg import render_network
from services.referral.policy import (
    CHILD_ENTITIES_READ,
    ENTITY_MATCH_CONFIRM,
    ENTITY_MATCH_REJECT,
    ENTITY_MATCH_UNDO,
    ENTITY_MATCHES_REVIEW,
    ENTITY_READ,
    ENTITY_SHARE,
    ENTITY_TARGETS_CHECK,
    HOTSPOTS_READ,
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
        for share in s.scalars(select(EntityShare).where(EntityShare.entity_id.in_(ids))):
            timeline.append(
                TimelineEntry(at=share.at, what="shared", local_authority=share.to_authority)
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

    # --- sharing across borders ------------------------------------------------------------

    async def share(
        self, principal: Principal, entity_id: uuid.UUID, req: EntityShareRequest
    ) -> EntityShared:
        check_authority(req.to_authority, self.intake.authorities, "to_authority")
        return await run_in_threadpool(self._share, principal, entity_id, req)

    def _share(
        self, principal: Principal, entity_id: uuid.UUID, req: EntityShareRequest
    ) -> EntityShared:
        """Share every mention of the entity made in an authority the coordinator serves
        with ``to_authority``; each mention newly shared is a ledger entry with the reason."""
        not_found = f"no person or location {entity_id} that you may see"
        now = self.intake.clock()
        with self.store.session() as s:
            start = s.get(Entity, entity_id)
            if start is None:
                raise ReferralNotFound(not_found)
            shared = self.entities.shared_to(s, [start.id])
            check(
                principal, ENTITY_SHARE, mention_facts(start, shared.get(start.id, ())), not_found
            )
            served = set(principal.authorities)
            mine = [r for r in self.members(s, [start.id]) if r.local_authority in served]
            already = self.entities.shared_to(s, [r.id for r in mine])
            new = [r for r in mine if req.to_authority not in already.get(r.id, set())]
            for r in new:
                s.add(
                    EntityShare(
                        id=uuid.uuid4(),
                        entity_id=r.id,
                        to_authority=req.to_authority,
                        at=now,
                        by_user_id=principal.user_id,
                        reason=req.reason,
                    )
                )
        # The sharing is a disclosure of each mention to the other authority's staff.
        self.intake.ledger.record(
            [
                Disclosed(
                    case_id=r.case_id,
                    record="entity",
                    record_id=r.id,
                    view=DisclosureView.entity_share,
                    purpose=DisclosurePurpose.case_work,
                    recipient_kind="user",
                    agency_id=None,
                    role=Role.coordinator,
                    recipient=f"staff serving {req.to_authority}: {req.reason}",
                )
                for r in new
            ]
        )
        return EntityShared(
            entity_id=start.id,
            from_authorities=sorted({r.local_authority for r in mine}),
            to_authority=req.to_authority,
            mentions_shared=len(new),
        )

    # --- actions aimed at an entity --------------------------------------------------------

    async def check_targets(self, principal: Principal, req: ActionTargetsCheck) -> None:
        """The meeting API's question before it sends a review (``check_actions``)."""
        require(principal, ENTITY_TARGETS_CHECK)
        await run_in_threadpool(self.check_actions, principal, req.actions)

    def check_actions(
        self, principal: Principal, actions: Sequence[NewAction | ActionAimedAt]
    ) -> None:
        """Each action naming an entity names one the chair may see, of the kind it aims at
        (a perpetrator is a person, a location a place): else 422 naming the field as the
        review's other fields are named (``actions.<n>.entity_id``)."""
        with self.store.session() as s:
            for n, a in enumerate(actions):
                if a.entity_id is None:
                    continue
                field = f"actions.{n}.entity_id"
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


# --- seeing the pattern (issue 15 item 4) ------------------------------------------------

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _n(n: int, one: str, many: str) -> str:
    return f"{NUMBER_WORDS.get(n, str(n))} {one if n == 1 else many}"


def links_summary(entities: Sequence[ChildEntity], others: int) -> str:
    """'Linked to 3 other children through one location and one person.' ``others``: the
    other children linked through any of them, each counted once (a child linked through
    both the person and the place is one child, not two)."""
    if not entities:
        return "No person or place of concern linked."
    kinds = []
    for kind, word in ((EntityKind.location, "location"), (EntityKind.person, "person")):
        n = sum(1 for e in entities if e.kind is kind and e.other_children)
        if n:
            kinds.append(_n(n, word, word + "s" if word == "location" else "people"))
    if not others:
        return f"{_n(len(entities), 'person or place', 'people or places')} of concern, " + (
            "linked to no other child."
        )
    children = _n(others, "other child", "other children")
    return f"Linked to {children} through {' and '.join(kinds)}."


class PatternDesk:
    """A child's linked people and places, an entity's graph and network view, hotspots."""

    def __init__(self, desk: EntityDesk) -> None:
        self.desk = desk
        self.store = desk.store
        self.entities = desk.entities

    # --- a child -------------------------------------------------------------------------

    async def child(self, principal: Principal, referral_id: uuid.UUID) -> ChildEntities:
        row = await run_in_threadpool(
            self.desk.intake.readable,
            principal,
            referral_id,
            "child_entities",
            CHILD_ENTITIES_READ,
        )
        return await run_in_threadpool(self.of_case, principal, row.case_referral_id or row.id)

    def of_case(self, principal: Principal, case_id: uuid.UUID) -> ChildEntities:
        """The entities the case's tools mention, each with the other children linked
        through it: those the reader may see by case, the rest counted by authority."""
        with self.store.session() as s:
            own = list(
                s.scalars(
                    select(Entity).where(Entity.case_id == case_id).order_by(Entity.created_at)
                )
            )
            out: list[ChildEntity] = []
            done: set[uuid.UUID] = set()
            shown: list[Entity] = []
            linked: set[uuid.UUID] = set()  # the other children's cases, through any entity
            for e in own:
                if e.id in done:
                    continue
                rows = self.desk.members(s, [e.id])
                done |= {r.id for r in rows}
                seen = self.desk.visible(s, principal, rows)
                others: dict[uuid.UUID, Entity] = {}
                for r in rows:
                    if r.case_id != case_id:
                        others.setdefault(r.case_id, r)
                linked |= others.keys()
                visible_cases = sorted(
                    {
                        c
                        for c, r in others.items()
                        if any(m.case_id == c and m.id in seen for m in rows)
                    },
                    key=str,
                )
                hidden: dict[str, int] = {}
                for c, r in others.items():
                    if c not in visible_cases:
                        hidden[r.local_authority] = hidden.get(r.local_authority, 0) + 1
                mine = [r for r in rows if r.id in seen and r.case_id == case_id]
                shown += mine
                out.append(
                    ChildEntity(
                        entity_id=e.id,
                        kind=EntityKind(e.kind),
                        location_kind=LocationKind(e.location_kind) if e.location_kind else None,
                        detail=self.entities.detail(mine[0]) if mine else None,
                        other_children=len(others),
                        other_children_visible=visible_cases,
                        other_children_by_authority=hidden,
                    )
                )
        self.desk.disclose(principal, shown)
        return ChildEntities(
            referral_id=case_id,
            case_id=case_id,
            entities=out,
            summary=links_summary(out, len(linked)),
        )

    def summary(self, case_id: uuid.UUID) -> str | None:
        """The case's links in words, counts only (no detail, whoever reads it): what an
        agenda shows every panel role. None when the case's tools name no one."""
        with self.store.session() as s:
            own = list(s.scalars(select(Entity).where(Entity.case_id == case_id)))
            if not own:
                return None
            out: list[ChildEntity] = []
            done: set[uuid.UUID] = set()
            linked: set[uuid.UUID] = set()
            for e in sorted(own, key=lambda r: (r.created_at, str(r.id))):
                if e.id in done:
                    continue
                rows = self.desk.members(s, [e.id])
                done |= {r.id for r in rows}
                others = {r.case_id for r in rows} - {case_id}
                linked |= others
                out.append(
                    ChildEntity(entity_id=e.id, kind=EntityKind(e.kind), other_children=len(others))
                )
        return links_summary(out, len(linked))

    # --- an entity's graph ---------------------------------------------------------------

    async def graph(self, principal: Principal, entity_id: uuid.UUID) -> EntityGraph:
        return await run_in_threadpool(self._graph, principal, entity_id)

    def _graph(self, principal: Principal, entity_id: uuid.UUID) -> EntityGraph:
        """The entity, the children it links, and the other people and places those
        children's tools name (one step further): nodes and edges. A child or an entity
        the reader may not see is a node that says only its authority."""
        not_found = f"no person or location {entity_id} that you may see"
        with self.store.session() as s:
            start = s.get(Entity, entity_id)
            if start is None:
                raise ReferralNotFound(not_found)
            first = self.desk.members(s, [start.id])
            if not self.desk.visible(s, principal, first):
                raise ReferralNotFound(not_found)
            cases = {r.case_id for r in first}
            around = list(s.scalars(select(Entity).where(Entity.case_id.in_(list(cases)))))
            groups: list[list[Entity]] = [first]
            grouped = {r.id for r in first}
            for e in sorted(around, key=lambda r: (r.created_at, str(r.id))):
                if e.id not in grouped:
                    g = self.desk.members(s, [e.id])
                    grouped |= {r.id for r in g}
                    groups.append(g)
            all_rows = [r for g in groups for r in g]
            seen = self.desk.visible(s, principal, all_rows)
            nodes: dict[str, GraphNode] = {}
            edges: list[GraphEdge] = []
            case_la: dict[uuid.UUID, str] = {}
            for r in all_rows:
                case_la.setdefault(r.case_id, r.local_authority)
            case_seen = {r.case_id for r in all_rows if r.id in seen}
            for n, (case, la) in enumerate(
                sorted(case_la.items(), key=lambda kv: (kv[1], str(kv[0])))
            ):
                if case in case_seen:
                    nodes[str(case)] = GraphNode(
                        id=str(case),
                        kind="child",
                        label=f"Case {str(case)[:8]}",
                        local_authority=la,
                    )
                else:
                    nodes[str(case)] = GraphNode(
                        id=f"hidden-{n}",
                        kind="hidden",
                        label=f"A child in {la}",
                        local_authority=la,
                    )
            shown: list[Entity] = []
            for g in groups:
                head = g[0]
                visible = [r for r in g if r.id in seen]
                shown += visible
                label = _entity_label(self.entities, head, visible)
                nodes[str(head.id)] = GraphNode(
                    id=str(head.id),
                    kind="person" if head.kind == EntityKind.person.value else "location",
                    label=label,
                )
                for c in sorted({r.case_id for r in g if r.case_id in case_la}, key=str):
                    edges.append(
                        GraphEdge(source=nodes[str(c)].id, target=str(head.id), kind="mentions")
                    )
                ids = [r.id for r in g]
                for a in s.scalars(select(EntityAction).where(EntityAction.entity_id.in_(ids))):
                    if a.case_id in case_la:
                        edges.append(
                            GraphEdge(
                                source=nodes[str(a.case_id)].id, target=str(head.id), kind="action"
                            )
                        )
        self.desk.disclose(principal, shown)
        return EntityGraph(nodes=list(nodes.values()), edges=edges)

    async def network_svg(self, principal: Principal, entity_id: uuid.UUID) -> str:
        graph = await self.graph(principal, entity_id)
        return render_network(graph, title="Network of a person or place of concern")

    # --- hotspots ------------------------------------------------------------------------

    async def hotspots(
        self, principal: Principal, authority: str, since: datetime, until: datetime, limit: int
    ) -> HotspotList:
        require(principal, HOTSPOTS_READ)
        check_authority(authority, self.desk.intake.authorities, "authority")
        return await run_in_threadpool(self._hotspots, principal, authority, since, until, limit)

    def _hotspots(
        self, principal: Principal, authority: str, since: datetime, until: datetime, limit: int
    ) -> HotspotList:
        """Locations with a mention in ``authority``, ranked by the children linked to them
        (mentions made in the period), anywhere; a place's name only where the reader may
        see one of its mentions."""
        with self.store.session() as s:
            starts = list(
                s.scalars(
                    select(Entity).where(
                        Entity.kind == EntityKind.location.value,
                        Entity.local_authority == authority,
                    )
                )
            )
            done: set[uuid.UUID] = set()
            items: list[Hotspot] = []
            shown: dict[uuid.UUID, Entity] = {}
            for e in starts:
                if e.id in done:
                    continue
                rows = self.desk.members(s, [e.id])
                done |= {r.id for r in rows}
                within = [r for r in rows if since <= _aware(r.created_at) < until]
                if not within:
                    continue
                seen = self.desk.visible(s, principal, rows)
                mine = [r for r in rows if r.id in seen]
                detail = self.entities.detail(mine[0]) if mine else None
                head = rows[0]  # the first mention names the place
                if mine:
                    shown[head.id] = mine[0]
                items.append(
                    Hotspot(
                        entity_id=head.id,
                        location_kind=LocationKind(e.location_kind or LocationKind.other.value),
                        children=len({r.case_id for r in within}),
                        authorities=sorted({r.local_authority for r in within}),
                        place_name=(detail.place_name or detail.address) if detail else None,
                    )
                )
        items.sort(key=lambda h: (-h.children, str(h.entity_id)))
        items = items[:limit]
        self.desk.disclose(principal, [shown[h.entity_id] for h in items if h.entity_id in shown])
        return HotspotList(since=since, until=until, items=items)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _entity_label(store: EntityStore, head: Entity, visible: Sequence[Entity]) -> str:
    kind = "Person" if head.kind == EntityKind.person.value else "Place"
    if not visible:
        return f"{kind} (not shared)"
    d = store.detail(visible[0])
    name = (d.names[0] if d.names else None) or d.place_name or d.address or d.online
    return f"{kind}: {name}" if name else kind
