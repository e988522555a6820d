"""What the portal decides by itself: which sections each role is shown, the words a person
reads for the services' codes, where a refusal belongs on a form, and the Return Home
Interview clock. Plain logic: no web, HTTP or service code.

The services enforce every access rule (docs/access.md); the table below only decides what
the portal *offers*: a section a role can never use is left out of its navigation, and its
pages answer with the 403 page without asking a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from mset_contract.vocab import PreMsetOutcome, RhiOutcome, RiskLevel, Role


class Section(StrEnum):
    home = "home"
    inbox = "inbox"
    cases = "cases"
    decide = "decide"
    meetings = "meetings"
    awaiting = "awaiting"
    returned = "returned"
    ops = "ops"
    reports = "reports"


# Who may use each section, as the services' access table allows them the records behind it.
SECTION_ROLES: dict[Section, frozenset[Role]] = {
    Section.home: frozenset(Role),
    # GET /v1/inbox: every role an escalation can be routed to.
    Section.inbox: frozenset(
        {Role.coordinator, Role.chair, Role.panel_member, Role.manager, Role.provider}
    ),
    # GET /v1/referrals/{id}: staff who serve the case's authority (and a provider's own).
    Section.cases: frozenset(
        {Role.coordinator, Role.chair, Role.panel_member, Role.manager, Role.provider}
    ),
    # POST /v1/referrals/{id}/pre-mset-decision and /mset-review, and a meeting item's
    # POST /v1/meetings/{id}/items/{item_id}/decision: the chair.
    Section.decide: frozenset({Role.chair}),
    # GET /v1/meetings: the panel roles.
    Section.meetings: frozenset({Role.coordinator, Role.chair, Role.panel_member}),
    # GET /v1/referrals?stage=awaiting_pre_mset: the coordinator and chairs (authorities served).
    Section.awaiting: frozenset({Role.coordinator, Role.chair}),
    # GET /v1/missing-episodes?status=returned and POST .../{id}/rhi: the RHI provider (its
    # commissioning authorities) and the coordinator (the authorities served).
    Section.returned: frozenset({Role.provider, Role.coordinator}),
    # GET :8000/v1/aggregates/cases and :8003/v1/aggregates/operations: ops.
    Section.ops: frozenset({Role.ops}),
    # GET :8000/v1/reports/{name} and /v1/reports/board-pack.pdf.
    Section.reports: frozenset({Role.analyst, Role.manager, Role.dpo, Role.coordinator}),
}


def may_use(role: Role | None, section: Section) -> bool:
    return role is not None and role in SECTION_ROLES[section]


@dataclass(frozen=True)
class NavItem:
    section: Section
    text: str
    href: str


NAVIGATION = (
    NavItem(Section.home, "My work", "/"),
    NavItem(Section.inbox, "Inbox", "/inbox"),
    NavItem(Section.meetings, "Meetings", "/meetings"),
    NavItem(Section.awaiting, "Awaiting Pre-MSET", "/awaiting"),
    NavItem(Section.returned, "Returned children", "/returned"),
    NavItem(Section.ops, "Operations", "/ops"),
    NavItem(Section.reports, "Reports", "/reports"),
)


def navigation(role: Role | None) -> list[NavItem]:
    """The service navigation a role is shown: only the sections it can use."""
    return [item for item in NAVIGATION if may_use(role, item.section)]


ROLE_NAMES = {
    Role.coordinator: "MSET coordinator",
    Role.chair: "Chair",
    Role.panel_member: "Panel member",
    Role.manager: "Manager",
    Role.provider: "Return Home Interview provider",
    Role.analyst: "Analyst",
    Role.admin: "Administrator",
    Role.dpo: "Data Protection Officer",
    Role.ops: "Operations",
}

OUTCOME_NAMES = {
    PreMsetOutcome.meets_criteria: "Meets the MSET criteria",
    PreMsetOutcome.not_met: "Does not meet the criteria (advice to the case holder)",
    PreMsetOutcome.more_information: "More information needed from the referrer",
}

RHI_OUTCOME_NAMES = {
    RhiOutcome.completed: "Interview completed",
    RhiOutcome.refused_by_young_person: "Refused by the young person",
    RhiOutcome.refused_by_parent_carer: "Refused by the parent or carer",
    RhiOutcome.not_offered: "Not offered",
}

MEETING_KINDS = {"pre_mset": "Pre-MSET", "mset": "MSET", "lmaps": "LMAPS"}

STAGE_NAMES = {
    "submitted": "Submitted",
    "triaged": "Triaged",
    "awaiting_pre_mset": "Awaiting Pre-MSET",
    "more_information_requested": "More information requested",
    "closed_advice_given": "Closed, advice given",
    "awaiting_mset": "Awaiting MSET",
    "active_plan": "Active plan",
    "exited": "Exited MSET",
}

LEVEL_NAMES = {RiskLevel.low: "Low", RiskLevel.medium: "Medium", RiskLevel.high: "High"}

# GOV.UK tag colours by level and urgency (the tag component's modifier classes).
LEVEL_TAGS = {RiskLevel.low: "govuk-tag--green", RiskLevel.medium: "govuk-tag--yellow",
              RiskLevel.high: "govuk-tag--red"}  # fmt: skip
URGENCY_TAGS = {"immediate": "govuk-tag--red", "same_day": "govuk-tag--orange",
                "routine": "govuk-tag--grey"}  # fmt: skip


def words(code: str) -> str:
    """A code as words: ``high_risk`` → "High risk"."""
    text = code.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


# Where the case's reason for refusing a Pre-MSET decision belongs on the form. The case
# answers in words (mset_platform/cases_http.py: the field is "body"); these are the
# validator's reasons (workflows/referral.py, ``_check_pre_mset``), matched by what each
# names, so the message stands next to the field a chair must change.
_REFUSAL_FIELDS = (
    ("rationale", "rationale"),
    ("medium and high risk", "level"),
    ("higher level", "level"),
    ("level", "level"),
)


def refusal_field(reason: str, fields: tuple[str, ...], default: str) -> str:
    """The form field a refusal's ``reason`` is about (one of ``fields``), else ``default``."""
    lowered = reason.lower()
    for phrase, name in _REFUSAL_FIELDS:
        if phrase in lowered and name in fields:
            return name
    return default


# --- the Return Home Interview clock ---------------------------------------------------------

# Hours left below which an interview still to be done is shown as urgent.
RHI_URGENT_HOURS = 24


@dataclass(frozen=True)
class RhiClock:
    """How long is left before a returned child's interview is due, in words and a tag."""

    text: str
    tag: str
    overdue: bool


def _span(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''} {minutes} min"
    return f"{minutes} min"


def rhi_clock(due: datetime, now: datetime) -> RhiClock:
    """The clock a provider sees: time left (red under a day, yellow under two), or how long
    the interview is overdue (red)."""
    left = (due - now).total_seconds()
    if left <= 0:
        return RhiClock(f"Overdue by {_span(-left)}", "govuk-tag--red", True)
    tag = (
        "govuk-tag--red"
        if left < RHI_URGENT_HOURS * 3600
        else ("govuk-tag--yellow" if left < 2 * RHI_URGENT_HOURS * 3600 else "govuk-tag--green")
    )
    return RhiClock(f"{_span(left)} left", tag, False)


_RHI_REFUSAL_FIELDS = (
    ("reason_not_offered", "reason_not_offered"),
    ("not offered", "reason_not_offered"),
    ("offered_at", "offered_at"),
)


def rhi_refusal_field(reason: str) -> str:
    """The interview form's field an episode's refusal is about (else the outcome)."""
    lowered = reason.lower()
    for phrase, name in _RHI_REFUSAL_FIELDS:
        if phrase in lowered:
            return name
    return "outcome"


LONDON = ZoneInfo("Europe/London")


class BadDate(ValueError):
    """A date and time typed into a form that is not one: the words say what to fix."""


def local_datetime(day: str, month: str, year: str, time: str) -> datetime:
    """A date (GOV.UK's three boxes) and a 24-hour time typed in UK time, as an instant."""
    parts = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    missing = [name for name, v in parts.items() if not v]
    if len(missing) == 3 and not time.strip():
        raise BadDate("Enter the date and time the interview was offered")
    if missing:
        raise BadDate(f"The date the interview was offered must include a {missing[0]}")
    try:
        d, m, y = (int(parts[k]) for k in ("day", "month", "year"))
        hour, minute = (int(x) for x in time.strip().split(":")) if time.strip() else (-1, 0)
    except ValueError as exc:
        raise BadDate("Enter the date in numbers, and the time like 14:30") from exc
    if hour < 0:
        raise BadDate("Enter the time the interview was offered, like 14:30")
    try:
        return datetime(y, m, d, hour, minute, tzinfo=LONDON)
    except ValueError as exc:
        raise BadDate("The date and time the interview was offered must be a real date") from exc
