"""The report tables, made from the facts ``report_store`` returns: plain logic, no database
or web code. Every table is a ``mset_contract.reports.Table``, whose validator refuses one
that does not reconcile; these functions count each record once, in one row ("not recorded"
is a row), so what they build always does.

Periods are half-open, [since, until). Months are calendar months in England. Where a record
has moved on since the period ended (a decision made after it), the report counts it as it is
recorded now: the report is of the records, as at ``generated_at``.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta

from mset_contract.referral_workflow import CaseAction
from mset_contract.reports import AttendanceAggregate, Bound, Column, Part, Ratio, Row, Table
from mset_contract.types import UK, today_uk
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    ExitReason,
    ExploitationType,
    Gender,
    LegalStatus,
    PreMsetOutcome,
    RhiOutcome,
    RiskLevel,
)
from services.referral.report_store import CaseFacts, EpisodeFacts

NOT_RECORDED = "not recorded"
LEVELS = [lv.value for lv in RiskLevel]
RHI_WITHIN = timedelta(hours=72)
REPEAT_WINDOW = timedelta(days=90)

# Age at referral, in whole years on the day the referral was made.
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("under 12", 0, 11),
    ("12 to 13", 12, 13),
    ("14 to 15", 14, 15),
    ("16 to 17", 16, 17),
    ("18 and over", 18, 200),
)
# Days from referral to the Pre-MSET decision.
DECISION_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0 to 7 days", 0, 7),
    ("8 to 14 days", 8, 14),
    ("15 to 31 days", 15, 31),
    ("32 to 62 days", 32, 62),
    ("63 days and over", 63, 1_000_000),
)
# Days in MSET, from the decision that the case met the criteria (or the referral) to exit.
TIME_IN_MSET_BANDS: tuple[tuple[str, int, int], ...] = (
    ("under 3 months", 0, 90),
    ("3 to 6 months", 91, 182),
    ("6 to 12 months", 183, 364),
    ("12 months and over", 365, 1_000_000),
)


def _band(value: int | None, bands: Sequence[tuple[str, int, int]]) -> str | None:
    if value is None:
        return None
    return next((label for label, lo, hi in bands if lo <= value <= hi), None)


def counted(
    key: str,
    title: str,
    row_header: str,
    columns: Sequence[tuple[str, str, Sequence[str | None]]],
    order: Sequence[str],
    *,
    unknown: str = NOT_RECORDED,
    notes: Sequence[str] = (),
) -> Table:
    """A breakdown: each column counts its records by the row each falls in (None: the
    ``unknown`` row), every row of ``order`` shown, others found after them; each column's
    total is its number of records, and each row's share of it is a percentage."""
    counts = {c: Counter(unknown if v is None else v for v in vals) for c, _, vals in columns}
    found = sorted({v for cnt in counts.values() for v in cnt} - {*order, unknown})
    labels = [*order, *found]
    if any(cnt[unknown] for cnt in counts.values()):
        labels.append(unknown)
    return Table(
        key=key,
        title=title,
        row_header=row_header,
        columns=[Column(key=c, label=lab) for c, lab, _ in columns],
        rows=[Row(label=lab, counts={c: counts[c][lab] for c, _, _ in columns}) for lab in labels],
        total=Row(label="total", counts={c: len(vals) for c, _, vals in columns}),
        ratios=[Ratio(key=f"{c}_share", label=f"% of {lab}", numerator=c) for c, lab, _ in columns],
        notes=list(notes),
    )


def counted_many(
    key: str,
    title: str,
    row_header: str,
    columns: Sequence[tuple[str, str, Sequence[Iterable[str]]]],
    order: Sequence[str],
    *,
    none: str = "none recorded",
) -> Table:
    """A breakdown where a record may be in several rows (not additive): each row counts the
    records that have it; the total is the number of records."""
    counts: dict[str, Counter[str]] = {}
    for c, _, vals in columns:
        cnt: Counter[str] = Counter()
        for v in vals:
            got = set(v)
            cnt.update(got or {none})
        counts[c] = cnt
    found = sorted({v for cnt in counts.values() for v in cnt} - {*order, none})
    labels = [*order, *found, none]
    return Table(
        key=key,
        title=title,
        row_header=row_header,
        columns=[Column(key=c, label=lab) for c, lab, _ in columns],
        rows=[Row(label=lab, counts={c: counts[c][lab] for c, _, _ in columns}) for lab in labels],
        total=Row(label="total", counts={c: len(vals) for c, _, vals in columns}),
        additive=False,
        ratios=[Ratio(key=f"{c}_share", label=f"% of {lab}", numerator=c) for c, lab, _ in columns],
        notes=["A record may have several: the rows add up to more than the total."],
    )


# --- referrals -------------------------------------------------------------------------------


def referrals_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    return [
        counted(
            "by_agency_type",
            "Referrals by referring agency type",
            "referring agency type",
            [("referrals", "referrals", [c.agency_type for c in cases])],
            [t.value for t in AgencyType],
        ),
        counted(
            "risk_at_referral",
            "Risk level at referral: the rules' suggestion and the referrer's own",
            "risk level",
            [
                ("suggested", "suggested by the rules", [c.suggested_level for c in cases]),
                ("referrer", "the referrer's own", [c.referrer_level for c in cases]),
            ],
            LEVELS,
            notes=[
                "The rules' suggestion is the latest the case recorded: at referral, unless "
                "a new tool or a missing episode re-triaged the case since."
            ],
        ),
    ]


# --- Pre-MSET --------------------------------------------------------------------------------

AWAITING = "awaiting decision"


def pre_mset_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    outcome = [c.pre_mset.outcome.value if c.pre_mset else AWAITING for c in cases]
    met = [c for c in cases if c.pre_mset and c.pre_mset.outcome is PreMsetOutcome.meets_criteria]
    by_level: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cases:
        row = c.referrer_level if c.referrer_level in LEVELS else NOT_RECORDED
        by_level[row]["referrals"] += 1
        if c.pre_mset is not None and c.pre_mset.outcome is not PreMsetOutcome.more_information:
            by_level[row]["decided"] += 1
        if c.pre_mset is not None and c.pre_mset.outcome is PreMsetOutcome.meets_criteria:
            by_level[row]["met_criteria"] += 1
    cols = ("referrals", "decided", "met_criteria")
    labels = [*LEVELS, *([NOT_RECORDED] if by_level.get(NOT_RECORDED) else [])]
    conversion = Table(
        key="conversion",
        title="Conversion to MSET, by the referrer's level",
        row_header="the referrer's level",
        columns=[
            Column(key="referrals", label="referrals"),
            Column(key="decided", label="decided (met or not met)"),
            Column(key="met_criteria", label="met the criteria for MSET"),
        ],
        rows=[Row(label=lab, counts={k: by_level[lab][k] for k in cols}) for lab in labels],
        total=Row(label="total", counts={k: sum(by_level[lab][k] for lab in labels) for k in cols}),
        ratios=[
            Ratio(
                key="conversion",
                label="% of referrals",
                numerator="met_criteria",
                denominator="referrals",
            ),
            Ratio(
                key="conversion_of_decided",
                label="% of those decided",
                numerator="met_criteria",
                denominator="decided",
            ),
        ],
        bounds=[
            Bound(lesser="decided", greater="referrals"),
            Bound(lesser="met_criteria", greater="decided"),
        ],
    )
    days = [
        (today_uk(c.pre_mset.decided_at) - today_uk(c.submitted_at)).days
        if c.pre_mset and c.pre_mset.outcome is not PreMsetOutcome.more_information
        else None
        for c in cases
    ]
    return [
        counted(
            "outcomes",
            "Pre-MSET outcomes of the period's referrals",
            "outcome",
            [("referrals", "referrals", outcome)],
            [o.value for o in PreMsetOutcome],
        ),
        conversion,
        counted(
            "met_by_level",
            "Met the criteria for MSET, by the level the Pre-MSET panel agreed",
            "level agreed at Pre-MSET",
            [
                (
                    "met_criteria",
                    "met the criteria",
                    [c.pre_mset.level.value for c in met if c.pre_mset],
                )
            ],
            LEVELS,
        ),
        counted(
            "time_to_decision",
            "Time from referral to the Pre-MSET decision (met or not met)",
            "days from referral",
            [("referrals", "referrals", [_band(d, DECISION_BANDS) for d in days])],
            [b[0] for b in DECISION_BANDS],
            unknown=AWAITING,
            notes=["A case waiting for more information is counted as awaiting decision."],
        ),
    ]


# --- the profile: the Pre-MSET cohort beside the MSET cohort --------------------------------


def profile_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    mset = [c for c in cases if c.pre_mset and c.pre_mset.outcome is PreMsetOutcome.meets_criteria]

    def both(
        key: str, title: str, header: str, of: Callable[[CaseFacts], str | None], order: list[str]
    ) -> Table:
        return counted(
            key,
            title,
            header,
            [
                ("pre_mset", "Pre-MSET cohort", [of(c) for c in cases]),
                ("mset", "MSET cohort", [of(c) for c in mset]),
            ],
            order,
        )

    def age(c: CaseFacts) -> str | None:
        return _band(c.age_at_referral, AGE_GROUPS)

    def area(c: CaseFacts) -> str | None:
        return c.area_of_residence.strip() if c.area_of_residence else None

    def ethnicity(c: CaseFacts) -> str | None:
        return c.ethnicity.strip() if c.ethnicity else None

    return [
        both("gender", "Gender", "gender", lambda c: c.gender, [g.value for g in Gender]),
        both("age_group", "Age at referral", "age group", age, [a[0] for a in AGE_GROUPS]),
        both(
            "legal_status",
            "Legal status",
            "legal status",
            lambda c: c.legal_status,
            [s.value for s in LegalStatus],
        ),
        both("area_of_residence", "Area of residence", "area", area, []),
        both("ethnicity", "Ethnicity", "ethnicity", ethnicity, []),
        counted_many(
            "exploitation_types",
            "Exploitation types",
            "exploitation type",
            [
                ("pre_mset", "Pre-MSET cohort", [c.exploitation_types for c in cases]),
                ("mset", "MSET cohort", [c.exploitation_types for c in mset]),
            ],
            [t.value for t in ExploitationType],
        ),
    ]


# --- exits -----------------------------------------------------------------------------------


def exits_tables(cases: Sequence[CaseFacts], since: datetime, until: datetime) -> list[Table]:
    exited = [c for c in cases if c.exit is not None and since <= c.exit.exited_at < until]

    def days_in(c: CaseFacts) -> int | None:
        assert c.exit is not None
        p = c.pre_mset
        start = p.decided_at if p and p.outcome is PreMsetOutcome.meets_criteria else None
        return (today_uk(c.exit.exited_at) - today_uk(start or c.submitted_at)).days

    return [
        counted(
            "by_reason",
            "Exits from MSET by reason",
            "exit reason",
            [("exits", "exits", [c.exit.reason.value for c in exited if c.exit])],
            [r.value for r in ExitReason],
        ),
        counted(
            "time_in_mset",
            "Time in MSET at exit",
            "time in MSET",
            [("exits", "exits", [_band(days_in(c), TIME_IN_MSET_BANDS) for c in exited])],
            [b[0] for b in TIME_IN_MSET_BANDS],
            notes=[
                "From the Pre-MSET decision that the case met the criteria (for a case "
                "with none recorded, from the referral) to the exit."
            ],
        ),
    ]


# --- missing episodes and Return Home Interviews --------------------------------------------


def months(since: datetime, until: datetime) -> list[date]:
    """The first day of each calendar month (in England) the period touches."""
    first = today_uk(since).replace(day=1)
    last = today_uk(until - timedelta(microseconds=1))
    out = []
    m = first
    while m <= last:
        out.append(m)
        m = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _month(at: datetime) -> str:
    return at.astimezone(UK).strftime("%Y-%m")


RHI_COLUMNS = (
    ("referred", "referred (children returned)"),
    ("offered", "interview offered"),
    ("offered_72h", "offered within 72 hours"),
    ("completed", "completed"),
    ("refused_young_person", "refused by the young person"),
    ("refused_parent_carer", "refused by a parent or carer"),
    ("not_offered", "not offered"),
    ("awaiting_outcome", "outcome not yet recorded"),
)

# The interview's outcome, offered: its column.
RHI_OUTCOME_COLUMN = {
    RhiOutcome.completed.value: "completed",
    RhiOutcome.refused_by_young_person.value: "refused_young_person",
    RhiOutcome.refused_by_parent_carer.value: "refused_parent_carer",
}


def missing_tables(
    episodes: Sequence[EpisodeFacts],
    before: Sequence[tuple[tuple[uuid.UUID, str], datetime]],
    since: datetime,
    until: datetime,
    rhi_target_percent: float,
) -> list[Table]:
    labels = [m.strftime("%Y-%m") for m in months(since, until)]
    # Repeat missing: an episode of a child with another episode in the 90 days before it.
    history: dict[tuple[uuid.UUID, str], list[datetime]] = defaultdict(list)
    for child, at in before:
        history[child].append(at)
    reported = [e for e in episodes if since <= e.reported_at < until]
    for e in reported:
        history[e.child].append(e.reported_at)
    ep: dict[str, Counter[str]] = defaultdict(Counter)
    for e in reported:
        row = ep[_month(e.reported_at)]
        row["episodes"] += 1
        if any(e.reported_at - REPEAT_WINDOW <= t < e.reported_at for t in history[e.child]):
            row["repeat"] += 1
        if e.returned_at is not None:
            row["returned"] += 1
    ep_cols = ("episodes", "returned", "repeat")
    episodes_table = Table(
        key="episodes_by_month",
        title="Missing episodes reported, by month",
        row_header="month reported",
        columns=[
            Column(key="episodes", label="episodes reported"),
            Column(key="returned", label="of which the return is recorded"),
            Column(key="repeat", label="repeat (another episode of the child in 90 days)"),
        ],
        rows=[Row(label=m, counts={k: ep[m][k] for k in ep_cols}) for m in labels],
        total=Row(label="total", counts={k: sum(ep[m][k] for m in labels) for k in ep_cols}),
        ratios=[Ratio(key="repeat", label="% repeat", numerator="repeat", denominator="episodes")],
        bounds=[
            Bound(lesser="returned", greater="episodes"),
            Bound(lesser="repeat", greater="episodes"),
        ],
    )
    rhi: dict[str, Counter[str]] = defaultdict(Counter)
    for e in episodes:
        if e.returned_at is None or not since <= e.returned_at < until:
            continue
        row = rhi[_month(e.returned_at)]
        row["referred"] += 1
        outcome = e.rhi_outcome
        if outcome is None:
            row["awaiting_outcome"] += 1
        elif outcome == RhiOutcome.not_offered.value:
            row["not_offered"] += 1
        else:
            row[RHI_OUTCOME_COLUMN[outcome]] += 1
            row["offered"] += 1
            if e.rhi_offered_at is not None and e.rhi_offered_at - e.returned_at <= RHI_WITHIN:
                row["offered_72h"] += 1
    keys = [k for k, _ in RHI_COLUMNS]
    rhi_table = Table(
        key="rhi_by_month",
        title="Return Home Interviews, by month of the child's return",
        row_header="month of return",
        columns=[Column(key=k, label=lab) for k, lab in RHI_COLUMNS],
        rows=[Row(label=m, counts={k: rhi[m][k] for k in keys}) for m in labels],
        total=Row(label="total", counts={k: sum(rhi[m][k] for m in labels) for k in keys}),
        ratios=[
            Ratio(key="offered", label="% offered", numerator="offered", denominator="referred"),
            Ratio(
                key="offered_72h",
                label="% offered within 72 hours",
                numerator="offered_72h",
                denominator="referred",
            ),
            Ratio(
                key="completion",
                label="completion rate",
                numerator="completed",
                denominator="referred",
                target_percent=rhi_target_percent,
            ),
        ],
        parts=[
            Part(
                whole="referred",
                parts=[
                    "completed",
                    "refused_young_person",
                    "refused_parent_carer",
                    "not_offered",
                    "awaiting_outcome",
                ],
            ),
            Part(
                whole="offered", parts=["completed", "refused_young_person", "refused_parent_carer"]
            ),
        ],
        bounds=[Bound(lesser="offered_72h", greater="offered")],
        notes=[
            "Why an interview was not offered is recorded as free text and is not counted "
            "here; it stays with the episode."
        ],
    )
    return [episodes_table, rhi_table]


# --- actions ---------------------------------------------------------------------------------

ACTION_COLUMNS = (
    ("actions", "actions agreed"),
    ("completed_on_time", "completed by the due date"),
    ("completed_late", "completed after the due date"),
    ("open_not_due", "open, not yet due"),
    ("open_overdue", "open and overdue"),
    ("ended_at_exit", "closed or carried on at the case's exit"),
    ("overdue", "overdue (completed late or open past due)"),
)


def action_status(a: CaseAction, as_at: datetime) -> str:
    if a.completed_at is not None:
        return "completed_on_time" if a.completed_at <= a.due_at else "completed_late"
    if a.disposition is not None:
        return "ended_at_exit"
    return "open_overdue" if a.due_at < as_at else "open_not_due"


def actions_tables(
    cases: Sequence[CaseFacts],
    since: datetime,
    until: datetime,
    as_at: datetime,
    agency_names: dict[uuid.UUID, str],
) -> list[Table]:
    actions = [a for c in cases for a in c.actions if since <= a.created_at < until]
    keys = [k for k, _ in ACTION_COLUMNS]

    def table(
        key: str, title: str, header: str, of: Callable[[CaseAction], str], order: Sequence[str]
    ) -> Table:
        rows: dict[str, Counter[str]] = defaultdict(Counter)
        for a in actions:
            status = action_status(a, as_at)
            row = rows[of(a)]
            row["actions"] += 1
            row[status] += 1
            if status in ("completed_late", "open_overdue"):
                row["overdue"] += 1
        labels = [*order, *sorted(set(rows) - set(order))]
        return Table(
            key=key,
            title=title,
            row_header=header,
            columns=[Column(key=k, label=lab) for k, lab in ACTION_COLUMNS],
            rows=[Row(label=lab, counts={k: rows[lab][k] for k in keys}) for lab in labels],
            total=Row(label="total", counts={k: sum(rows[lab][k] for lab in labels) for k in keys}),
            ratios=[
                Ratio(
                    key="on_time",
                    label="% completed by the due date",
                    numerator="completed_on_time",
                    denominator="actions",
                ),
                Ratio(key="overdue", label="% overdue", numerator="overdue", denominator="actions"),
            ],
            parts=[
                Part(
                    whole="actions",
                    parts=[
                        "completed_on_time",
                        "completed_late",
                        "open_not_due",
                        "open_overdue",
                        "ended_at_exit",
                    ],
                ),
                Part(whole="overdue", parts=["completed_late", "open_overdue"]),
            ],
            notes=[f"Actions agreed in the period; open or overdue as at {as_at.isoformat()}."],
        )

    def owner(a: CaseAction) -> str:
        return agency_names.get(a.owner_agency_id, NOT_RECORDED)

    return [
        table(
            "by_aim", "Actions by aim", "aim", lambda a: a.aim.value, [x.value for x in ActionAim]
        ),
        table(
            "by_target",
            "Actions by target",
            "target",
            lambda a: a.target.value,
            [x.value for x in ActionTarget],
        ),
        table("by_owner", "Actions by owning agency", "owning agency", owner, []),
    ]


# --- attendance (the meeting service's aggregates) -------------------------------------------


def attendance_tables(parts: Sequence[AttendanceAggregate]) -> list[Table]:
    meetings = sum(p.meetings for p in parts)
    by_agency: dict[str, Counter[str]] = defaultdict(Counter)
    for p in parts:
        for a in p.agencies:
            by_agency[a.agency_name]["attended"] += a.attended
            by_agency[a.agency_name]["sent_apologies"] += a.sent_apologies
    rows = []
    for name in sorted(by_agency):
        att, apol = by_agency[name]["attended"], by_agency[name]["sent_apologies"]
        rows.append(
            Row(
                label=name,
                counts={
                    "meetings": meetings,
                    "attended": att,
                    "sent_apologies": apol,
                    "absent": meetings - att - apol,
                },
            )
        )
    held = Table(
        key="meetings_held",
        title="Panel meetings held",
        row_header="local authority",
        columns=[Column(key="meetings", label="meetings held")],
        rows=[Row(label=p.local_authority, counts={"meetings": p.meetings}) for p in parts],
        total=Row(label="total", counts={"meetings": meetings}),
    )
    by = Table(
        key="by_agency",
        title="Agency attendance at panel meetings",
        row_header="agency",
        columns=[
            Column(key="meetings", label="meetings held"),
            Column(key="attended", label="attended"),
            Column(key="sent_apologies", label="sent apologies"),
            Column(key="absent", label="neither"),
        ],
        rows=rows,
        ratios=[
            Ratio(
                key="attendance",
                label="attendance rate",
                numerator="attended",
                denominator="meetings",
            )
        ],
        parts=[Part(whole="meetings", parts=["attended", "sent_apologies", "absent"])],
        notes=["Each agency's row is of every meeting held: the rows are not added up."],
    )
    return [held, by]


# --- data quality ----------------------------------------------------------------------------


def data_quality_tables(
    referred: Sequence[CaseFacts],
    exited: Sequence[CaseFacts],
    episodes: Sequence[EpisodeFacts],
    since: datetime,
    until: datetime,
) -> list[Table]:
    tools = [c for c in referred if c.origin == "tool"]
    reported = [e for e in episodes if since <= e.reported_at < until]
    returned = [e for e in episodes if e.returned_at and since <= e.returned_at < until]
    left = [c for c in exited if c.exit and since <= c.exit.exited_at < until]
    checks: list[tuple[str, int, int]] = [
        ("referrals: ethnicity not recorded", len(tools), sum(not c.ethnicity for c in tools)),
        (
            "referrals: gender not known",
            len(tools),
            sum(c.gender in (None, Gender.not_known.value) for c in tools),
        ),
        (
            "referrals: opened from missing episodes (no tool: no profile)",
            len(referred),
            len(referred) - len(tools),
        ),
        (
            "referrals: no suggested level recorded",
            len(referred),
            sum(c.suggested_level is None for c in referred),
        ),
        (
            "referrals: case not yet recorded by its workflow",
            len(referred),
            sum(not c.recorded for c in referred),
        ),
        (
            "referrals: Pre-MSET decision not yet made",
            len(referred),
            sum(
                c.pre_mset is None or c.pre_mset.outcome is PreMsetOutcome.more_information
                for c in referred
            ),
        ),
        (
            "exits: reason 'other' (the detail is free text)",
            len(left),
            sum(c.exit is not None and c.exit.reason is ExitReason.other for c in left),
        ),
        (
            "missing episodes: return not recorded",
            len(reported),
            sum(e.returned_at is None for e in reported),
        ),
        (
            "returns: interview outcome not recorded",
            len(returned),
            sum(e.rhi_outcome is None for e in returned),
        ),
        (
            "returns: interview not offered (why: free text only)",
            len(returned),
            sum(e.rhi_outcome == RhiOutcome.not_offered.value for e in returned),
        ),
    ]
    return [
        Table(
            key="missing_or_unknown",
            title="What is missing or unknown in the period's records",
            row_header="field",
            columns=[
                Column(key="records", label="records"),
                Column(key="missing", label="missing or unknown"),
            ],
            rows=[Row(label=lab, counts={"records": n, "missing": m}) for lab, n, m in checks],
            ratios=[
                Ratio(key="missing", label="% missing", numerator="missing", denominator="records")
            ],
            bounds=[Bound(lesser="missing", greater="records")],
            notes=["Each row is its own count: the rows are not added up."],
        )
    ]
