"""The child's identity, the coordinator's same-child review queue, link decisions and a
child's linked history (ADR 0028). Access is the policy's (services/referral/policy.py); every
identity or history shown is recorded in the information-sharing ledger first."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.identity import (
    ChildHistory,
    ChildIdentityPublic,
    ChildLinkPage,
    ChildLinkPublic,
    HistoryEntry,
    LinkAction,
    LinkBasis,
    LinkDecision,
    LinkEventPublic,
    LinkSide,
    LinkStatus,
)
from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_contract.types import UK
from services.referral.child_identity import (
    ChildLink,
    ChildLinkEvent,
    IdentityStore,
    agreement_of,
)
from services.referral.domain import ReferralError, ReferralNotFound
from services.referral.intake import Intake
from services.referral.ledger import Disclosed, to
from services.referral.policy import (
    CHILD_HISTORY_READ,
    CHILD_IDENTITY_READ,
    CHILD_LINK_CONFIRM,
    CHILD_LINK_REJECT,
    CHILD_LINK_UNLINK,
    CHILD_LINKS_REVIEW,
    REFERRAL_READ,
    Facts,
    check,
    may,
    require,
)
from services.referral.store import Referral


class LinkStateConflict(ReferralError):
    """The link is not in a state this decision applies to (409)."""


# What each decision does: the statuses it applies to, and the status it leaves.
DECISIONS = {
    LinkAction.confirmed: (
        CHILD_LINK_CONFIRM,
        {LinkStatus.candidate, LinkStatus.rejected, LinkStatus.unlinked},
        LinkStatus.linked,
    ),
    LinkAction.rejected: (CHILD_LINK_REJECT, {LinkStatus.candidate}, LinkStatus.rejected),
    LinkAction.unlinked: (CHILD_LINK_UNLINK, {LinkStatus.linked}, LinkStatus.unlinked),
}


class ChildLinks:
    def __init__(self, intake: Intake, identities: IdentityStore) -> None:
        self.intake = intake
        self.store = intake.store
        self.identities = identities

    # --- the identity ------------------------------------------------------------------------

    async def identity(self, principal: Principal, referral_id: uuid.UUID) -> ChildIdentityPublic:
        row = await run_in_threadpool(
            self.intake.readable, principal, referral_id, "child_identity", CHILD_IDENTITY_READ
        )
        return await run_in_threadpool(self._identity_of, row)

    def _identity_of(self, row: Referral) -> ChildIdentityPublic:
        with self.store.session() as s:
            found = self.identities.identity(s, row.id)
        if found is not None:
            return found
        child = row.tool.get("child", {})  # a tool that gave no name or NHS number
        return ChildIdentityPublic(
            referral_id=row.id,
            date_of_birth=date.fromisoformat(child["date_of_birth"]),
            gender=child.get("gender", "not_known"),
            local_authority=row.local_authority,
            key_id=None,
        )

    # --- the review queue ------------------------------------------------------------------

    async def candidates(
        self, principal: Principal, after: uuid.UUID | None, limit: int
    ) -> ChildLinkPage:
        require(principal, CHILD_LINKS_REVIEW)
        return await run_in_threadpool(self._candidates, principal, after, limit)

    def _candidates(
        self, principal: Principal, after: uuid.UUID | None, limit: int
    ) -> ChildLinkPage:
        with self.store.session() as s:
            links = self.identities.queue(s, principal.authorities, after, limit + 1)
            more = len(links) > limit
            links = links[:limit]
            items = [self._public(s, link, with_identity=True) for link in links]
        # Both children's identities were shown to the coordinator: recorded.
        self.intake.ledger.record(
            [
                Disclosed(
                    case_id=side.case_id,
                    record="referral",
                    record_id=side.referral_id,
                    view=DisclosureView.child_identity,
                    purpose=DisclosurePurpose.case_work,
                    **to(principal),
                )
                for item in items
                for side in (item.a, item.b)
            ]
        )
        return ChildLinkPage(items=items, next_cursor=str(links[-1].id) if more and links else None)

    # --- decisions -------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        link_id: uuid.UUID,
        action: LinkAction,
        decision: LinkDecision,
    ) -> ChildLinkPublic:
        return await run_in_threadpool(self._decide, principal, link_id, action, decision)

    def _decide(
        self,
        principal: Principal,
        link_id: uuid.UUID,
        action: LinkAction,
        decision: LinkDecision,
    ) -> ChildLinkPublic:
        rule, applies_to, leaves = DECISIONS[action]
        not_found = f"no same-child link {link_id} that you may see"
        with self.store.session() as s:
            link = s.get(ChildLink, link_id, with_for_update=True)
            if link is None or not self._delivered(s, link):
                raise ReferralNotFound(not_found)
            check(principal, rule, link_facts(link), not_found)
            status = LinkStatus(link.status)
            if status not in applies_to:
                raise LinkStateConflict(
                    f"the link is {status.value}: only a link that is "
                    f"{' or '.join(sorted(a.value for a in applies_to))} can be {action.value}"
                )
            self.identities.record(
                s,
                link,
                action,
                leaves,
                self.intake.clock(),
                user_id=principal.user_id,
                agency_id=principal.agency_id,
                role=principal.role.value if principal.role else None,
                reason=decision.reason,
            )
            s.flush()
            return self._public(s, link, with_identity=False)

    # --- the linked history ----------------------------------------------------------------

    async def history(self, principal: Principal, referral_id: uuid.UUID) -> ChildHistory:
        row = await run_in_threadpool(
            self.intake.readable, principal, referral_id, "child_history", CHILD_HISTORY_READ
        )
        return await run_in_threadpool(self._history, principal, row)

    def _history(self, principal: Principal, row: Referral) -> ChildHistory:
        with self.store.session() as s:
            ids, how, links = self.identities.history_ids(s, row.id)
            rows = sorted(
                (r for r in (s.get(Referral, i) for i in ids) if r is not None),
                key=lambda r: (r.submitted_at, str(r.id)),
            )
            entries = []
            shown = []
            for r in rows:
                month = r.submitted_at.astimezone(UK).strftime("%Y-%m")
                if r.id != row.id and not may(principal, REFERRAL_READ, self.intake.facts(s, r)):
                    entries.append(
                        HistoryEntry(
                            visible=False, local_authority=r.local_authority, submitted_month=month
                        )
                    )
                    continue
                shown.append(r)
                entries.append(
                    HistoryEntry(
                        visible=True,
                        local_authority=r.local_authority,
                        submitted_month=month,
                        referral_id=r.id,
                        case_id=r.case_referral_id or r.id,
                        agency_id=r.agency_id,
                        stage=r.stage,
                        submitted_at=r.submitted_at,
                        kind=_kind(r),
                        linked_by=how.get(r.id),
                    )
                )
        others = [r for r in shown if r.id != row.id]
        if others:
            self.intake.ledger.record(
                [
                    Disclosed(
                        case_id=r.case_referral_id or r.id,
                        record="referral",
                        record_id=r.id,
                        view=DisclosureView.child_history,
                        purpose=DisclosurePurpose.case_work,
                        **to(principal),
                    )
                    for r in others
                ]
            )
        return ChildHistory(referral_id=row.id, entries=entries, links=sorted(links))

    # --- shared ----------------------------------------------------------------------------

    @staticmethod
    def _delivered(s: Session, link: ChildLink) -> bool:
        a, b = s.get(Referral, link.a_referral_id), s.get(Referral, link.b_referral_id)
        return bool(a and b and a.workflow_started and b.workflow_started)

    def _public(self, s: Session, link: ChildLink, *, with_identity: bool) -> ChildLinkPublic:
        sides = []
        for rid in (link.a_referral_id, link.b_referral_id):
            r = s.get(Referral, rid)
            assert r is not None
            sides.append(
                LinkSide(
                    referral_id=r.id,
                    case_id=r.case_referral_id or r.id,
                    agency_id=r.agency_id,
                    local_authority=r.local_authority,
                    submitted_at=r.submitted_at,
                    identity=self.identities.identity(s, r.id) if with_identity else None,
                )
            )
        events = self.identities.events(s, [link.id]).get(link.id, [])
        return ChildLinkPublic(
            link_id=link.id,
            status=LinkStatus(link.status),
            basis=LinkBasis(link.basis),
            score=link.score,
            agreement=agreement_of(link),
            a=sides[0],
            b=sides[1],
            events=[_event(e) for e in events],
        )


def link_facts(link: ChildLink) -> Facts:
    """A link is in scope for staff serving either child's authority."""
    return Facts(local_authority=link.a_local_authority, told=frozenset({link.b_local_authority}))


def _event(e: ChildLinkEvent) -> LinkEventPublic:
    return LinkEventPublic(
        action=LinkAction(e.action),
        at=e.at,
        by_user_id=e.by_user_id,
        by_agency_id=e.by_agency_id,
        reason=e.reason,
    )


def _kind(r: Referral) -> str:
    if r.origin != "tool":
        return "missing_episodes"
    if r.case_referral_id is not None:
        return "reassessment"
    return "re_referral" if r.previous_referral_id is not None else "new_case"
