"""Saved histories of released workflow versions replay against the current code.

A change to workflow code that would make an open case's history replay differently breaks
this test: such a change must be guarded with ``workflow.patched``. The histories were
recorded with ``python -m tests.support.record_histories`` from real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.support.codec import DATA_CONVERTER
from workflows.worker import ALL_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("v*.json"))
RAW = {p.stem: p.read_text() for p in HISTORIES}  # read once, at collection


def test_there_are_histories_to_replay() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "v1-referral-full-lifecycle",
        "v1-referral-not-met",
        "v1-missing-episode-rhi-breach",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays_against_current_code(path: Path) -> None:
    raw = RAW[path.stem]
    history = WorkflowHistory.from_json(f"replay-{path.stem}", raw)
    assert len(history.events) > 20  # a real run, not an empty file
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
    # The recorded run completed: replay reached the same end.
    assert json.loads(raw)["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
