"""The stage-transition table is complete, and docs/stage-transitions.md shows exactly it."""

from __future__ import annotations

from pathlib import Path

from mset_contract.stage_transitions import (
    INPUTS,
    REFUSED,
    TRANSITIONS,
    CaseInput,
    markdown_table,
    render_doc,
)
from mset_contract.vocab import Stage

DOC = Path(__file__).resolve().parents[2] / "docs" / "stage-transitions.md"


def test_every_stage_has_a_result_for_every_input() -> None:
    assert set(TRANSITIONS) == {(s, i) for s in Stage for i in CaseInput}
    assert set(INPUTS) == set(CaseInput)
    for result in TRANSITIONS.values():
        assert result == REFUSED or result in set(Stage)


def test_no_signal_or_timer_undoes_a_decision() -> None:
    # Only a decision, the referrer's new tool, or the deadline for it moves a case.
    movers = {CaseInput.reassessed, CaseInput.information_deadline}
    for (stage, inp), result in TRANSITIONS.items():
        if INPUTS[inp].kind != "update" and inp not in movers:
            assert result == stage, (stage, inp)
    assert TRANSITIONS[(Stage.more_information_requested, CaseInput.missing_episode)] == (
        Stage.more_information_requested
    )


def test_the_document_matches_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert markdown_table() in text
    assert text == render_doc(), (
        "docs/stage-transitions.md is out of date: regenerate it with "
        "`python -m mset_contract.stage_transitions > docs/stage-transitions.md`"
    )
