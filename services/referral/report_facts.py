"""The facts a board report counts, and the report columns they are kept in.

A report counts codes, levels, dates and bands, never a child's name, date of birth or free
text. So that a report of a whole nation's year is a ``GROUP BY`` (docs/decisions/0025), the
facts are kept beside each record in columns when the record changes: the tool's (gender, age
band at referral, ethnicity, legal status, area, exploitation types) when a referral is
recorded, the case's (its Pre-MSET decision, its exit, its plan's actions) each time its
workflow records its state in the read model, and the historic import's likewise. This module
derives them; it imports no web, database or Temporal code, so the migration that fills the
columns for existing rows (0014) derives them the same way.

``CaseFacts`` and ``EpisodeFacts`` are the same facts, one record at a time: what the
reports' plain logic (``report_tables``) counts when it is given records rather than counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from mset_contract.referral_workflow import CaseAction, ExitRecord, PreMsetDecisionRecord
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import PreMsetOutcome

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

# The exploitation types of a referral kept in one column: each code between bars
# ("|gang|online|"), so a type is counted with LIKE '%|gang|%'; "" when it has none.
EXPLOITATION_SEPARATOR = "|"


def band(value: int | None, bands: Sequence[tuple[str, int, int]]) -> str | None:
    if value is None:
        return None
    return next((label for label, lo, hi in bands if lo <= value <= hi), None)


@dataclass(frozen=True)
class CaseFacts:
    case_id: uuid.UUID
    local_authority: str
    agency_type: str
    origin: str
    submitted_at: datetime
    referrer_level: str
    suggested_level: str | None
    gender: str | None
    age_at_referral: int | None
    ethnicity: str | None
    legal_status: str | None
    area_of_residence: str | None
    exploitation_types: tuple[str, ...]
    pre_mset: PreMsetDecisionRecord | None
    exit: ExitRecord | None
    actions: tuple[CaseAction, ...] = field(default=())
    recorded: bool = True  # the case's workflow has recorded its state (read model)


@dataclass(frozen=True)
class EpisodeFacts:
    episode_id: uuid.UUID
    local_authority: str
    child: tuple[uuid.UUID, str]  # (reporting agency, its child reference): one child
    reported_at: datetime
    returned_at: datetime | None
    rhi_offered_at: datetime | None
    rhi_outcome: str | None


def _child(tool: dict[str, Any]) -> dict[str, Any]:
    child = tool.get("child")
    return child if isinstance(child, dict) else {}


def age_at(child: dict[str, Any], at: datetime) -> int | None:
    try:
        dob = date.fromisoformat(str(child["date_of_birth"]))
    except (KeyError, ValueError):
        return None
    return age_on(dob, today_uk(at))


def _text(value: Any) -> str | None:
    """A free-standing label as the reports show it: trimmed; None when not given."""
    return str(value).strip() if value else None


def tool_columns(tool: dict[str, Any], origin: str, submitted_at: datetime) -> dict[str, Any]:
    """The report columns of a referral's tool (fixed when the referral is recorded): only
    the band of the child's age on the day of the referral, never the date of birth."""
    child = _child(tool)
    from_tool = origin == "tool"
    types = tool.get("exploitation_types") or ()
    return {
        "report_gender": child.get("gender") if from_tool else None,
        "report_age_band": band(age_at(child, submitted_at), AGE_GROUPS),
        "report_ethnicity": _text(child.get("ethnicity")) if from_tool else None,
        "report_legal_status": child.get("legal_status") if from_tool else None,
        "report_area": _text(child.get("area_of_residence")) if from_tool else None,
        "report_exploitation": "".join(f"|{t}" for t in sorted(set(types))) + "|" if types else "",
    }


def _days(later: datetime, earlier: datetime) -> int:
    """Whole days between the two instants' dates in England."""
    return (today_uk(later) - today_uk(earlier)).days


def state_columns(state: dict[str, Any] | None, submitted_at: datetime) -> dict[str, Any]:
    """The report columns of a case's recorded state (the read model): its latest Pre-MSET
    decision, its exit and the days each took."""
    pre_raw = (state or {}).get("pre_mset")
    exit_raw = (state or {}).get("exit")
    pre = PreMsetDecisionRecord.model_validate(pre_raw) if pre_raw else None
    exit_ = ExitRecord.model_validate(exit_raw) if exit_raw else None
    met = pre is not None and pre.outcome is PreMsetOutcome.meets_criteria
    return {
        "pre_mset_outcome": pre.outcome.value if pre else None,
        "pre_mset_level": pre.level.value if pre else None,
        "pre_mset_decided_at": pre.decided_at if pre else None,
        "pre_mset_days": _days(pre.decided_at, submitted_at) if pre else None,
        "exited_at": exit_.exited_at if exit_ else None,
        # From the decision that the case met the criteria (for a case with none, from the
        # referral) to the exit.
        "mset_days": _days(exit_.exited_at, pre.decided_at if met and pre else submitted_at)
        if exit_
        else None,
    }


def action_rows(case_id: uuid.UUID, state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per action of the case's plan as its read model holds it (dates and codes:
    never the description)."""
    out = []
    for seq, raw in enumerate((state or {}).get("actions") or ()):
        a = CaseAction.model_validate(raw)
        out.append(
            {
                "case_id": case_id,
                "seq": seq,
                "owner_agency_id": a.owner_agency_id,
                "aim": a.aim.value,
                "target": a.target.value,
                "created_at": a.created_at,
                "due_at": a.due_at,
                "completed_at": a.completed_at,
                "ended_at_exit": a.disposition is not None,
            }
        )
    return out
