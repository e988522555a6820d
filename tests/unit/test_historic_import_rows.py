"""The historic import's row format: the JSON Schema in docs/import/ is the models' own, the
example file is valid by both, and a row's decisions are checked in the order they were
taken (the stage history and exit come out as the workflow would have made them)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mset_contract.historic_import import ImportReferral, import_row_schema
from mset_contract.vocab import ActionDisposition, ExitReason, Stage
from services.referral.historic import RowRefused, historic_case
from services.referral.importer import Rejection, unflatten, validate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "import"
EXAMPLE = DOCS / "example.jsonl"


def example_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]


def test_the_schema_in_docs_is_the_models_schema() -> None:
    written = json.loads((DOCS / "import-row.schema.json").read_text())
    assert written == import_row_schema(), (
        "docs/import/import-row.schema.json is out of date: regenerate it from "
        "mset_contract.historic_import.import_row_schema()"
    )


def test_every_example_row_is_valid_by_the_schema_and_the_models() -> None:
    schema = import_row_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for n, row in enumerate(example_rows(), start=1):
        jsonschema.validate(row, schema)
        assert not isinstance(validate(n, row), list), n


def _case(row: dict[str, Any]) -> Any:
    got = validate(1, row)
    assert isinstance(got, ImportReferral), got
    owners = {"Northshire Police": uuid.uuid4(), "Northshire Children's Social Care": uuid.uuid4()}
    return historic_case(
        got, uuid.uuid4(), uuid.uuid4(), lambda a: owners.get(a.owner_agency or "")
    )


def test_an_exited_case_keeps_its_stage_history_exit_and_actions() -> None:
    case = _case(example_rows()[0])
    s = case.state
    assert not case.open
    assert [c.stage for c in s.stages] == [
        Stage.submitted,
        Stage.triaged,
        Stage.awaiting_pre_mset,
        Stage.awaiting_mset,
        Stage.active_plan,
        Stage.exited,
    ]
    assert s.exit is not None and s.exit.reason is ExitReason.sufficiently_safe
    assert s.level is not None and s.level.value == "low"  # the last review's
    done, carried = s.actions
    assert done.completed_at is not None and done.disposition is None
    assert carried.disposition is ActionDisposition.carried and carried.ended_at is not None
    assert s.next_deadline is None


def test_an_open_case_is_at_the_stage_its_decisions_put_it() -> None:
    case = _case(example_rows()[3])
    assert case.open
    assert case.state.stage is Stage.awaiting_mset


def _refused(row: dict[str, Any]) -> RowRefused:
    with pytest.raises(RowRefused) as err:
        _case(row)
    return err.value


def test_decisions_out_of_order_or_unaccounted_are_refused_naming_the_field() -> None:
    base = example_rows()[0]

    no_pre = copy.deepcopy(base)
    del no_pre["pre_mset"]
    assert _refused(no_pre).field == "reviews.0"

    early = copy.deepcopy(base)
    early["pre_mset"]["decided_at"] = "2024-01-01T00:00:00+00:00"
    assert _refused(early).field == "pre_mset.decided_at"

    unaccounted = copy.deepcopy(base)
    unaccounted["exit"]["actions"] = []
    err = _refused(unaccounted)
    assert (err.field, "A-101-2" in err.reason) == ("exit.actions", True)

    silent_change = copy.deepcopy(base)
    del silent_change["reviews"][1]["rationale"]
    assert _refused(silent_change).field == "reviews.1.rationale"

    adult = copy.deepcopy(base)
    adult["tool"]["child"]["date_of_birth"] = "2005-01-01"
    err = _refused(adult)
    assert err.field == "tool.child.date_of_birth" and "18" in err.reason


def test_field_errors_come_from_the_api_models_with_their_paths() -> None:
    row = example_rows()[0]
    row["tool"]["child"]["gender"] = "unknown-code"
    row["submitted_at"] = "2999-01-01T00:00:00+00:00"
    got = validate(7, row)
    assert isinstance(got, list)
    fields = {r.field for r in got}
    assert {"tool.child.gender", "submitted_at"} <= fields
    assert all(isinstance(r, Rejection) and r.line == 7 for r in got)


def test_a_csv_line_is_the_row_its_dotted_columns_say() -> None:
    row = unflatten(
        {
            "kind": "missing_episode",
            "report.partner_reference": "MFH-1",
            "report.child.agency_child_ref": "C1",
            "report.child.date_of_birth": "2010-01-01",
            "report.child.local_authority": "northshire",
            "report.reported_at": "2024-01-01T20:00:00+00:00",
            "returned.returned_at": "",
            "rhi": "",
        }
    )
    assert row == {
        "kind": "missing_episode",
        "report": {
            "partner_reference": "MFH-1",
            "child": {
                "agency_child_ref": "C1",
                "date_of_birth": "2010-01-01",
                "local_authority": "northshire",
            },
            "reported_at": "2024-01-01T20:00:00+00:00",
        },
    }
    assert unflatten({"tool.indicators": '[{"code": "MIS-01"}]'}) == {
        "tool": {"indicators": [{"code": "MIS-01"}]}
    }
