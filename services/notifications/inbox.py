"""The escalation inbox for staff: list, read, acknowledge, mark actioned (sync: called from
the API through the thread pool)."""

from __future__ import annotations

import uuid

from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType, RiskLevel, Role
from mset_platform.access import Rule, require
from mset_platform.paging import PageRequest
from services.notifications.disclosures import inbox_disclosed
from services.notifications.domain import AlreadyActioned, InboxItemNotFound, StaffOnly
from services.notifications.policy import (
    INBOX_ACKNOWLEDGE,
    INBOX_ACTIONED,
    INBOX_LIST,
    INBOX_READ,
)
from services.notifications.schemas import InboxItemPublic, InboxPage, InboxState
from services.notifications.store import InboxItem, Store, now_utc


def _staff(principal: Principal, rule: Rule) -> None:
    """The access policy (services/notifications/policy.py): staff who work cases, each
    seeing the items routed to them (``store.visible_to``), before any item is looked up."""
    require(principal, rule, StaffOnly)


def public(item: InboxItem) -> InboxItemPublic:
    return InboxItemPublic(
        id=item.id,
        case_id=item.case_id,
        kind=item.kind,
        urgency=item.urgency,
        level=RiskLevel(item.level) if item.level else None,
        local_authority=item.local_authority,
        rule=item.rule,
        ruleset_version=item.ruleset_version,
        fired_rules=list(item.fired_rules),
        about=item.about,
        due_at=item.due_at,
        deadline=item.deadline,
        designation=item.designation,
        target_role=Role(item.target_role) if item.target_role else None,
        target_agency_id=item.target_agency_id,
        target_authority=item.target_authority,
        target_agency_type=AgencyType(item.target_agency_type) if item.target_agency_type else None,
        reescalation_of=item.reescalation_of,
        line_step=item.line_step,
        created_at=item.created_at,
        acknowledged_at=item.acknowledged_at,
        acknowledged_by=item.acknowledged_by,
        actioned_at=item.actioned_at,
        actioned_by=item.actioned_by,
        action_note=item.action_note,
        reescalated_at=item.reescalated_at,
    )


class Inbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, principal: Principal, state: InboxState, page: PageRequest) -> InboxPage:
        _staff(principal, INBOX_LIST)
        with self.store.session() as s:
            got = self.store.inbox(s, principal, state, page)
            answer = InboxPage(items=[public(i) for i in got.rows], next_cursor=got.next_cursor)
        self.store.note_disclosures(inbox_disclosed(principal, got.rows))  # ADR 0023
        return answer

    def get(self, principal: Principal, item_id: uuid.UUID) -> InboxItemPublic:
        _staff(principal, INBOX_READ)
        with self.store.session() as s:
            item = self.store.inbox_item(s, principal, item_id)
            if item is None:
                raise InboxItemNotFound(f"no inbox item {item_id} for your role and agency")
            answer = public(item)
        self.store.note_disclosures(inbox_disclosed(principal, [item]))  # ADR 0023
        return answer

    def acknowledge(self, principal: Principal, item_id: uuid.UUID) -> InboxItemPublic:
        """Idempotent: the first acknowledgement stands."""
        _staff(principal, INBOX_ACKNOWLEDGE)
        with self.store.session() as s:
            item = self.store.inbox_item(s, principal, item_id, lock=True)
            if item is None:
                raise InboxItemNotFound(f"no inbox item {item_id} for your role and agency")
            if item.acknowledged_at is None:
                item.acknowledged_at = now_utc()
                item.acknowledged_by = principal.user_id
            return public(item)

    def actioned(self, principal: Principal, item_id: uuid.UUID, note: str) -> InboxItemPublic:
        _staff(principal, INBOX_ACTIONED)
        with self.store.session() as s:
            item = self.store.inbox_item(s, principal, item_id, lock=True)
            if item is None:
                raise InboxItemNotFound(f"no inbox item {item_id} for your role and agency")
            if item.actioned_at is not None:
                raise AlreadyActioned(f"inbox item {item_id} was already marked actioned")
            now = now_utc()
            if item.acknowledged_at is None:  # acting on it acknowledges it
                item.acknowledged_at = now
                item.acknowledged_by = principal.user_id
            item.actioned_at = now
            item.actioned_by = principal.user_id
            item.action_note = note
            return public(item)
