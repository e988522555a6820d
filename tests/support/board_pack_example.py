"""An example board pack: a partnership's July to December 2018, made of records whose every
figure is known, with the 2019 scoping report's own figures where it gives them (its
"MSET Risk Assessment Tool and the MSET process", "Characteristics", "Exit from MSET" and
"Missing from Home or Care"). The records are counted by the real report code
(``ReportsDesk`` and ``report_tables``), from facts as ``report_store`` returns them; only
the database and the meeting service are stood in for. For the README's picture, the
figures beside the source's (docs/board-pack.md), and the tests that read the PDF back.

    python -m tests.support.board_pack_example [--suppress] [--pdf PATH]

writes docs/board-pack-page1.png and -page2.png (and the PDF where ``--pdf`` says); needs
``pdftoppm`` (Debian's poppler-utils) for the pictures. Fixed ids and dates: the pictures
change only when the board pack does.

Where the source's hand-built figures disagree with themselves, the records take one side
(the Table model refuses the other): 274 referrals with 35 low, 182 medium and 57 high (the
source printed 64 high, a mix of 281); December's interviews completed are 24 of 56 (42.9 %,
the text; its table said 27, 48 %), with 46 offered (82 %): 15 refused by the young person
and 7 by a parent or carer (the text's "29 refused" cannot be, with 46 offered and 24
completed); the MSET cohort is 7 female and 16 male (30.4 % and 69.6 %; no count of 23 gives
the printed 31 % and 69 %). Figures the source could not give (exit reasons, looked-after
status by section, ethnicity, actions, attendance by agency) are illustrative.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Collection, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from mset_contract.auth import Principal
from mset_contract.referral_workflow import CaseAction, ExitRecord, PreMsetDecisionRecord
from mset_contract.reports import AgencyAttendanceCount, AttendanceAggregate, Report
from mset_contract.types import UK
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    ExitReason,
    PreMsetOutcome,
    RiskLevel,
    Role,
)
from services.referral.board_pack import board_pack_pdf, board_pack_reports
from services.referral.report_store import CaseFacts, EpisodeFacts, FactReportStore
from services.referral.reports import MeetingAggregates, ReportQuery, ReportsDesk

AUTHORITY = "sunderland"
SINCE = datetime(2018, 7, 1, tzinfo=UK)
UNTIL = datetime(2019, 1, 1, tzinfo=UK)
GENERATED = datetime(2019, 1, 14, 9, 30, tzinfo=UK)
OUT = Path(__file__).resolve().parents[2] / "docs" / "board-pack-page1.png"
ANALYST = Principal(
    kind="user",
    agency_id=uuid.UUID("00000000-0000-4000-8000-0000000000a9"),
    agency_name="Sunderland Safeguarding Children Board",
    agency_type=AgencyType.local_authority,
    user_id=uuid.UUID("00000000-0000-4000-8000-0000000000b9"),
    user_name="Board analyst",
    role=Role.analyst,
    authorities=(AUTHORITY,),
)
POLICE = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a10")
CSC = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a13")
HEALTH = uuid.UUID("3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a11")
AGENCIES = {POLICE: "Northumbria Police", CSC: "Together for Children", HEALTH: "Sunderland CCG"}
CHAIR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")

# The source's RHI table (referrals, completed), July to December 2018; December as its text.
RHI_MONTHS = {7: (76, 59), 8: (81, 69), 9: (60, 51), 10: (102, 76), 11: (60, 39), 12: (56, 24)}


def _ids(prefix: int) -> Iterator[uuid.UUID]:
    n = 0
    while True:
        n += 1
        yield uuid.UUID(int=(prefix << 64) + n)


def _spread(items: list[tuple[str, int]]) -> list[str]:
    """Each value as many times as its count, interleaved so any slice has a mix."""
    out: list[str] = []
    left = dict(items)
    while any(left.values()):
        for k, _ in items:
            if left[k]:
                out.append(k)
                left[k] -= 1
    return out


def referrals() -> list[CaseFacts]:
    """274 referrals: 249 from children's social care, 25 from partners; 23 met the criteria
    (9 agreed medium, 14 high), all from social workers."""
    ids = _ids(1)
    agency = ["childrens_social_care"] * 249 + _spread(
        [("police", 11), ("health", 6), ("education", 5), ("voluntary_provider", 3)]
    )
    # The referrer's levels: the 23 that met the criteria first (9 medium, 14 high).
    levels = ["medium"] * 9 + ["high"] * 14 + ["low"] * 35 + ["medium"] * 173 + ["high"] * 43
    met = [True] * 23 + [False] * 251
    gender = ["female"] * 7 + ["male"] * 16 + _spread([("female", 160), ("male", 91)])
    age = [14, 14, 14, 14, 14, 14, 14, 14, 13, 13, 15, 15, 15, 16, 16, 16, 17, 12, 13, 15, 14,
           14, 15] + [int(a) for a in _spread([("16", 84), ("15", 80), ("14", 40), ("13", 22),
                                               ("17", 15), ("12", 10)])]  # fmt: skip
    legal = _spread([("looked_after_s31", 8), ("looked_after_s20", 6),
                     ("child_in_need_s17", 5), ("child_protection_plan", 4)]) + _spread(
        [("child_in_need_s17", 120), ("child_protection_plan", 50), ("looked_after_s20", 30),
         ("none", 30), ("looked_after_s31", 21)])  # fmt: skip
    area = _spread([("Central", 9), ("North", 5), ("East", 4), ("West", 3), ("Coalfield", 2)])
    area += _spread([("Central", 88), ("North", 52), ("West", 45), ("East", 39), ("Coalfield", 27)])
    ethnicity: list[str | None] = [
        *_spread([("White British", 250), ("Mixed heritage", 8), ("Asian British", 6)]),
        *([None] * 10),
    ]
    types = [("boyfriend_model", "online"), ("criminal_county_lines",), ("peer_on_peer",),
             ("party_commodity", "organised"), ("inappropriate_association",)]  # fmt: skip
    cases = []
    for i in range(274):
        # Evenly over the six months, from 2 July.
        submitted = SINCE + timedelta(days=1 + (i * 182) // 274, hours=10)
        outcome = PreMsetOutcome.meets_criteria if met[i] else PreMsetOutcome.not_met
        agreed = RiskLevel(levels[i]) if met[i] else RiskLevel.low
        decided = submitted + timedelta(days=(3, 6, 10, 13, 20)[i % 5])
        cases.append(
            CaseFacts(
                case_id=next(ids),
                local_authority=AUTHORITY,
                agency_type=agency[i],
                origin="tool",
                submitted_at=submitted,
                referrer_level=levels[i],
                suggested_level=levels[i],
                gender=gender[i],
                age_at_referral=age[i],
                ethnicity=ethnicity[(i * 37) % 274],
                legal_status=legal[i],
                area_of_residence=area[i],
                exploitation_types=types[i % 5] if i % 11 else (),
                pre_mset=PreMsetDecisionRecord(
                    decision_id=f"pre-{i}",
                    outcome=outcome,
                    level=agreed,
                    rationale=None,
                    decided_by=CHAIR,
                    meeting_id=None,
                    decided_at=min(decided, UNTIL - timedelta(days=1)),
                ),
                exit=None,
                actions=_actions(i, submitted) if met[i] else (),
            )
        )
    return cases


def _actions(i: int, submitted: datetime) -> tuple[CaseAction, ...]:
    plan = [(ActionAim.remove, ActionTarget.perpetrator, POLICE, 14, 10),
            (ActionAim.reduce, ActionTarget.victim, CSC, 21, 30),
            (ActionAim.avoid, ActionTarget.location, HEALTH, 28, None)]  # fmt: skip
    made = submitted + timedelta(days=24)
    out = []
    for n, (aim, target, owner, due, done) in enumerate(plan):
        if (i + n) % 4 == 3:
            continue
        out.append(
            CaseAction(
                action_id=f"act-{i}-{n}",
                owner_agency_id=owner,
                due_at=made + timedelta(days=due),
                aim=aim,
                target=target,
                description="(illustrative)",
                created_at=made,
                review_id=f"r-{i}",
                completed_at=None if done is None or i % 3 == 0 else made + timedelta(days=done),
            )
        )
    return tuple(out)


def exited() -> list[CaseFacts]:
    """67 exits in the period, of cases that met the criteria in 2017 and 2018."""
    ids = _ids(2)
    reasons = _spread([("sufficiently_safe", 38), ("nothing_more_mset_can_offer", 12),
                       ("moved_out_of_area", 8), ("transition_to_adult_services", 5),
                       ("other", 4)])  # fmt: skip
    out = []
    for i, reason in enumerate(reasons):
        entered = SINCE - timedelta(days=40 + (i * 9) % 400)
        out.append(
            CaseFacts(
                case_id=next(ids),
                local_authority=AUTHORITY,
                agency_type="childrens_social_care",
                origin="tool",
                submitted_at=entered - timedelta(days=12),
                referrer_level="high" if i % 3 == 0 else "medium",
                suggested_level="high" if i % 3 == 0 else "medium",
                gender="female" if i % 2 else "male",
                age_at_referral=15,
                ethnicity="White British",
                legal_status="looked_after_s20",
                area_of_residence="Central",
                exploitation_types=("boyfriend_model",),
                pre_mset=PreMsetDecisionRecord(
                    decision_id=f"pre-x{i}",
                    outcome=PreMsetOutcome.meets_criteria,
                    level=RiskLevel.high if i % 3 == 0 else RiskLevel.medium,
                    rationale=None,
                    decided_by=CHAIR,
                    meeting_id=None,
                    decided_at=entered,
                ),
                exit=ExitRecord(
                    reason=ExitReason(reason),
                    detail=None,
                    decided_by=CHAIR,
                    exited_at=SINCE + timedelta(days=2 + (i * 180) // 67, hours=11),
                ),
            )
        )
    return out


def episodes() -> list[EpisodeFacts]:
    """Missing episodes, one a return, July to December as the source's RHI table; one child
    in five goes missing again within the month (a repeat)."""
    ids = _ids(3)
    out = []
    for month, (referred, completed) in RHI_MONTHS.items():
        if month == 12:  # as tests/unit/test_report_tables.py has December
            counts = {"refused_by_young_person": 15, "refused_by_parent_carer": 7,
                      "not_offered": 6, "awaiting": 4}  # fmt: skip
        else:
            left = referred - completed
            yp, parent = (left * 5) // 10, (left * 3) // 10
            counts = {"refused_by_young_person": yp, "refused_by_parent_carer": parent,
                      "not_offered": left - yp - parent}  # fmt: skip
        outcomes: list[str | None] = ["completed"] * completed
        for what, n in counts.items():
            outcomes += [None if what == "awaiting" else what] * n
        first = datetime(2018, month, 1, 9, tzinfo=UK)
        for i, outcome in enumerate(outcomes):
            child = f"MFH-{month}-{i - 1 if i % 5 == 4 else i}"  # every fifth: the one before
            reported = first + timedelta(hours=(i * 24 * 26) // referred)
            returned = reported + timedelta(hours=20)
            offered = None
            if outcome not in (None, "not_offered"):
                offered = returned + timedelta(hours=30 if i % 6 else 90)
            out.append(
                EpisodeFacts(
                    episode_id=next(ids),
                    local_authority=AUTHORITY,
                    child=(POLICE, child),
                    reported_at=reported,
                    returned_at=returned,
                    rhi_offered_at=offered,
                    rhi_outcome=outcome,
                )
            )
    return out


class ExampleStore(FactReportStore):
    """The report store's queries over the example's facts."""

    def __init__(self) -> None:
        self.cases = referrals()
        self.gone = exited()
        self.eps = episodes()

    def referred(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[CaseFacts]:
        return [c for c in self.cases if since <= c.submitted_at < until]

    def exited(self, authorities: Collection[str]) -> list[CaseFacts]:
        return self.gone

    def changed_since(self, authorities: Collection[str], since: datetime) -> list[CaseFacts]:
        return [c for c in self.cases if c.actions]

    def agency_names(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {i: AGENCIES[i] for i in ids if i in AGENCIES}

    def episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[EpisodeFacts]:
        return [e for e in self.eps if since <= e.reported_at < until]

    def earlier_episodes(
        self, authorities: Collection[str], since: datetime, until: datetime
    ) -> list[tuple[tuple[uuid.UUID, str], datetime]]:
        return [(e.child, e.reported_at) for e in self.eps if since <= e.reported_at < until]


class ExampleMeetings(MeetingAggregates):
    """Six Pre-MSET panels and six MSET meetings, as the source says were held."""

    def __init__(self) -> None:
        pass

    async def attendance(
        self, local_authority: str, since: datetime, until: datetime
    ) -> AttendanceAggregate:
        seen = [("Together for Children", 12, 0), ("Northumbria Police", 12, 0),
                ("Barnardo's", 11, 1), ("Sunderland CCG", 9, 2),
                ("Sunderland City Council community safety", 8, 2),
                ("Education (schools)", 7, 3)]  # fmt: skip
        return AttendanceAggregate(
            local_authority=local_authority,
            since=since,
            until=until,
            meetings=12,
            agencies=[
                AgencyAttendanceCount(agency_name=n, attended=a, sent_apologies=s)
                for n, a, s in seen
            ],
        )

    async def aclose(self) -> None:
        return None


def example_desk() -> ReportsDesk:
    return ReportsDesk(
        ExampleStore(), ExampleMeetings(), [AUTHORITY, "gateshead"], clock=lambda: GENERATED
    )


def example_reports() -> list[Report]:
    query = ReportQuery(authority=AUTHORITY, region=None, since=SINCE, until=UNTIL)
    return asyncio.run(board_pack_reports(example_desk(), ANALYST, query))


def example_pdf(threshold: int | None = None) -> bytes:
    return board_pack_pdf(example_reports(), threshold=threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suppress", action="store_true", help="Suppress counts of 1 to 4.")
    parser.add_argument("--pdf", type=Path, help="Also write the PDF here.")
    args = parser.parse_args()
    tool = shutil.which("pdftoppm")
    if tool is None:
        sys.exit("needs pdftoppm: apt-get install -y poppler-utils")
    data = example_pdf(5 if args.suppress else None)
    if args.pdf is not None:
        args.pdf.write_bytes(data)
        print(f"wrote {args.pdf}")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "board-pack.pdf"
        pdf.write_bytes(data)
        # The cover, and the first section's page: charts beside their tables.
        for n, out in ((1, OUT), (2, OUT.with_name("board-pack-page2.png"))):
            page = Path(tmp) / f"page{n}"
            pages = ["-f", str(n), "-l", str(n), "-singlefile"]
            subprocess.run([tool, "-png", "-r", "90", *pages, str(pdf), str(page)], check=True)
            shutil.copyfile(page.with_suffix(".png"), out)
            print(f"wrote {out}")


if __name__ == "__main__":
    main()
