"""Every row of docs/escalation-routing.md, with real users: agencies and staff created in the
referral service (their authorities recorded there), tokens introspected by the notifications
API over HTTP, escalations published through the real activity onto the real broker and made
into items by the real inbox consumer, on SQLite and PostgreSQL (issue 10, defects 3 and 4)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from mset_contract.events import (
    EscalationTargetRef,
    MsetEvent,
    ReferralEscalated,
    high_risk_escalation,
)
from mset_contract.triage import AgencyDesignation, EscalationKind, Urgency
from mset_contract.vocab import AgencyType, Role
from mset_platform.paging import every_item
from services.notifications.store import InboxItem
from tests.integration.notifications_fixtures import (  # noqa: F401 - fixtures
    NotificationsStack,
    notif_db_fixture,
    notifications_fixture,
    smtp_server_fixture,
    webhook_receiver_fixture,
)
from tests.support.wait import eventually

NS, EM = "northshire", "eastmoor"
D = AgencyDesignation


@dataclass
class Cast:
    tokens: dict[str, str]  # who -> token
    csc_id: uuid.UUID  # the referring agency
    health_id: uuid.UUID  # the agency owning an action


def cast(stack: NotificationsStack) -> Cast:
    """Staff of several agencies and authorities, each with the authorities they serve."""
    tag = uuid.uuid4().hex[:8]
    tokens: dict[str, str] = {}

    def agency(
        label: str,
        type_: AgencyType,
        authority: str | None = None,
        rhi_provider_for: tuple[str, ...] = (),
    ) -> str:
        name = f"{label} {tag}"
        stack.identity.create_agency(name, type_, authority, rhi_provider_for)
        return name

    def user(who: str, role: Role, agency_name: str, *serves: str) -> None:
        tokens[who] = stack.identity.create_user(f"{who} {tag}", role, agency_name, serves).secret

    ns_council = agency("Northshire Council", AgencyType.local_authority, NS)
    user("ns_chair", Role.chair, ns_council, NS)
    user("ns_coordinator", Role.coordinator, ns_council, NS)
    user("ns_manager", Role.manager, ns_council, NS)
    em_council = agency("Eastmoor Council", AgencyType.local_authority, EM)
    user("em_chair", Role.chair, em_council, EM)
    user("em_coordinator", Role.coordinator, em_council, EM)
    # A new council whose staff have no authority recorded yet: they serve none.
    new_council = agency("Westdale Council", AgencyType.local_authority)
    user("new_chair", Role.chair, new_council)
    user("new_coordinator", Role.coordinator, new_council)
    csc = agency("Northshire CSC", AgencyType.childrens_social_care, NS)
    user("csc_chair", Role.chair, csc, NS)  # a chair who belongs to social care
    user("csc_manager", Role.manager, csc, NS)
    user("csc_worker", Role.panel_member, csc, NS)
    police = agency("Shire Police", AgencyType.police)  # regional: serves both
    user("police_chair", Role.chair, police, NS, EM)
    health = agency("Shire Health", AgencyType.health)
    user("health_manager", Role.manager, health)
    user("health_nurse", Role.provider, health)
    # The council's own RHI team, commissioned by Northshire (not a voluntary provider).
    rhi = agency("Northshire RHI Team", AgencyType.childrens_social_care, rhi_provider_for=(NS,))
    user("rhi_manager", Role.manager, rhi)
    user("rhi_worker", Role.provider, rhi)
    vol_ns = agency("Northshire Young People", AgencyType.voluntary_provider, NS)
    user("vol_ns_manager", Role.manager, vol_ns)
    vol_regional = agency("Regional Charity", AgencyType.voluntary_provider)
    user("vol_regional_ns_manager", Role.manager, vol_regional, NS)
    user("vol_regional_em_manager", Role.manager, vol_regional, EM)
    vol_em = agency("Eastmoor Young People", AgencyType.voluntary_provider, EM)
    user("vol_em_manager", Role.manager, vol_em)
    return Cast(tokens, stack.agency_id(csc), stack.agency_id(health))


SERVE_NS = {
    "ns_chair",
    "ns_coordinator",
    "ns_manager",
    "csc_chair",
    "csc_manager",
    "csc_worker",
    "police_chair",
    "vol_regional_ns_manager",
}
SERVE_EM = {"em_chair", "em_coordinator", "police_chair", "vol_regional_em_manager"}
NS_RHI_PROVIDER = {"rhi_manager", "rhi_worker", "vol_ns_manager", "vol_regional_ns_manager"}


def rows(c: Cast) -> list[tuple[str, EscalationKind, EscalationTargetRef, set[str]]]:
    """(row of docs/escalation-routing.md, kind, target, who must receive it: exactly)."""
    owner = str(c.health_id)
    return [
        (
            "referring_agency + role",
            EscalationKind.high_risk,
            EscalationTargetRef(role=Role.manager, agency=D.referring_agency),
            {"csc_manager"},
        ),
        (
            "referring_agency, case holder",
            EscalationKind.reassessment_overdue,
            EscalationTargetRef(agency=D.referring_agency),
            {"csc_chair", "csc_manager", "csc_worker"},
        ),
        (
            "action_owner + role",
            EscalationKind.action_overdue,
            EscalationTargetRef(role=Role.manager, agency=D.action_owner, agency_ref=owner),
            {"health_manager"},
        ),
        (
            "action_owner, no role",
            EscalationKind.action_due_soon,
            EscalationTargetRef(agency=D.action_owner, agency_ref=owner),
            {"health_manager", "health_nurse"},
        ),
        (
            "local_authority + chair",
            EscalationKind.high_risk,
            EscalationTargetRef(role=Role.chair, agency=D.local_authority),
            {"ns_chair", "csc_chair", "police_chair"},
        ),
        (
            "local_authority + coordinator",
            EscalationKind.transition_to_adult_services,
            EscalationTargetRef(role=Role.coordinator, agency=D.local_authority, agency_ref=NS),
            {"ns_coordinator"},
        ),
        (
            "local_authority + manager",
            EscalationKind.child_protection,
            EscalationTargetRef(role=Role.manager, agency=D.local_authority),
            # Every manager who serves Northshire, a voluntary provider's too.
            {"ns_manager", "csc_manager", "vol_regional_ns_manager"},
        ),
        (
            "local_authority (another authority named) + coordinator",
            EscalationKind.judgement_review,
            EscalationTargetRef(role=Role.coordinator, agency=D.local_authority, agency_ref=EM),
            {"em_coordinator"},
        ),
        (
            "local_authority, no role",
            EscalationKind.judgement_review,
            EscalationTargetRef(agency=D.local_authority),
            SERVE_NS,
        ),
        (
            "other_authority + coordinator",
            EscalationKind.missing_in_other_authority,
            EscalationTargetRef(role=Role.coordinator, agency=D.other_authority, agency_ref=EM),
            {"em_coordinator"},
        ),
        (
            "other_authority, no role",
            EscalationKind.missing_in_other_authority,
            EscalationTargetRef(agency=D.other_authority, agency_ref=EM),
            SERVE_EM,
        ),
        (
            "rhi_provider + manager",
            EscalationKind.rhi_not_offered,
            EscalationTargetRef(role=Role.manager, agency=D.rhi_provider, agency_ref=NS),
            {"rhi_manager", "vol_ns_manager", "vol_regional_ns_manager"},
        ),
        (
            "rhi_provider, no role",
            EscalationKind.rhi_not_offered,
            EscalationTargetRef(agency=D.rhi_provider),
            NS_RHI_PROVIDER,
        ),
    ]


def escalation(
    c: Cast, kind: EscalationKind, ref: EscalationTargetRef, now: datetime
) -> ReferralEscalated:
    # Routine: no re-escalation timer and no e-mail, so each case holds exactly this item.
    return high_risk_escalation(uuid.uuid4(), c.csc_id, NS, now).model_copy(
        update={"kind": kind, "urgency": Urgency.routine, "notify": [ref], "level": None}
    )


async def test_every_row_of_the_routing_table_reaches_exactly_its_people(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    c = cast(stack)
    now = datetime.now(UTC)
    table = rows(c)
    events = [escalation(c, kind, ref, now) for _, kind, ref, _ in table]
    await stack.publish(list[MsetEvent](events))

    async def consumed() -> bool:
        with stack.store.session() as s:
            n = s.scalar(
                select(func.count())
                .select_from(InboxItem)
                .where(InboxItem.event_id.in_([e.id for e in events]))
            )
        return n == len(events)

    await eventually(consumed, what="the inbox consumer made an item per escalation")

    async def seen_by(who: str) -> set[uuid.UUID]:
        async with stack.http(c.tokens[who]) as http:
            got = await every_item(http, "/v1/inbox", [("state", "all")])
        return {uuid.UUID(i["case_id"]) for i in got}

    people = sorted(c.tokens)
    inboxes = dict(zip(people, await asyncio.gather(*(seen_by(p) for p in people)), strict=True))
    got = {
        row: {p for p in people if e.subject in inboxes[p]}
        for (row, *_), e in zip(table, events, strict=True)
    }
    want = {row: who for row, _, _, who in table}
    assert got == want
    # Nobody with no authority recorded saw an authority-level item.
    assert not inboxes["new_chair"] & {e.subject for e in events}
    assert not inboxes["new_coordinator"] & {e.subject for e in events}


async def test_an_item_shows_what_it_was_routed_by(notifications: NotificationsStack) -> None:
    stack = notifications
    c = cast(stack)
    ref = EscalationTargetRef(role=Role.coordinator, agency=D.other_authority, agency_ref=EM)
    event = escalation(c, EscalationKind.missing_in_other_authority, ref, datetime.now(UTC))
    await stack.publish([event])

    async def item() -> list[dict[str, object]]:
        async with stack.http(c.tokens["em_coordinator"]) as http:
            got = await every_item(http, "/v1/inbox", [("state", "all")])
        return [i for i in got if i["case_id"] == str(event.subject)]

    (got,) = await eventually(item)
    assert got["designation"] == "other_authority" and got["target_authority"] == EM
    assert got["target_role"] == "coordinator" and got["target_agency_id"] is None
    assert got["local_authority"] == NS  # the case's own authority, kept beside it
