"""The escalation inbox for staff: list, read, acknowledge, mark actioned (sync: called from
the API through the thread pool)."""

from __future__ import annotations

import uuid

from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType, RiskLevel, Role
from services.notifications.domain import AlreadyActioned, InboxItemNotFound, StaffOnly
from services.notifications.schemas import InboxItemPublic, InboxPage, InboxState
from services.notifications.store import InboxItem, Store, now_utc


def _staff(principal: Principal) -> None:
    if principal.kind != "user" or principal.role is None:
        raise StaffOnly(
            "the inbox is for staff (a Bearer token); partner systems are told by webhook"
        )


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
        target_role=Role(item.target_role) if item.target_role else None,
        target_agency_id=item.target_agency_id,
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

    def list(self, principal: Principal, state: InboxState, limit: int) -> InboxPage:
        _staff(principal)
        with self.store.session() as s:
            items = self.store.inbox(s, principal, state, limit)
            return InboxPage(items=[public(i) for i in items])

    def get(self, principal: Principal, item_id: uuid.UUID) -> InboxItemPublic:
        _staff(principal)
        with self.store.session() as s:
            item = self.store.inbox_item(s, principal, item_id)
            if item is None:
                raise InboxItemNotFound(f"no inbox item {item_id} for your role and agency")
            return public(item)

    def acknowledge(self, principal: Principal, item_id: uuid.UUID) -> InboxItemPublic:
        """Idempotent: the first acknowledgement stands."""
        _staff(principal)
        with self.store.session() as s:
            item = self.store.inbox_item(s, principal, item_id, lock=True)
            if item is None:
                raise InboxItemNotFound(f"no inbox item {item_id} for your role and agency")
            if item.acknowledged_at is None:
                item.acknowledged_at = now_utc()
                item.acknowledged_by = principal.user_id
            return public(item)

    def actioned(self, principal: Principal, item_id: uuid.UUID, note: str) -> InboxItemPublic:
        _staff(principal)
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
