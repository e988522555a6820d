"""Minutes of a meeting, from its attendance and decisions, as Markdown and as PDF.

Both formats come from one list of blocks, so they say the same thing. Minutes contain only
the meeting's own items, and are built from the agenda as the reader's role may see it. Each
case is named by who it is about, as the referral service (which holds the tool) says when the
minutes are made: the partner's child reference, age, gender, legal status, area and the
referring agency, then the referral id as a reference. Never a name, date of birth or address;
and nothing of it is stored with the meeting. Agencies are named as the referral service's
agency directory names them. Every decision taken in the meeting is listed, whichever API the
chair recorded it through (the referral API's decisions with a ``meeting_id`` reach the same
record: ``services/referral/meetings.py``).

The PDF carries the protective marking at the top and bottom of every page, page numbers,
a title block, and the decisions and agreed actions as tables.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from mset_contract.auth import Principal
from mset_contract.meeting import (
    AgendaItemPublic,
    AgendaPublic,
    Capacity,
    ItemDecisionPublic,
    MeetingPublic,
    MeetingStatus,
    RecordedVia,
)
from mset_contract.meeting import Attendee as AttendeeModel
from mset_contract.papers import PapersWho
from mset_contract.types import UK
from mset_contract.vocab import MeetingKind, Role
from mset_platform.pdf import PROTECTIVE_MARKING, MarkedPdf, latin1
from services.meeting.agencies import AgencyDirectory, agency_names
from services.meeting.domain import Permission, require

# The handling caveat beside the Government Security Classification marking.
MARKING = (
    f"{PROTECTIVE_MARKING}: multi-agency safeguarding. Do not forward outside the partnership."
)

KIND_TITLE = {
    MeetingKind.pre_mset: "Pre-MSET panel",
    MeetingKind.mset: "MSET operational group",
    MeetingKind.lmaps: "Extraordinary LMAPS meeting",
}


@dataclass(frozen=True)
class Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "li" | "table"
    text: str
    # A table's rows, the first being its headings.
    rows: tuple[tuple[str, ...], ...] = ()


def _when(dt: datetime) -> str:
    return dt.astimezone(UK).strftime("%d %B %Y, %H:%M %Z")


def _day(dt: datetime) -> str:
    return dt.astimezone(UK).strftime("%d %B %Y")


def _label(value: str) -> str:
    text = value.replace("_", " ").replace("pre mset", "Pre-MSET")
    return text.replace("mset", "MSET").replace("lmaps", "LMAPS")


_LEGAL_STATUS = {
    "none": "no legal order",
    "child_in_need_s17": "child in need (s17)",
    "child_protection_plan": "child protection plan",
    "looked_after_s20": "looked after (s20)",
    "looked_after_s31": "looked after (s31)",
    "looked_after_s38": "looked after (s38)",
    "care_leaver": "care leaver",
}


def who_line(who: PapersWho | None, referral_id: UUID) -> str:
    """A case as the panel knows it: the partner's child reference and the facts that tell
    the children apart, led by who, the referral id kept as the reference."""
    if who is None:
        return f"Referral {referral_id} (not held by the referral service)"
    facts = [f"age {who.age_years}"]
    if who.gender is not None:
        facts.append(_label(who.gender.value))
    if who.legal_status is not None:
        facts.append(_LEGAL_STATUS.get(who.legal_status.value, _label(who.legal_status.value)))
    facts.append(
        f"{who.area_of_residence}, {who.local_authority}"
        if who.area_of_residence
        else who.local_authority
    )
    return f"{who.agency_child_ref}: {', '.join(facts)}; referred by {who.referring_agency}"


def _short_who(who: PapersWho | None, referral_id: UUID) -> str:
    return who.agency_child_ref if who is not None else str(referral_id)


def _agency(agency_id: UUID, names: Mapping[UUID, str]) -> str:
    return names.get(agency_id, f"an agency not in the directory ({agency_id})")


def _decision_lines(
    d: ItemDecisionPublic, names: Mapping[UUID, str], withheld: set[str]
) -> list[str]:
    head = (
        f"Decision: {_label(d.outcome.value)}, level {d.level.value}"
        if d.outcome
        else (f"Decision: reviewed, level {d.level.value}")
    )
    lines = [f"{head}; the case is now {_label(d.stage_after.value)}."]
    if "decision.rationale" in withheld:
        lines.append("Rationale: withheld for your role.")
    elif d.rationale:
        lines.append(f"Rationale: {d.rationale}")
    for a in d.actions:
        text = (
            f"Action {a.action_id} ({a.aim.value} / {a.target.value}), owner "
            f"{_agency(a.owner_agency_id, names)}, due {_day(a.due_at)}"
        )
        lines.append(f"{text}: {a.description}" if a.description else text)
    if d.next_review_due:
        lines.append(f"Next review due {_day(d.next_review_due)}.")
    if d.lmaps_referral_id:
        reason = (
            "withheld for your role"
            if "decision.lmaps_reason" in withheld
            else d.lmaps_reason or "no reason recorded"
        )
        lines.append(f"Referred to an extraordinary LMAPS meeting: {reason}")
    by = d.decided_by_name or str(d.decided_by)
    lines.append(f"Recorded by {by} at {_when(d.decided_at)}{_VIA[d.recorded_via]}.")
    return lines


_VIA = {RecordedVia.meeting_api: "", RecordedVia.referral_api: " through the referral API"}
_VIA_SHORT = {RecordedVia.meeting_api: "meeting", RecordedVia.referral_api: "referral API"}


def minutes_blocks(
    meeting: MeetingPublic,
    items: Sequence[AgendaItemPublic],
    *,
    role: Role,
    generated_at: datetime,
    agencies: Mapping[UUID, str] | None = None,
) -> list[Block]:
    """``agencies``: the directory's names of the agencies concerned (they win over the
    names typed into the attendance)."""
    att = meeting.attendance
    names = {a.agency_id: a.agency_name for a in att.attendees if a.agency_id is not None}
    names.update(agencies or {})
    status = "final" if meeting.status is MeetingStatus.closed else "draft (meeting not closed)"
    blocks = [
        Block("p", MARKING),
        Block("h1", f"Minutes: {KIND_TITLE[meeting.kind]}, {meeting.local_authority}"),
        Block("p", f"Held {_when(meeting.held_at)}. Minutes {status}."),
        Block("p", f"Chair: {meeting.chair_name or 'not recorded'}."),
        Block("h2", "Attendance"),
    ]
    present = [a for a in att.attendees if a.present]
    apologies = [a for a in att.attendees if not a.present]
    if not present:
        blocks.append(Block("p", "No attendance recorded."))

    def agency_of(a: AttendeeModel) -> str:
        # The directory's name where the attendance says which agency, else as typed.
        return names.get(a.agency_id, a.agency_name) if a.agency_id else a.agency_name

    for a in present:
        cap = "" if a.capacity is Capacity.member else f" ({_label(a.capacity.value)})"
        blocks.append(Block("li", f"{agency_of(a)}: {a.person_name}{cap}"))
    if apologies:
        blocks.append(Block("h2", "Apologies"))
        blocks.extend(Block("li", f"{agency_of(a)}: {a.person_name}") for a in apologies)
    blocks.append(Block("h2", "Cases considered"))
    if not items:
        blocks.append(Block("p", "The agenda had no cases."))
    for item in items:
        reasons = ", ".join(_label(r.value) for r in item.reasons)
        blocks.append(Block("h3", f"{item.position}. {who_line(item.who, item.referral_id)}"))
        blocks.append(
            Block(
                "p",
                f"Referral {item.referral_id}. On the agenda for: {reasons}. "
                f"Level: {item.risk_level.value}.",
            )
        )
        if item.decision is None:
            if item.carried_over_at is not None:
                blocks.append(
                    Block(
                        "li",
                        "Not decided: carried over to the next "
                        f"{KIND_TITLE[meeting.kind]} of {meeting.local_authority}.",
                    )
                )
            else:
                blocks.append(Block("li", "No decision recorded at this meeting."))
            continue
        withheld = set(item.withheld)
        blocks.extend(Block("li", line) for line in _decision_lines(item.decision, names, withheld))
    blocks.extend(_tables(items, names))
    blocks.append(
        Block(
            "p",
            f"Generated {_when(generated_at)} for the {_label(role.value)} role. Contains this "
            "meeting's cases only, named by the partner's child reference as the referral "
            "service holds the case now, and by referral id.",
        )
    )
    return blocks


def _tables(items: Sequence[AgendaItemPublic], names: Mapping[UUID, str]) -> list[Block]:
    decided = [(i, i.decision) for i in items if i.decision is not None]
    if not decided:
        return []
    decisions = [("Item", "Child", "Decision", "Level", "Case now", "Recorded via")]
    actions = [("Action", "Item", "Owner", "Aim / target", "Due", "What")]
    for item, d in decided:
        outcome = _label(d.outcome.value) if d.outcome else "reviewed"
        decisions.append(
            (
                str(item.position),
                _short_who(item.who, item.referral_id),
                outcome,
                d.level.value,
                _label(d.stage_after.value),
                _VIA_SHORT[d.recorded_via],
            )
        )
        for a in d.actions:
            actions.append(
                (
                    a.action_id,
                    str(item.position),
                    _agency(a.owner_agency_id, names),
                    f"{a.aim.value} / {a.target.value}",
                    _day(a.due_at),
                    a.description or "",
                )
            )
    out = [Block("h2", "Decisions"), Block("table", DECISIONS_TABLE, tuple(decisions))]
    if len(actions) > 1:
        out += [Block("h2", "Actions agreed"), Block("table", ACTIONS_TABLE, tuple(actions))]
    return out


DECISIONS_TABLE = "Decisions"
ACTIONS_TABLE = "Actions agreed"


class MinutesSource(Protocol):
    """What the minutes are made from (the meetings' own records)."""

    def get(self, principal: Principal, meeting_id: UUID, /) -> MeetingPublic: ...

    async def agenda(
        self, principal: Principal, meeting_id: UUID, purpose: str = ..., /
    ) -> AgendaPublic:
        """The agenda as the caller's role may see it, with who each case is about;
        records the disclosure."""


async def compose(
    source: MinutesSource,
    directory: AgencyDirectory,
    principal: Principal,
    meeting_id: UUID,
    now: datetime | None = None,
) -> list[Block]:
    """A meeting's minutes, as ``principal`` may read them, agencies named by the directory."""
    role = require(principal, Permission.read)
    meeting = await asyncio.to_thread(source.get, principal, meeting_id)
    agenda = await source.agenda(principal, meeting_id, "minutes")
    ids = {a.agency_id for a in meeting.attendance.attendees if a.agency_id is not None}
    ids |= {a.owner_agency_id for i in agenda.items if i.decision for a in i.decision.actions}
    names = await agency_names(directory, ids)
    return minutes_blocks(
        meeting,
        agenda.items,
        role=role,
        generated_at=now or datetime.now(UTC),
        agencies=names,
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def _md(text: str) -> str:
    # Professionals' free text is quoted, never interpreted: no headings, links or HTML.
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def to_markdown(blocks: Sequence[Block]) -> str:
    prefix = {"h1": "# ", "h2": "## ", "h3": "### ", "li": "- ", "p": ""}
    out: list[str] = []
    previous = ""
    for b in blocks:
        # A list item follows its list without a gap; everything else is its own paragraph
        # (a paragraph straight after a list would otherwise join the last item).
        if out and not (b.kind == "li" and previous == "li"):
            out.append("")
        if b.kind == "table":
            out.extend(_md_table(b.rows))
        else:
            out.append(prefix.get(b.kind, "") + _md(b.text))
        previous = b.kind
    return "\n".join(out) + "\n"


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    head, *body = rows
    lines = ["| " + " | ".join(_md(c) for c in head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    return lines


# The minutes are the house's marked PDF (mset_platform/pdf.py).
_latin1 = latin1
_MinutesPdf = MarkedPdf


def to_pdf(blocks: Sequence[Block], title: str) -> bytes:
    pdf = _MinutesPdf(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_creator("MSET Flow")
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.add_page()
    styles = {"h2": ("B", 12, 8), "h3": ("B", 11, 7), "p": ("", 10, 5)}
    for n, b in enumerate(blocks):
        text = _latin1(b.text)
        if n == 0 and b.text == MARKING:
            # The marking's caveat under the page's own marking, once, small.
            pdf.set_font("helvetica", "I", 8)
            pdf.multi_cell(0, 4, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif b.kind == "h1":
            _title_block(pdf, text)
        elif b.kind == "table":
            _table(pdf, b.rows, _COLUMNS.get(b.text))
        elif b.kind == "li":
            pdf.set_font("helvetica", "", 10)
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(0, 5, f"- {text}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            style, size, height = styles.get(b.kind, ("", 10, 5))
            pdf.set_font("helvetica", style, size)
            if b.kind.startswith("h") and pdf.get_y() > pdf.h - _KEEP_WITH_NEXT:
                pdf.add_page()  # a heading starts its section's page, never ends one
            elif b.kind.startswith("h"):
                pdf.ln(2)
            pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1)
    return bytes(pdf.output())


def _title_block(pdf: FPDF, text: str) -> None:
    pdf.set_fill_color(29, 112, 184)
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("helvetica", "B", 16)
    pdf.multi_cell(0, 10, text, fill=True, padding=2, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(3)


def _table(pdf: FPDF, rows: Sequence[Sequence[str]], widths: Any) -> None:
    pdf.set_font("helvetica", "", 9)
    with pdf.table(
        col_widths=widths,
        text_align="LEFT",
        line_height=5,
        padding=1,
        headings_style=FontFace(emphasis="BOLD", fill_color=(222, 226, 230)),
    ) as table:
        for row in rows:
            cells = table.row()
            for cell in row:
                cells.cell(_latin1(cell))
    pdf.ln(3)


# Room (mm, from the foot of the page) a heading needs for its first lines below it.
_KEEP_WITH_NEXT = 50

# Relative column widths of each table.
_COLUMNS = {
    DECISIONS_TABLE: (8, 26, 20, 10, 18, 18),
    ACTIONS_TABLE: (22, 8, 26, 18, 18, 40),
}
