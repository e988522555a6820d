"""Where a case goes next: every stage of ``ReferralWorkflow`` against everything that can
happen to it (an update, a signal, a timer), as data.

The same table is rendered into ``docs/stage-transitions.md`` (a unit test checks the file
matches) and walked cell by cell against the workflow on the time-skipping server, so the
document, the tests and the code cannot drift apart. The rule it writes down: **no event undoes
a decision**. Only a decision (an update) or the referrer's own new information (a new tool, or
the deadline for it passing) moves a case; a missing episode, a rules check or an action's
timer re-triages and escalates, but never changes the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mset_contract.temporal import (
    REFERRAL_EXIT_CASE_UPDATE,
    REFERRAL_MISSING_EPISODE_SIGNAL,
    REFERRAL_REASSESSED_SIGNAL,
    REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
    REFERRAL_RECORD_MSET_REVIEW_UPDATE,
    REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
)
from mset_contract.vocab import Stage

REFUSED: Final = "refused"


class CaseInput(StrEnum):
    """Everything that can reach a case. Values are the table's column names."""

    pre_mset_meets_criteria = "pre_mset_decision:meets_criteria"
    pre_mset_not_met = "pre_mset_decision:not_met"
    pre_mset_more_information = "pre_mset_decision:more_information"
    mset_review = "mset_review"
    action_progress = "action_progress"
    exit = "exit"
    reassessed = "reassessed"
    missing_episode = "missing_episode"
    information_deadline = "information_deadline"
    rules_check = "rules_check"


@dataclass(frozen=True)
class InputInfo:
    kind: str  # "update", "signal" or "timer"
    meaning: str


INPUTS: Final[dict[CaseInput, InputInfo]] = {
    CaseInput.pre_mset_meets_criteria: InputInfo(
        "update",
        f"Pre-MSET decision `{REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE}`, outcome `meets_criteria`",
    ),
    CaseInput.pre_mset_not_met: InputInfo(
        "update", "Pre-MSET decision, outcome `not_met` (with its rationale)"
    ),
    CaseInput.pre_mset_more_information: InputInfo(
        "update", "Pre-MSET decision, outcome `more_information` (sets the deadline)"
    ),
    CaseInput.mset_review: InputInfo(
        "update", f"MSET review `{REFERRAL_RECORD_MSET_REVIEW_UPDATE}`"
    ),
    CaseInput.action_progress: InputInfo(
        "update", f"progress on a plan action `{REFERRAL_RECORD_ACTION_PROGRESS_UPDATE}`"
    ),
    CaseInput.exit: InputInfo(
        "update",
        f"exit `{REFERRAL_EXIT_CASE_UPDATE}`, every open action closed or carried to the case "
        "holder",
    ),
    CaseInput.reassessed: InputInfo(
        "signal",
        f"`{REFERRAL_REASSESSED_SIGNAL}`: a new Risk Assessment Tool for the child (new "
        "information)",
    ),
    CaseInput.missing_episode: InputInfo(
        "signal",
        f"`{REFERRAL_MISSING_EPISODE_SIGNAL}`: a missing episode reported, returned or its RHI "
        "recorded",
    ),
    CaseInput.information_deadline: InputInfo(
        "timer", "the deadline for the information Pre-MSET asked for passes"
    ),
    CaseInput.rules_check: InputInfo(
        "timer", "a check the rules asked for (escalations), or an action's reminder/overdue"
    ),
}

S = Stage


def _closed(stage: Stage) -> dict[CaseInput, Stage | str]:
    """A closed stage's row: every decision refused, every signal and timer changes nothing."""
    decisions = (
        CaseInput.pre_mset_meets_criteria,
        CaseInput.pre_mset_not_met,
        CaseInput.pre_mset_more_information,
        CaseInput.mset_review,
        CaseInput.action_progress,
        CaseInput.exit,
    )
    events = (
        CaseInput.reassessed,
        CaseInput.missing_episode,
        CaseInput.information_deadline,
        CaseInput.rules_check,
    )
    return {**dict.fromkeys(decisions, REFUSED), **dict.fromkeys(events, stage)}


# Rows: stage → {input: resulting stage, or REFUSED}. Every cell has a value, so the table
# reads on its own (a test checks none is missing).
_ROWS: dict[Stage, dict[CaseInput, Stage | str]] = {
    # Passed through in the workflow's first step (triage): no decision can be taken yet;
    # signals are kept and acted on once the case awaits Pre-MSET.
    S.submitted: {
        CaseInput.pre_mset_meets_criteria: REFUSED,
        CaseInput.pre_mset_not_met: REFUSED,
        CaseInput.pre_mset_more_information: REFUSED,
        CaseInput.mset_review: REFUSED,
        CaseInput.action_progress: REFUSED,
        CaseInput.exit: REFUSED,
        CaseInput.reassessed: S.submitted,
        CaseInput.missing_episode: S.submitted,
        CaseInput.information_deadline: S.submitted,
        CaseInput.rules_check: S.submitted,
    },
    S.triaged: {
        CaseInput.pre_mset_meets_criteria: REFUSED,
        CaseInput.pre_mset_not_met: REFUSED,
        CaseInput.pre_mset_more_information: REFUSED,
        CaseInput.mset_review: REFUSED,
        CaseInput.action_progress: REFUSED,
        CaseInput.exit: REFUSED,
        CaseInput.reassessed: S.triaged,
        CaseInput.missing_episode: S.triaged,
        CaseInput.information_deadline: S.triaged,
        CaseInput.rules_check: S.triaged,
    },
    S.awaiting_pre_mset: {
        CaseInput.pre_mset_meets_criteria: S.awaiting_mset,
        CaseInput.pre_mset_not_met: S.closed_advice_given,
        CaseInput.pre_mset_more_information: S.more_information_requested,
        CaseInput.mset_review: REFUSED,
        CaseInput.action_progress: REFUSED,
        CaseInput.exit: S.exited,
        CaseInput.reassessed: S.awaiting_pre_mset,
        CaseInput.missing_episode: S.awaiting_pre_mset,
        CaseInput.information_deadline: S.awaiting_pre_mset,
        CaseInput.rules_check: S.awaiting_pre_mset,
    },
    S.more_information_requested: {
        CaseInput.pre_mset_meets_criteria: REFUSED,
        CaseInput.pre_mset_not_met: REFUSED,
        CaseInput.pre_mset_more_information: REFUSED,
        CaseInput.mset_review: REFUSED,
        CaseInput.action_progress: REFUSED,
        CaseInput.exit: S.exited,
        # The information asked for arrived: the panel considers the case again.
        CaseInput.reassessed: S.awaiting_pre_mset,
        # Re-triaged and escalated, but the panel's request (and its deadline) stands.
        CaseInput.missing_episode: S.more_information_requested,
        # Not sent in time: the panel considers the case with what it has.
        CaseInput.information_deadline: S.awaiting_pre_mset,
        CaseInput.rules_check: S.more_information_requested,
    },
    S.awaiting_mset: {
        CaseInput.pre_mset_meets_criteria: REFUSED,
        CaseInput.pre_mset_not_met: REFUSED,
        CaseInput.pre_mset_more_information: REFUSED,
        CaseInput.mset_review: S.active_plan,
        CaseInput.action_progress: REFUSED,
        CaseInput.exit: S.exited,
        CaseInput.reassessed: S.awaiting_mset,
        CaseInput.missing_episode: S.awaiting_mset,
        CaseInput.information_deadline: S.awaiting_mset,
        CaseInput.rules_check: S.awaiting_mset,
    },
    S.active_plan: {
        CaseInput.pre_mset_meets_criteria: REFUSED,
        CaseInput.pre_mset_not_met: REFUSED,
        CaseInput.pre_mset_more_information: REFUSED,
        CaseInput.mset_review: S.active_plan,
        CaseInput.action_progress: S.active_plan,
        CaseInput.exit: S.exited,
        CaseInput.reassessed: S.active_plan,
        CaseInput.missing_episode: S.active_plan,
        CaseInput.information_deadline: S.active_plan,
        CaseInput.rules_check: S.active_plan,
    },
    # Closed: the workflow has completed. Updates are refused; signals find no running case
    # (the services answer that the case has ended) and change nothing.
    S.closed_advice_given: _closed(S.closed_advice_given),
    S.exited: _closed(S.exited),
}

TRANSITIONS: Final[dict[tuple[Stage, CaseInput], Stage | str]] = {
    (stage, inp): result for stage, row in _ROWS.items() for inp, result in row.items()
}


def result_of(stage: Stage, inp: CaseInput) -> Stage | str:
    """The stage a case at ``stage`` is at after ``inp``, or ``REFUSED``."""
    return TRANSITIONS[(stage, inp)]


def cells() -> list[tuple[Stage, CaseInput, Stage | str]]:
    """Every cell of the table, row by row (stages in the vocabulary's order)."""
    return [(stage, inp, TRANSITIONS[(stage, inp)]) for stage in Stage for inp in CaseInput]


def markdown_table() -> str:
    """The table as ``docs/stage-transitions.md`` shows it."""
    cols = list(CaseInput)
    lines = [
        "| stage | " + " | ".join(f"`{c.value}`" for c in cols) + " |",
        "| --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    for stage in Stage:
        row = [_cell(stage, TRANSITIONS[(stage, c)]) for c in cols]
        lines.append(f"| `{stage.value}` | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def markdown_inputs() -> str:
    lines = ["| input | kind | what it is |", "| --- | --- | --- |"]
    for inp, info in INPUTS.items():
        lines.append(f"| `{inp.value}` | {info.kind} | {info.meaning} |")
    return "\n".join(lines) + "\n"


def _cell(stage: Stage, result: Stage | str) -> str:
    if result == REFUSED:
        return "refused"
    if result == stage:
        return "(stays)"
    return f"**{result}**"


DOC_INTRO = """# Stage transitions of a case

Generated from `mset_contract/stage_transitions.py` (`python -m mset_contract.stage_transitions
> docs/stage-transitions.md`); a unit test fails when this file and the data differ, and a
workflow test walks every cell against `ReferralWorkflow` on the time-skipping server.

**No event undoes a decision.** Only a decision (an update), the referrer's new information
(a new tool) or the deadline for that information moves a case. A missing episode, a rules
check or an action's reminder re-triages the case and escalates, but leaves its stage (and a
"more information" deadline) as the panel set it.

`refused`: the update is rejected by its validator before anything is recorded (the caller
gets the reason). `(stays)`: the stage does not change. **bold**: the stage the case moves to.
`submitted` and `triaged` are passed through in the workflow's first step; `closed_advice_given`
and `exited` end the workflow.

## Inputs

"""


def render_doc() -> str:
    """The whole of ``docs/stage-transitions.md``."""
    return DOC_INTRO + markdown_inputs() + "\n## Table\n\n" + markdown_table()


if __name__ == "__main__":
    print(render_doc(), end="")
