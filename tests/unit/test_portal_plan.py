"""The chair's MSET plan form and the coordinator's attendance form, as plain logic: what a
posted form becomes, and where each refusal stands on the page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from mset_contract.cases import MsetReviewCreate, MsetReviewRequest
from mset_contract.meeting import Attendee, Capacity
from services.portal import attendance, plan

AGENCY = str(uuid.uuid4())


def _action(n: int, **kw: str) -> dict[str, str]:
    soon = datetime.now(UTC) + timedelta(days=10)
    fields = {
        "description": "Serve a notice.",
        "owner": AGENCY,
        "due-day": str(soon.day),
        "due-month": str(soon.month),
        "due-year": str(soon.year),
        "aim": "reduce",
        "target": "perpetrator",
        **kw,
    }
    return {f"action-{n}-{k}": v for k, v in fields.items()}


def test_a_plan_with_an_empty_row_sends_only_the_filled_actions() -> None:
    form = {"level": "high", "action_count": "3", **_action(0), **_action(2, aim="avoid")}
    got = plan.read_plan(form, "portal-1")
    assert got.errors == {}
    assert got.review is not None
    assert got.review.review_id == "portal-1"
    assert [a.aim.value for a in got.review.actions] == ["reduce", "avoid"]
    # Due by 5pm UK time on the day typed.
    assert got.review.actions[0].due_at.astimezone(plan.LONDON).hour == plan.DUE_HOUR


def test_the_form_s_own_errors_stand_beside_each_action_s_field() -> None:
    form = {
        "level": "",
        "action_count": "2",
        **_action(0, owner=""),
        **_action(1, **{"due-month": "", "target": ""}),
    }
    got = plan.read_plan(form, "portal-1")
    assert got.review is None
    assert got.errors == {
        "level": "Select the level the MSET group agrees",
        "action-0-owner": "Action 1: Select the agency that owns the action",
        "action-1-target": "Action 2: Select who or what the action is aimed at",
        "action-1-due": "Action 2: The due date must include a month",
    }


def test_a_date_years_away_is_refused_beside_its_action() -> None:
    form = {"level": "high", **_action(0, **{"due-year": str(datetime.now(UTC).year + 3)})}
    got = plan.read_plan(form, "portal-1")
    assert list(got.errors) == ["action-0-due"]
    assert got.errors["action-0-due"].startswith("Action 1: An action is due within")


def test_adding_a_row_keeps_what_was_typed() -> None:
    got = plan.read_plan({"level": "high", "action_count": "1", **_action(0)}, "r", adding=True)
    assert len(got.rows) == 2
    assert got.rows[0]["description"] == "Serve a notice."
    assert not any(got.rows[1].values())


def test_the_case_s_refusals_name_the_row_the_chair_sees() -> None:
    # Rows 0 and 2 were sent (row 1 was empty): the API's second action is the third row.
    rows = [0, 2]
    assert plan.review_field(
        "body", "actions.1.due_at: the due date must be in the future", rows
    ) == ("action-2-due", "Action 3: The due date must be in the future")
    assert plan.review_field(
        "actions.0.owner_agency_id",
        f"no agency {AGENCY}: choose the owner from GET /v1/agencies",
        rows,
    ) == ("action-0-owner", f"Action 1: No agency {AGENCY}: choose one from the list")
    assert (
        plan.review_field(
            "body", "the level changes from 'high' to 'medium': a rationale is required", rows
        )[0]
        == "rationale"
    )
    assert plan.review_field("body", "the case is at stage 'exited': ...", rows)[0] == "level"


def test_a_meeting_item_s_plan_is_the_same_form_without_an_id_of_its_own() -> None:
    # The meeting names its items' reviews itself: the body carries no review or meeting id
    # (the meeting refuses one), and is not the referral API's MsetReviewCreate.
    form = {"level": "high", "rationale": "Seen weekly.", "action_count": "1", **_action(0)}
    got = plan.read_plan(form, None)
    assert got.errors == {}
    assert isinstance(got.review, MsetReviewRequest)
    assert not isinstance(got.review, MsetReviewCreate)
    assert got.review.review_id is None and got.review.meeting_id is None
    assert got.review.model_dump(mode="json", exclude_none=True).keys() == {
        "kind",
        "level",
        "rationale",
        "actions",
    }


def test_the_meeting_s_refusals_stand_beside_the_row_the_chair_sees() -> None:
    # Rows 0 and 2 filled, row 1 empty: the meeting's actions.1 is the third row.
    form = {"level": "high", "action_count": "3", **_action(0), **_action(2)}
    sent = plan.read_plan(form, None)
    assert sent.sent_rows() == [0, 2]
    got = plan.refused(
        sent,
        [
            (
                "actions.1.owner_agency_id",
                f"no agency {AGENCY}: choose the owner from the agency directory "
                "(GET /v1/agencies on the referral API)",
            ),
            ("actions.0.due_at", "the due date has passed: give a future date"),
        ],
    )
    assert got.review is None
    assert got.errors == {
        "action-2-owner": f"Action 3: No agency {AGENCY}: choose one from the list",
        "action-0-due": "Action 1: The due date has passed: give a future date",
    }
    # What was typed is shown again.
    assert got.rows[2]["description"] == "Serve a notice."


def test_two_chairs_who_open_the_form_on_the_same_state_share_the_review_id() -> None:
    case = str(uuid.uuid4())
    assert plan.decision_id_for(case, 7) == plan.decision_id_for(case, 7)
    assert plan.decision_id_for(case, 7) != plan.decision_id_for(case, 8)


def test_attendance_by_agency_from_the_form() -> None:
    form = {
        "person_count": "3",
        "person-0-name": "DI Sam Okafor",
        "person-0-agency": AGENCY,
        "person-0-capacity": "chair",
        "person-0-present": "yes",
        "person-1-name": "Jo Patel",
        "person-1-agency": "name:Northshire Health",
        "person-1-capacity": "member",
        "person-1-present": "no",
        "person-2-capacity": "member",  # an empty row: its select has a value, nobody typed
    }
    got = attendance.read_attendance(form, {AGENCY: "Northshire Police"})
    assert got.errors == {}
    assert got.update is not None
    first, second = got.update.attendees
    assert (first.agency_name, str(first.agency_id), first.capacity) == (
        "Northshire Police",
        AGENCY,
        Capacity.chair,
    )
    assert (second.agency_name, second.agency_id, second.present) == (
        "Northshire Health",
        None,
        False,
    )


def test_attendance_errors_stand_beside_their_row() -> None:
    form = {
        "person_count": "3",
        "person-0-name": "A Chair",
        "person-0-agency": AGENCY,
        "person-0-capacity": "chair",
        "person-1-name": "Another Chair",
        "person-1-agency": AGENCY,
        "person-1-capacity": "chair",
        "person-2-name": "No Agency",
    }
    got = attendance.read_attendance(form, {AGENCY: "Northshire Police"})
    assert got.update is None
    assert got.errors == {
        "person-2-agency": "Person 3: select the agency they represent",
        "person-1-capacity": "Person 2: a meeting has one chair: mark the others as members",
    }


def test_the_recorded_attendance_is_shown_again_with_an_empty_row() -> None:
    rows = attendance.rows_of(
        [Attendee(person_name="Jo Patel", agency_name="Northshire Health", present=False)]
    )
    assert rows == [
        {
            "name": "Jo Patel",
            "agency": "name:Northshire Health",
            "capacity": "member",
            "present": "no",
        },
        {"name": "", "agency": "", "capacity": "", "present": ""},
    ]
