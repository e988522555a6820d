"""An example MSET meeting's minutes, as the reader gets them: two decisions, each with a
plan, one recorded through the meeting API and one through the referral API with the
meeting's id (both reach the meeting's record), and a third case carried over to the next
meeting; each case named by who it is about. For the README's picture and for the test that
reads the PDF back.

    python -m tests.support.minutes_example          # writes docs/minutes-example.png

needs ``pdftoppm`` (Debian's poppler-utils) for the picture; the PDF itself is fpdf2's.
Fixed ids and dates, so the picture only changes when the minutes do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    RecordedVia,
)
from mset_contract.papers import PapersWho
from mset_contract.referral_workflow import ReferralState, StageChange, TriageSummary
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    Gender,
    LegalStatus,
    MeetingKind,
    RiskLevel,
    Role,
    Stage,
)
from services.meeting.domain import summarise
from services.meeting.minutes import Block, minutes_blocks, to_pdf

HELD = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MEETING = uuid.UUID("7d0c6a52-3f43-4d55-9a36-0d8c1b1e2a01")
POLICE = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a10")
HEALTH = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a11")
EDUCATION = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a12")
# As the agency directory names them (the attendance names only the police by id).
AGENCIES = {
    POLICE: "Northshire Police",
    HEALTH: "Northshire Integrated Care Board",
    EDUCATION: "Riverside Academy Trust",
}
CHAIR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
OUT = Path(__file__).resolve().parents[2] / "docs" / "minutes-example.png"


def _case(n: int) -> ReferralState:
    at = HELD - timedelta(days=12 + n)
    return ReferralState(
        referral_id=uuid.UUID(f"5a0e4f8c-1b2d-4e6f-8a9b-00000000000{n}"),
        agency_id=uuid.UUID("00000000-0000-4000-8000-0000000000a1"),
        local_authority="northshire",
        stage=Stage.awaiting_mset,
        submitted_at=at,
        referrer_level=RiskLevel.medium,
        triage=TriageSummary(
            ruleset_version="1",
            as_of=at,
            score=11,
            suggested_level=RiskLevel.high,
            referrer_level=RiskLevel.medium,
            level=RiskLevel.high,
            recommendation="consider_at_pre_mset",
            coordinator_review=False,
            fired_rules=["score.band.high"],
        ),
        stages=[StageChange(stage=Stage.awaiting_mset, at=at)],
    )


def _action(n: str, owner: uuid.UUID, days: int, aim: str, target: str, what: str) -> AgreedAction:
    return AgreedAction(
        action_id=f"act-{n}",
        owner_agency_id=owner,
        due_at=HELD + timedelta(days=days),
        aim=ActionAim(aim),
        target=ActionTarget(target),
        description=what,
    )


# Who each case is about, as the referral service's papers say (fictional children).
WHO = {
    1: PapersWho(
        agency_child_ref="NCSC-48213",
        age_years=14,
        gender=Gender.female,
        legal_status=LegalStatus.looked_after_s20,
        local_authority="northshire",
        area_of_residence="Riverside ward",
        disability_or_sen=False,
        known_to_services=True,
        referring_agency="Northshire CSC",
        referring_agency_type=AgencyType.childrens_social_care,
        referrer_role="Social worker",
    ),
    2: PapersWho(
        agency_child_ref="NP-PERSON-55120",
        age_years=15,
        gender=Gender.male,
        legal_status=LegalStatus.child_in_need_s17,
        local_authority="northshire",
        area_of_residence="Eastgate",
        disability_or_sen=True,
        known_to_services=True,
        referring_agency="Northshire Police",
        referring_agency_type=AgencyType.police,
        referrer_role="Missing persons coordinator",
    ),
    3: PapersWho(
        agency_child_ref="NCSC-50877",
        age_years=13,
        gender=Gender.female,
        legal_status=LegalStatus.none,
        local_authority="northshire",
        area_of_residence="Millbrook",
        disability_or_sen=False,
        known_to_services=False,
        referring_agency="Riverside Academy Trust",
        referring_agency_type=AgencyType.education,
        referrer_role="Designated safeguarding lead",
    ),
}


def _item(n: int, decision: ItemDecisionPublic | None) -> AgendaItemPublic:
    state = _case(n)
    return AgendaItemPublic(
        item_id=uuid.UUID(f"9c3b2a1d-0e4f-4a5b-8c6d-00000000000{n}"),
        position=n,
        referral_id=state.referral_id,
        reasons=[AgendaReason.new_to_mset],
        risk_level=RiskLevel.high,
        waiting_since=HELD - timedelta(days=12),
        case=summarise(state, HELD),
        decision=decision,
        who=WHO[n],
        # Not reached: carried over when the meeting closed.
        carried_over_at=None if decision else HELD + timedelta(hours=2),
    )


def _decision(
    n: int,
    rationale: str,
    actions: list[AgreedAction],
    via: RecordedVia = RecordedVia.meeting_api,
    decision_id: str | None = None,
) -> ItemDecisionPublic:
    item_id = uuid.UUID(f"9c3b2a1d-0e4f-4a5b-8c6d-00000000000{n}")
    return ItemDecisionPublic(
        item_id=item_id,
        kind="mset_review",
        decided_at=HELD + timedelta(minutes=20 * n),
        decided_by=CHAIR,
        decided_by_name="DI Sam Okafor",
        level=RiskLevel.high,
        rationale=rationale,
        stage_after=Stage.active_plan,
        actions=actions,
        next_review_due=HELD + timedelta(days=30),
        decision_id=decision_id or str(item_id),
        recorded_via=via,
    )


def example_meeting() -> tuple[MeetingPublic, list[AgendaItemPublic]]:
    """An MSET meeting: two cases decided with a plan each (the second through the referral
    API's mset-review with the meeting's id), one not reached and carried over."""
    items = [
        _item(
            1,
            _decision(
                1,
                "Two further missing episodes and new contact with the older male; the panel "
                "agrees high.",
                [
                    _action("1a", POLICE, 14, "remove", "location", "Closure notice for the flat"),
                    _action(
                        "1b", POLICE, 21, "avoid", "perpetrator", "Child abduction warning notice"
                    ),
                    _action(
                        "1c", HEALTH, 10, "reduce", "victim", "Sexual health appointment offered"
                    ),
                ],
            ),
        ),
        _item(
            2,
            _decision(
                2,
                "Criminal exploitation linked to a county line; school attendance has fallen.",
                [
                    _action(
                        "2a", EDUCATION, 7, "reduce", "victim", "Daily check-in with a named adult"
                    ),
                    _action("2b", POLICE, 28, "remove", "perpetrator", "Disruption visit"),
                ],
                RecordedVia.referral_api,
                "mset-2026-11-item-2",
            ),
        ),
        _item(3, None),
    ]
    meeting = MeetingPublic(
        meeting_id=MEETING,
        kind=MeetingKind.mset,
        local_authority="northshire",
        status=MeetingStatus.closed,
        called_at=HELD,
        held_at=HELD,
        called_by_schedule=True,
        chair_name="DI Sam Okafor",
        items=3,
        decided=2,
        carried_over=1,
        attendance=AttendancePublic(
            meeting_id=MEETING,
            chair_name="DI Sam Okafor",
            attendees=[
                Attendee(
                    person_name="DI Sam Okafor",
                    agency_name="Police",
                    agency_id=POLICE,
                    capacity=Capacity.chair,
                ),
                Attendee(
                    person_name="Casey Coordinator",
                    agency_name="Northshire MSET Partnership",
                    capacity=Capacity.minute_taker,
                ),
                Attendee(
                    person_name="Alex Reid",
                    agency_name="Northshire CSC",
                    capacity=Capacity.presenter,
                ),
                Attendee(person_name="Jo Patel", agency_name="Health", present=False),
            ],
            agencies_present=["Northshire CSC", "Northshire MSET Partnership", "Police"],
            agencies_sent_apologies=["Health"],
        ),
    )
    return meeting, items


def example_blocks() -> list[Block]:
    meeting, items = example_meeting()
    return minutes_blocks(
        meeting, items, role=Role.chair, generated_at=HELD + timedelta(hours=3), agencies=AGENCIES
    )


def example_pdf() -> bytes:
    return to_pdf(example_blocks(), title=f"Minutes of meeting {MEETING}")


def main() -> None:
    tool = shutil.which("pdftoppm")
    if tool is None:
        sys.exit("needs pdftoppm: apt-get install -y poppler-utils")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "minutes.pdf"
        pdf.write_bytes(example_pdf())
        # The first page, at a resolution that reads on a README.
        page = Path(tmp) / "page"
        subprocess.run(
            [tool, "-png", "-r", "90", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(page)],
            check=True,
        )
        shutil.copyfile(page.with_suffix(".png"), OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
