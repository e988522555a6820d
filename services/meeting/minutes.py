"""Minutes of a meeting, from its attendance and decisions, as Markdown and as PDF.

Both formats come from one list of blocks, so they say the same thing. Minutes contain only
the meeting's own items, refer to cases by referral id (the case workflows hold no names,
dates of birth or addresses), and are built from the agenda as the reader's role may see it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from mset_contract.meeting import (
    AgendaItemPublic,
    Capacity,
    ItemDecisionPublic,
    MeetingPublic,
    MeetingStatus,
)
from mset_contract.types import UK
from mset_contract.vocab import MeetingKind, Role

MARKING = "OFFICIAL-SENSITIVE: multi-agency safeguarding. Do not forward outside the partnership."

KIND_TITLE = {
    MeetingKind.pre_mset: "Pre-MSET panel",
    MeetingKind.mset: "MSET operational group",
    MeetingKind.lmaps: "Extraordinary LMAPS meeting",
}


@dataclass(frozen=True)
class Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "li"
    text: str


def _when(dt: datetime) -> str:
    return dt.astimezone(UK).strftime("%d %B %Y, %H:%M %Z")


def _day(dt: datetime) -> str:
    return dt.astimezone(UK).strftime("%d %B %Y")


def _label(value: str) -> str:
    text = value.replace("_", " ").replace("pre mset", "Pre-MSET")
    return text.replace("mset", "MSET").replace("lmaps", "LMAPS")


def _agency(agency_id: UUID, names: Mapping[UUID, str]) -> str:
    return names.get(agency_id, f"agency {agency_id}")


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
    lines.append(f"Recorded by {by} at {_when(d.decided_at)}.")
    return lines


def minutes_blocks(
    meeting: MeetingPublic,
    items: Sequence[AgendaItemPublic],
    *,
    role: Role,
    generated_at: datetime,
) -> list[Block]:
    att = meeting.attendance
    names = {a.agency_id: a.agency_name for a in att.attendees if a.agency_id is not None}
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
    for a in present:
        cap = "" if a.capacity is Capacity.member else f" ({_label(a.capacity.value)})"
        blocks.append(Block("li", f"{a.agency_name}: {a.person_name}{cap}"))
    if apologies:
        blocks.append(Block("h2", "Apologies"))
        blocks.extend(Block("li", f"{a.agency_name}: {a.person_name}") for a in apologies)
    blocks.append(Block("h2", "Cases considered"))
    if not items:
        blocks.append(Block("p", "The agenda had no cases."))
    for item in items:
        reasons = ", ".join(_label(r.value) for r in item.reasons)
        blocks.append(Block("h3", f"{item.position}. Referral {item.referral_id}"))
        blocks.append(Block("p", f"On the agenda for: {reasons}. Level: {item.risk_level.value}."))
        if item.decision is None:
            blocks.append(Block("li", "No decision recorded at this meeting."))
            continue
        withheld = set(item.withheld)
        blocks.extend(Block("li", line) for line in _decision_lines(item.decision, names, withheld))
    blocks.append(
        Block(
            "p",
            f"Generated {_when(generated_at)} for the {_label(role.value)} role. Contains this "
            "meeting's cases only; cases are named by referral id.",
        )
    )
    return blocks


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
        out.append(prefix.get(b.kind, "") + _md(b.text))
        previous = b.kind
    return "\n".join(out) + "\n"


_PDF_REPLACE = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
)


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1; anything else is replaced rather than failing the export.
    return text.translate(_PDF_REPLACE).encode("latin-1", "replace").decode("latin-1")


def to_pdf(blocks: Sequence[Block], title: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_creator("MSET Flow")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    styles = {"h1": ("B", 15, 9), "h2": ("B", 12, 8), "h3": ("B", 11, 7), "p": ("", 10, 5)}
    for b in blocks:
        style, size, height = styles.get(b.kind, ("", 10, 5))
        pdf.set_font("helvetica", style, size)
        text = _latin1(b.text)
        if b.kind == "li":
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(0, height, f"- {text}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            if b.kind.startswith("h"):
                pdf.ln(2)
            pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1)
    return bytes(pdf.output())
