"""Minutes: attendance and decisions, as Markdown and PDF, as the reader's role may see them."""

from __future__ import annotations

import re
import uuid
import zlib
from datetime import timedelta

from mset_contract.meeting import (
    AgendaItemPublic,
    AgendaReason,
    AgreedAction,
    AttendancePublic,
    Attendee,
    Capacity,
    ItemDecisionPublic,
    MeetingPublic,
    MeetingStatus,
)
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    MeetingKind,
    RiskLevel,
    Role,
    Stage,
)
from services.meeting.domain import item_for, summarise
from services.meeting.minutes import minutes_blocks, to_markdown, to_pdf
from tests.unit.test_meeting_domain import NOW, case

POLICE = uuid.UUID("00000000-0000-4000-8000-0000000000a2")


def meeting(status: MeetingStatus = MeetingStatus.closed) -> MeetingPublic:
    mid = uuid.uuid4()
    return MeetingPublic(
        meeting_id=mid,
        kind=MeetingKind.mset,
        local_authority="northshire",
        status=status,
        called_at=NOW - timedelta(days=7),
        held_at=NOW,
        called_by_schedule=True,
        chair_name="DI Sam Okafor",
        items=2,
        decided=1,
        attendance=AttendancePublic(
            meeting_id=mid,
            chair_name="DI Sam Okafor",
            attendees=[
                Attendee(
                    person_name="DI Sam Okafor",
                    agency_name="Northshire Police",
                    agency_id=POLICE,
                    capacity=Capacity.chair,
                ),
                Attendee(person_name="Alex Reid", agency_name="Northshire CSC"),
                Attendee(person_name="Jo Patel", agency_name="Northshire Health", present=False),
            ],
            agencies_present=["Northshire CSC", "Northshire Police"],
            agencies_sent_apologies=["Northshire Health"],
        ),
    )


def items() -> list[AgendaItemPublic]:
    decided_state = case(Stage.awaiting_mset, level=RiskLevel.high)
    other_state = case(Stage.awaiting_mset)
    decided_id = uuid.uuid4()
    decision = ItemDecisionPublic(
        item_id=decided_id,
        kind="mset_review",
        decided_at=NOW,
        decided_by=uuid.uuid4(),
        decided_by_name="DI Sam Okafor",
        level=RiskLevel.high,
        rationale="Intelligence links the #hotspot to two adults",
        stage_after=Stage.active_plan,
        actions=[
            AgreedAction(
                action_id="act-1",
                owner_agency_id=POLICE,
                due_at=NOW + timedelta(days=14),
                aim=ActionAim.remove,
                target=ActionTarget.location,
                description="Closure notice for the flat",
            )
        ],
        next_review_due=NOW + timedelta(days=30),
        lmaps_referral_id=uuid.uuid4(),
        lmaps_reason="Disrupt the two adults",
    )
    return [
        AgendaItemPublic(
            item_id=decided_id,
            position=1,
            referral_id=decided_state.referral_id,
            reasons=[AgendaReason.new_to_mset],
            risk_level=RiskLevel.high,
            waiting_since=NOW - timedelta(days=3),
            case=summarise(decided_state, NOW),
            decision=decision,
        ),
        AgendaItemPublic(
            item_id=uuid.uuid4(),
            position=2,
            referral_id=other_state.referral_id,
            reasons=[AgendaReason.new_to_mset],
            risk_level=RiskLevel.medium,
            waiting_since=NOW - timedelta(days=3),
            case=summarise(other_state, NOW),
        ),
    ]


def test_markdown_minutes_record_attendance_decisions_and_actions() -> None:
    its = items()
    md = to_markdown(minutes_blocks(meeting(), its, role=Role.chair, generated_at=NOW))

    assert md.startswith("OFFICIAL-SENSITIVE")
    assert "# Minutes: MSET operational group, northshire" in md
    assert "Minutes final" in md
    assert "- Northshire Police: DI Sam Okafor (chair)" in md
    assert "## Apologies\n\n- Northshire Health: Jo Patel" in md
    assert f"### 1. Referral {its[0].referral_id}" in md
    assert "Decision: reviewed, level high; the case is now active plan." in md
    # Free text is quoted, never interpreted as Markdown.
    assert r"Intelligence links the \#hotspot to two adults" in md
    # Actions name their owner agency from the attendance, with aim, target and due date.
    assert "Action act-1 (remove / location), owner Northshire Police, due" in md
    assert "Referred to an extraordinary LMAPS meeting: Disrupt the two adults" in md
    assert f"### 2. Referral {its[1].referral_id}" in md
    assert "No decision recorded at this meeting." in md


def test_panel_members_minutes_leave_out_the_rationale() -> None:
    its = [item_for(Role.panel_member, i) for i in items()]
    md = to_markdown(minutes_blocks(meeting(), its, role=Role.panel_member, generated_at=NOW))

    assert "Rationale: withheld for your role." in md
    assert "hotspot" not in md and "Disrupt the two adults" not in md
    assert "Closure notice for the flat" in md  # members discuss the plan itself
    assert "for the panel member role" in md


def test_minutes_of_an_open_meeting_say_they_are_a_draft() -> None:
    md = to_markdown(
        minutes_blocks(meeting(MeetingStatus.in_progress), [], role=Role.chair, generated_at=NOW)
    )
    assert "Minutes draft (meeting not closed)." in md
    assert "The agenda had no cases." in md


def _pdf_text(pdf: bytes) -> str:
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            out.append(m.group(1).decode("latin-1"))
    return "".join(out)


def test_pdf_minutes_carry_the_same_content() -> None:
    its = items()
    blocks = minutes_blocks(meeting(), its, role=Role.chair, generated_at=NOW)
    pdf = to_pdf(blocks, title="Minutes")

    assert pdf.startswith(b"%PDF-")
    text = _pdf_text(pdf)
    assert str(its[0].referral_id) in text
    assert "Closure notice for the flat" in text
    assert "Northshire Health: Jo Patel" in text


def test_pdf_export_survives_text_outside_latin_1() -> None:
    its = items()
    assert its[0].decision is not None
    odd = its[0].decision.model_copy(
        update={"rationale": "Agreed \u2014 \u2705 see \u201cnote\u201d"}
    )
    its[0] = its[0].model_copy(update={"decision": odd})
    pdf = to_pdf(minutes_blocks(meeting(), its, role=Role.chair, generated_at=NOW), "M")
    assert 'Agreed - ? see "note"' in _pdf_text(pdf)


def test_minutes_hold_nothing_outside_the_meeting() -> None:
    its = items()
    md = to_markdown(minutes_blocks(meeting(), its[:1], role=Role.chair, generated_at=NOW))
    assert str(its[1].referral_id) not in md
    assert "Cases considered" in md and f"Referral {its[0].referral_id}" in md
