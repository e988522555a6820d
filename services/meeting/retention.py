"""The meeting service's part of the retention sweep (workflows/retention.py, ADR 0024):
erase what it holds about a child whose records have fallen due, by the child's case ids.

A meeting itself (its kind, authority, date, chair, attendance, the log of who was shown its
papers) is about the meeting, not a child, and stays; the items about the child go: the
agenda item (the case as the panel saw it, the decision and its rationale), the actions
agreed for it, and any LMAPS referral raised for it. Idempotent: a repeated erasure finds
nothing and reports 0.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection

from sqlalchemy import delete, or_, select
from temporalio import activity

from mset_contract.retention import Counts, EraseInput, EraseResult
from mset_contract.temporal import MEETING_RETENTION_ERASE_ACTIVITY
from services.meeting.store import (
    AgendaItem,
    AgreedActionRow,
    Attendee,
    Disclosure,
    LmapsReferral,
    Meeting,
    Store,
)

# Every table of the meeting service: erased by child, or why it holds nothing of a child's
# (a unit test compares these with the service's tables).
ERASED_TABLES = {
    AgendaItem.__tablename__: "the case on an agenda: snapshot, reasons, decision, rationale",
    AgreedActionRow.__tablename__: "the actions agreed for the case",
    LmapsReferral.__tablename__: "an LMAPS referral raised for the case, and why",
}
KEPT_TABLES = {
    Meeting.__tablename__: "the meeting: kind, authority, date, chair",
    Attendee.__tablename__: "who attended, for which agency",
    Disclosure.__tablename__: "who was shown a meeting's papers (the meeting, not a case)",
}


def erase_cases(store: Store, case_ids: Collection[uuid.UUID]) -> Counts:
    ids = list(case_ids)
    if not ids:
        return {}
    with store.session() as s:
        items = list(
            s.scalars(
                select(AgendaItem.id).where(
                    or_(AgendaItem.referral_id.in_(ids), AgendaItem.lmaps_referral_id.in_(ids))
                )
            )
        )
        lmaps = list(s.scalars(select(LmapsReferral.id).where(LmapsReferral.referral_id.in_(ids))))
        # An LMAPS meeting's item about this child names the LMAPS referral, not the case.
        if lmaps:
            items += list(
                s.scalars(select(AgendaItem.id).where(AgendaItem.lmaps_referral_id.in_(lmaps)))
            )
        items = list(dict.fromkeys(items))
        actions = s.execute(
            delete(AgreedActionRow).where(
                or_(AgreedActionRow.referral_id.in_(ids), AgreedActionRow.item_id.in_(items))
            )
        )
        lmaps_rows = s.execute(delete(LmapsReferral).where(LmapsReferral.referral_id.in_(ids)))
        item_rows = s.execute(delete(AgendaItem).where(AgendaItem.id.in_(items)))
        return {
            "meeting.agenda_items": _n(item_rows),
            "meeting.actions": _n(actions),
            "meeting.lmaps_referrals": _n(lmaps_rows),
        }


def _n(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


class MeetingRetentionActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Async, its database work in a thread: the meeting worker has no activity thread pool.
    @activity.defn(name=MEETING_RETENTION_ERASE_ACTIVITY)
    async def erase(self, inp: EraseInput) -> EraseResult:
        counts = await asyncio.to_thread(erase_cases, self.store, inp.subject_ids)
        return EraseResult(counts=counts)
