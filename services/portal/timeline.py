"""A case's timeline, newest first, from what the referral service answers (the case view
and its panel papers): the submission, the triage (every rule that fired, and why), each
decision with its rationale, each action's progress, and each missing episode with its
Return Home Interview. Nothing here is stored; it is built for one page and thrown away."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mset_contract.cases import CaseView
from mset_contract.papers import PanelPapers
from services.portal.domain import LEVEL_NAMES, OUTCOME_NAMES, RHI_OUTCOME_NAMES, words


@dataclass(frozen=True)
class Entry:
    at: datetime
    title: str
    lines: list[str] = field(default_factory=list)
    # A list of (label, text) pairs shown under the title (the rules that fired).
    items: list[tuple[str, str]] = field(default_factory=list)


def case_timeline(view: CaseView, papers: PanelPapers | None) -> list[Entry]:
    entries = [
        Entry(
            view.submitted_at,
            "Referral submitted",
            [f"The referrer judged the risk {LEVEL_NAMES[view.referrer_level].lower()}."],
        )
    ]
    if papers is None:
        return entries
    why = papers.why
    if why.triaged_at is not None:
        lines = []
        if why.suggested_level is not None:
            lines.append(
                f"The rules suggest {LEVEL_NAMES[why.suggested_level].lower()} risk"
                + (f" (score {why.score})" if why.score is not None else "")
                + (f", ruleset {why.ruleset_version}." if why.ruleset_version else ".")
            )
        items = [
            (words(rule.rule), rule.reason or "The reason could not be fetched just now.")
            for rule in why.rules
        ]
        entries.append(Entry(why.triaged_at, "Triaged by the rules", lines, items))
    for d in papers.history.decisions:
        title = "Pre-MSET decision" if d.kind == "pre_mset" else "MSET review"
        lines = []
        if d.outcome is not None:
            lines.append(OUTCOME_NAMES[d.outcome] + ".")
        lines.append(f"Level agreed: {LEVEL_NAMES[d.level].lower()}.")
        if d.rationale:
            lines.append(f"Rationale: {d.rationale}")
        entries.append(Entry(d.decided_at, title, lines))
    for a in papers.history.actions:
        owner = a.owner_agency or "the owning agency"
        for p in a.progress:
            lines = [f"{a.description} ({owner})"]
            if p.note:
                lines.append(p.note)
            title = f"Action {a.action_id} completed" if p.completed else f"Action {a.action_id}"
            entries.append(Entry(p.at, title + ": progress" if not p.completed else title, lines))
    for e in papers.history.missing_episodes:
        entries.append(Entry(e.reported_at, "Reported missing"))
        if e.returned_at is not None:
            where = [f"Found in {e.located_in_authority}."] if e.located_in_authority else []
            entries.append(Entry(e.returned_at, "Returned", where))
        if e.rhi_outcome is not None:
            at = e.rhi_offered_at or e.returned_at or e.reported_at
            entries.append(
                Entry(at, "Return Home Interview", [RHI_OUTCOME_NAMES[e.rhi_outcome] + "."])
            )
    return sorted(entries, key=lambda x: x.at, reverse=True)
