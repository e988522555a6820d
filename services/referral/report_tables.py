"""The report tables, made from counts: plain logic, no database or web code.

Each report's counts (``ReferralCounts``, ``PreMsetCounts``...) are what the referral
service's tables answer to a ``GROUP BY`` (``report_store``); the same counts are made here
from records (``CaseFacts``, ``EpisodeFacts``: ``count_referrals`` and the like) for a caller
that has records rather than a database, so one set of rules decides what counts where, and
one builder makes each table from its counts. Every table is a
``mset_contract.reports.Table``, whose validator refuses one that does not reconcile; each
record is counted once, in one row ("not recorded" is a row), so what these build always does.

Periods are half-open, [since, until). Months are calendar months in England. Where a record
has moved on since the period ended (a decision made after it), the report counts it as it is
recorded now: the report is of the records, as at ``generated_at``.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
from services.referral.report_facts import (
    AGE_GROUPS,
    DECISION_BANDS,
    TIME_IN_MSET_BANDS,
    CaseFacts,
    EpisodeFacts,
)
from services.referral.report_facts import band as _band

NOT_RECORDED = "not recorded"
NONE_RECORDED = "none recorded"
AWAITING = "awaiting decision"
LEVELS = [lv.value for lv in RiskLevel]
RHI_WITHIN = timedelta(hours=72)
REPEAT_WINDOW = timedelta(days=90)

# How many records have each value (None: not recorded).
Tally = Counter[str | None]


def counted_from(
    key: str,
    title: str,
    row_header: str,
    columns: Sequence[tuple[str, str, Tally]],
    order: Sequence[str],
    *,
    unknown: str = NOT_RECORDED,
    notes: Sequence[str] = (),
) -> Table:
    """A breakdown: each column's tally of its records by the row each falls in (None: the
    ``unknown`` row), every row of ``order`` shown, others found after them; each column's
    total is its number of records, and each row's share of it is a percentage."""
    counts: dict[str, Counter[str]] = {}
    for c, _, tally in columns:
        cnt: Counter[str] = Counter()
        for v, n in tally.items():
            if n:
                cnt[unknown if v is None else v] += n
        counts[c] = cnt
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
        total=Row(label="total", counts={c: sum(counts[c].values()) for c, _, _ in columns}),
        ratios=[Ratio(key=f"{c}_share", label=f"% of {lab}", numerator=c) for c, lab, _ in columns],
        notes=list(notes),
    )


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
    """``counted_from`` of each column's values, one a record."""
    return counted_from(
        key,
        title,
        row_header,
        [(c, lab, Counter(vals)) for c, lab, vals in columns],
        order,
        unknown=unknown,
        notes=notes,
    )


def counted_many_from(
    key: str,
    title: str,
    row_header: str,
    columns: Sequence[tuple[str, str, Counter[str], int]],
    order: Sequence[str],
    *,
    none: str = NONE_RECORDED,
) -> Table:
    """A breakdown where a record may be in several rows (not additive): each row counts the
    records that have it (``none``: those with none); the total is the number of records."""
    found = sorted({v for _, _, cnt, _ in columns for v, n in cnt.items() if n} - {*order, none})
    labels = [*order, *found, none]
    return Table(
        key=key,
        title=title,
        row_header=row_header,
        columns=[Column(key=c, label=lab) for c, lab, _, _ in columns],
        rows=[Row(label=lab, counts={c: cnt[lab] for c, _, cnt, _ in columns}) for lab in labels],
        total=Row(label="total", counts={c: n for c, _, _, n in columns}),
        additive=False,
        ratios=[
            Ratio(key=f"{c}_share", label=f"% of {lab}", numerator=c) for c, lab, _, _ in columns
        ],
        notes=["A record may have several: the rows add up to more than the total."],
    )


def _many(values: Iterable[Iterable[str]], none: str = NONE_RECORDED) -> tuple[Counter[str], int]:
    cnt: Counter[str] = Counter()
    n = 0
    for v in values:
        n += 1
        cnt.update(set(v) or {none})
    return cnt, n


# --- referrals -------------------------------------------------------------------------------


@dataclass
class ReferralCounts:
    agency_type: Tally = field(default_factory=Counter)
    suggested: Tally = field(default_factory=Counter)
    referrer: Tally = field(default_factory=Counter)


def count_referrals(cases: Sequence[CaseFacts]) -> ReferralCounts:
    return ReferralCounts(
        agency_type=Counter(c.agency_type for c in cases),
        suggested=Counter(c.suggested_level for c in cases),
        referrer=Counter(c.referrer_level for c in cases),
    )


def referrals_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    return referrals_tables_from(count_referrals(cases))


def referrals_tables_from(n: ReferralCounts) -> list[Table]:
    return [
        counted_from(
            "by_agency_type",
            "Referrals by referring agency type",
            "referring agency type",
            [("referrals", "referrals", n.agency_type)],
            [t.value for t in AgencyType],
        ),
        counted_from(
            "risk_at_referral",
            "Risk level at referral: the rules' suggestion and the referrer's own",
            "risk level",
            [
                ("suggested", "suggested by the rules", n.suggested),
                ("referrer", "the referrer's own", n.referrer),
            ],
            LEVELS,
            notes=[
                "The rules' suggestion is the latest the case recorded: at referral, unless "
                "a new tool or a missing episode re-triaged the case since."
            ],
        ),
    ]


# --- Pre-MSET --------------------------------------------------------------------------------


@dataclass
class PreMsetCounts:
    # By the latest decision's outcome (AWAITING: none yet).
    outcome: Tally = field(default_factory=Counter)
    # By the referrer's level (NOT_RECORDED when not a level): referrals, decided, met_criteria.
    by_level: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # Those that met the criteria, by the level the panel agreed.
    met_by_level: Tally = field(default_factory=Counter)
    # By band of days from referral to a decision met or not met (None: awaiting).
    time_to_decision: Tally = field(default_factory=Counter)


def add_pre_mset(
    n: PreMsetCounts,
    referrer_level: str,
    outcome: str | None,
    agreed_level: str | None,
    decision_band: str | None,
    count: int = 1,
) -> None:
    """Count ``count`` referrals of the referrer's level whose latest decision (if any) had
    ``outcome`` at ``agreed_level``, its days from the referral in ``decision_band``."""
    n.outcome[outcome if outcome is not None else AWAITING] += count
    row = n.by_level[referrer_level if referrer_level in LEVELS else NOT_RECORDED]
    row["referrals"] += count
    decided = outcome is not None and outcome != PreMsetOutcome.more_information.value
    if decided:
        row["decided"] += count
    if outcome == PreMsetOutcome.meets_criteria.value:
        row["met_criteria"] += count
        n.met_by_level[agreed_level] += count
    n.time_to_decision[decision_band if decided else None] += count


def count_pre_mset(cases: Sequence[CaseFacts]) -> PreMsetCounts:
    n = PreMsetCounts()
    for c in cases:
        p = c.pre_mset
        add_pre_mset(
            n,
            c.referrer_level,
            p.outcome.value if p else None,
            p.level.value if p else None,
            _band((today_uk(p.decided_at) - today_uk(c.submitted_at)).days, DECISION_BANDS)
            if p
            else None,
        )
    return n


def pre_mset_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    return pre_mset_tables_from(count_pre_mset(cases))


def pre_mset_tables_from(n: PreMsetCounts) -> list[Table]:
    by_level = n.by_level
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
        rows=[
            Row(label=lab, counts={k: by_level.get(lab, Counter())[k] for k in cols})
            for lab in labels
        ],
        total=Row(
            label="total",
            counts={k: sum(by_level.get(lab, Counter())[k] for lab in labels) for k in cols},
        ),
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
    return [
        counted_from(
            "outcomes",
            "Pre-MSET outcomes of the period's referrals",
            "outcome",
            [("referrals", "referrals", n.outcome)],
            [o.value for o in PreMsetOutcome],
        ),
        conversion,
        counted_from(
            "met_by_level",
            "Met the criteria for MSET, by the level the Pre-MSET panel agreed",
            "level agreed at Pre-MSET",
            [("met_criteria", "met the criteria", n.met_by_level)],
            LEVELS,
        ),
        counted_from(
            "time_to_decision",
            "Time from referral to the Pre-MSET decision (met or not met)",
            "days from referral",
            [("referrals", "referrals", n.time_to_decision)],
            [b[0] for b in DECISION_BANDS],
            unknown=AWAITING,
            notes=["A case waiting for more information is counted as awaiting decision."],
        ),
    ]


# --- the profile: the Pre-MSET cohort beside the MSET cohort --------------------------------

# The profile's breakdowns: (key, title, row header, rows always shown).
PROFILE: tuple[tuple[str, str, str, list[str]], ...] = (
    ("gender", "Gender", "gender", [g.value for g in Gender]),
    ("age_group", "Age at referral", "age group", [a[0] for a in AGE_GROUPS]),
    ("legal_status", "Legal status", "legal status", [s.value for s in LegalStatus]),
    ("area_of_residence", "Area of residence", "area", []),
    ("ethnicity", "Ethnicity", "ethnicity", []),
)
COHORTS = (("pre_mset", "Pre-MSET cohort"), ("mset", "MSET cohort"))


@dataclass
class ProfileCounts:
    # cohort ("pre_mset": the period's referrals; "mset": those that met the criteria) →
    # breakdown (PROFILE's keys) → value → referrals.
    cohorts: dict[str, dict[str, Tally]] = field(
        default_factory=lambda: {c: defaultdict(Counter) for c, _ in COHORTS}
    )
    # cohort → exploitation type (NONE_RECORDED: none) → referrals that have it.
    exploitation: dict[str, Counter[str]] = field(
        default_factory=lambda: {c: Counter() for c, _ in COHORTS}
    )
    size: Counter[str] = field(default_factory=Counter)


def _profile_values(c: CaseFacts) -> dict[str, str | None]:
    return {
        "gender": c.gender,
        "age_group": _band(c.age_at_referral, AGE_GROUPS),
        "legal_status": c.legal_status,
        "area_of_residence": c.area_of_residence.strip() if c.area_of_residence else None,
        "ethnicity": c.ethnicity.strip() if c.ethnicity else None,
    }


def count_profile(cases: Sequence[CaseFacts]) -> ProfileCounts:
    n = ProfileCounts()
    for c in cases:
        met = c.pre_mset is not None and c.pre_mset.outcome is PreMsetOutcome.meets_criteria
        values = _profile_values(c)
        for cohort in ("pre_mset", "mset") if met else ("pre_mset",):
            for k, v in values.items():
                n.cohorts[cohort][k][v] += 1
            n.exploitation[cohort].update(set(c.exploitation_types) or {NONE_RECORDED})
            n.size[cohort] += 1
    return n


def profile_tables(cases: Sequence[CaseFacts]) -> list[Table]:
    return profile_tables_from(count_profile(cases))


def profile_tables_from(n: ProfileCounts) -> list[Table]:
    return [
        *(
            counted_from(
                key,
                title,
                header,
                [(c, lab, n.cohorts[c].get(key, Counter())) for c, lab in COHORTS],
                order,
            )
            for key, title, header, order in PROFILE
        ),
        counted_many_from(
            "exploitation_types",
            "Exploitation types",
            "exploitation type",
            [(c, lab, n.exploitation[c], n.size[c]) for c, lab in COHORTS],
            [t.value for t in ExploitationType],
        ),
    ]


# --- exits -----------------------------------------------------------------------------------


@dataclass
class ExitCounts:
    reason: Tally = field(default_factory=Counter)
    time_in_mset: Tally = field(default_factory=Counter)


def count_exits(cases: Sequence[CaseFacts], since: datetime, until: datetime) -> ExitCounts:
    n = ExitCounts()
    for c in cases:
        if c.exit is None or not since <= c.exit.exited_at < until:
            continue
        p = c.pre_mset
        start = p.decided_at if p and p.outcome is PreMsetOutcome.meets_criteria else None
        days = (today_uk(c.exit.exited_at) - today_uk(start or c.submitted_at)).days
        n.reason[c.exit.reason.value] += 1
        n.time_in_mset[_band(days, TIME_IN_MSET_BANDS)] += 1
    return n


def exits_tables(cases: Sequence[CaseFacts], since: datetime, until: datetime) -> list[Table]:
    return exits_tables_from(count_exits(cases, since, until))


def exits_tables_from(n: ExitCounts) -> list[Table]:
    return [
        counted_from(
            "by_reason",
            "Exits from MSET by reason",
            "exit reason",
            [("exits", "exits", n.reason)],
            [r.value for r in ExitReason],
        ),
        counted_from(
            "time_in_mset",
            "Time in MSET at exit",
            "time in MSET",
            [("exits", "exits", n.time_in_mset)],
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


@dataclass
class MissingCounts:
    # Month reported ("YYYY-MM") → episodes, returned, repeat.
    episodes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # Month of return → RHI_COLUMNS.
    rhi: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def add_return(
    n: MissingCounts, month: str, outcome: str | None, offered_72h: bool, count: int = 1
) -> None:
    """Count ``count`` returns in ``month`` whose interview had ``outcome``."""
    row = n.rhi[month]
    row["referred"] += count
    if outcome is None:
        row["awaiting_outcome"] += count
    elif outcome == RhiOutcome.not_offered.value:
        row["not_offered"] += count
    else:
        row[RHI_OUTCOME_COLUMN[outcome]] += count
        row["offered"] += count
        if offered_72h:
            row["offered_72h"] += count


def count_missing(
    episodes: Sequence[EpisodeFacts],
    before: Sequence[tuple[tuple[uuid.UUID, str], datetime]],
    since: datetime,
    until: datetime,
) -> MissingCounts:
    n = MissingCounts()
    # Repeat missing: an episode of a child with another episode in the 90 days before it.
    history: dict[tuple[uuid.UUID, str], list[datetime]] = defaultdict(list)
    for child, at in before:
        history[child].append(at)
    reported = [e for e in episodes if since <= e.reported_at < until]
    for e in reported:
        history[e.child].append(e.reported_at)
    for e in reported:
        row = n.episodes[_month(e.reported_at)]
        row["episodes"] += 1
        if any(e.reported_at - REPEAT_WINDOW <= t < e.reported_at for t in history[e.child]):
            row["repeat"] += 1
        if e.returned_at is not None:
            row["returned"] += 1
    for e in episodes:
        if e.returned_at is None or not since <= e.returned_at < until:
            continue
        add_return(
            n,
            _month(e.returned_at),
            e.rhi_outcome,
            e.rhi_offered_at is not None and e.rhi_offered_at - e.returned_at <= RHI_WITHIN,
        )
    return n


def missing_tables(
    episodes: Sequence[EpisodeFacts],
    before: Sequence[tuple[tuple[uuid.UUID, str], datetime]],
    since: datetime,
    until: datetime,
    rhi_target_percent: float,
) -> list[Table]:
    return missing_tables_from(
        count_missing(episodes, before, since, until), since, until, rhi_target_percent
    )


def missing_tables_from(
    n: MissingCounts, since: datetime, until: datetime, rhi_target_percent: float
) -> list[Table]:
    labels = [m.strftime("%Y-%m") for m in months(since, until)]
    ep = {m: n.episodes.get(m, Counter()) for m in labels}
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
    rhi = {m: n.rhi.get(m, Counter()) for m in labels}
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
ACTION_BREAKDOWNS = ("aim", "target", "owner")


def action_status(a: CaseAction, as_at: datetime) -> str:
    if a.completed_at is not None:
        return "completed_on_time" if a.completed_at <= a.due_at else "completed_late"
    if a.disposition is not None:
        return "ended_at_exit"
    return "open_overdue" if a.due_at < as_at else "open_not_due"


@dataclass
class ActionCounts:
    # Breakdown (ACTION_BREAKDOWNS) → row (an aim, a target, an owning agency's name) →
    # ACTION_COLUMNS.
    by: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: {b: defaultdict(Counter) for b in ACTION_BREAKDOWNS}
    )


def add_actions(
    n: ActionCounts, aim: str, target: str, owner: str, status: str, count: int = 1
) -> None:
    """Count ``count`` actions of ``aim``, ``target`` and ``owner`` whose status is
    ``status`` (one of ACTION_COLUMNS' parts of "actions")."""
    for b, label in (("aim", aim), ("target", target), ("owner", owner)):
        row = n.by[b][label]
        row["actions"] += count
        row[status] += count
        if status in ("completed_late", "open_overdue"):
            row["overdue"] += count


def count_actions(
    cases: Sequence[CaseFacts],
    since: datetime,
    until: datetime,
    as_at: datetime,
    agency_names: dict[uuid.UUID, str],
) -> ActionCounts:
    n = ActionCounts()
    for c in cases:
        for a in c.actions:
            if since <= a.created_at < until:
                add_actions(
                    n,
                    a.aim.value,
                    a.target.value,
                    agency_names.get(a.owner_agency_id, NOT_RECORDED),
                    action_status(a, as_at),
                )
    return n


def actions_tables(
    cases: Sequence[CaseFacts],
    since: datetime,
    until: datetime,
    as_at: datetime,
    agency_names: dict[uuid.UUID, str],
) -> list[Table]:
    return actions_tables_from(count_actions(cases, since, until, as_at, agency_names), as_at)


def actions_tables_from(n: ActionCounts, as_at: datetime) -> list[Table]:
    keys = [k for k, _ in ACTION_COLUMNS]

    def table(key: str, title: str, header: str, by: str, order: Sequence[str]) -> Table:
        rows = n.by[by]
        labels = [*order, *sorted(set(rows) - set(order))]
        got = {lab: rows.get(lab, Counter()) for lab in labels}
        return Table(
            key=key,
            title=title,
            row_header=header,
            columns=[Column(key=k, label=lab) for k, lab in ACTION_COLUMNS],
            rows=[Row(label=lab, counts={k: got[lab][k] for k in keys}) for lab in labels],
            total=Row(label="total", counts={k: sum(got[lab][k] for lab in labels) for k in keys}),
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

    return [
        table("by_aim", "Actions by aim", "aim", "aim", [x.value for x in ActionAim]),
        table(
            "by_target", "Actions by target", "target", "target", [x.value for x in ActionTarget]
        ),
        table("by_owner", "Actions by owning agency", "owning agency", "owner", []),
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


@dataclass
class DataQualityCounts:
    referred: int = 0  # the period's referrals
    from_episodes: int = 0  # of which opened from missing episodes (no tool)
    no_suggested_level: int = 0
    not_recorded: int = 0  # the case's workflow has not recorded it yet
    undecided: int = 0  # no Pre-MSET decision, or more information asked for
    tools: int = 0  # the period's referrals with a tool
    no_ethnicity: int = 0
    gender_not_known: int = 0
    exits: int = 0  # exits in the period
    exits_other: int = 0
    reported: int = 0  # episodes reported in the period
    not_returned: int = 0
    returned: int = 0  # returns in the period
    no_rhi_outcome: int = 0
    rhi_not_offered: int = 0


def count_data_quality(
    referred: Sequence[CaseFacts],
    exited: Sequence[CaseFacts],
    episodes: Sequence[EpisodeFacts],
    since: datetime,
    until: datetime,
) -> DataQualityCounts:
    tools = [c for c in referred if c.origin == "tool"]
    reported = [e for e in episodes if since <= e.reported_at < until]
    returned = [e for e in episodes if e.returned_at and since <= e.returned_at < until]
    left = [c for c in exited if c.exit and since <= c.exit.exited_at < until]
    return DataQualityCounts(
        referred=len(referred),
        from_episodes=len(referred) - len(tools),
        no_suggested_level=sum(c.suggested_level is None for c in referred),
        not_recorded=sum(not c.recorded for c in referred),
        undecided=sum(
            c.pre_mset is None or c.pre_mset.outcome is PreMsetOutcome.more_information
            for c in referred
        ),
        tools=len(tools),
        no_ethnicity=sum(not c.ethnicity for c in tools),
        gender_not_known=sum(c.gender in (None, Gender.not_known.value) for c in tools),
        exits=len(left),
        exits_other=sum(c.exit is not None and c.exit.reason is ExitReason.other for c in left),
        reported=len(reported),
        not_returned=sum(e.returned_at is None for e in reported),
        returned=len(returned),
        no_rhi_outcome=sum(e.rhi_outcome is None for e in returned),
        rhi_not_offered=sum(e.rhi_outcome == RhiOutcome.not_offered.value for e in returned),
    )


def data_quality_tables(
    referred: Sequence[CaseFacts],
    exited: Sequence[CaseFacts],
    episodes: Sequence[EpisodeFacts],
    since: datetime,
    until: datetime,
) -> list[Table]:
    return data_quality_tables_from(count_data_quality(referred, exited, episodes, since, until))


def data_quality_tables_from(n: DataQualityCounts) -> list[Table]:
    checks: list[tuple[str, int, int]] = [
        ("referrals: ethnicity not recorded", n.tools, n.no_ethnicity),
        ("referrals: gender not known", n.tools, n.gender_not_known),
        (
            "referrals: opened from missing episodes (no tool: no profile)",
            n.referred,
            n.from_episodes,
        ),
        ("referrals: no suggested level recorded", n.referred, n.no_suggested_level),
        ("referrals: case not yet recorded by its workflow", n.referred, n.not_recorded),
        ("referrals: Pre-MSET decision not yet made", n.referred, n.undecided),
        ("exits: reason 'other' (the detail is free text)", n.exits, n.exits_other),
        ("missing episodes: return not recorded", n.reported, n.not_returned),
        ("returns: interview outcome not recorded", n.returned, n.no_rhi_outcome),
        ("returns: interview not offered (why: free text only)", n.returned, n.rhi_not_offered),
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
            rows=[
                Row(label=lab, counts={"records": of, "missing": missing})
                for lab, of, missing in checks
            ],
            ratios=[
                Ratio(key="missing", label="% missing", numerator="missing", denominator="records")
            ],
            bounds=[Bound(lesser="missing", greater="records")],
            notes=["Each row is its own count: the rows are not added up."],
        )
    ]
