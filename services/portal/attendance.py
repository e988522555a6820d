"""The coordinator's attendance form: who attended a meeting and who sent apologies, by agency
and person, read from a posted form into the meeting API's ``AttendanceUpdate`` (which
replaces the list), and its refusals put back beside the row they concern. Plain logic: no
web, HTTP or service code.

Without JavaScript the form shows the people recorded so far and one empty row; "Add another
person" posts it back with one row more; a row left wholly empty is nobody. A person's agency
is chosen from the directory (its id goes with the name, so the minutes can name the agency's
actions); one recorded by name only over the API keeps its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from mset_contract.meeting import AttendanceUpdate, Attendee, Capacity

MAX_PEOPLE = 60
ROW_FIELDS = ("name", "agency", "capacity", "present")
# An agency known by its name only (recorded over the API without its id).
BY_NAME = "name:"

CAPACITY_NAMES = {
    Capacity.member: "Member",
    Capacity.chair: "Chair",
    Capacity.presenter: "Presenting a case",
    Capacity.observer: "Observer",
    Capacity.minute_taker: "Minute taker",
}
_ROW_REF = re.compile(r"^attendees\.(\d+)(?:\.(\w+))?")
_API_FIELDS = {"person_name": "name", "agency_name": "agency", "agency_id": "agency"}


def rows_of(attendees: Sequence[Attendee]) -> list[dict[str, str]]:
    """The form's rows for the attendance recorded so far, and one empty row."""
    rows = [
        {
            "name": a.person_name,
            "agency": str(a.agency_id) if a.agency_id else BY_NAME + a.agency_name,
            "capacity": a.capacity.value,
            "present": "yes" if a.present else "no",
        }
        for a in attendees
    ]
    return [*rows, dict.fromkeys(ROW_FIELDS, "")]


@dataclass(frozen=True)
class AttendanceForm:
    rows: list[dict[str, str]]
    update: AttendanceUpdate | None
    errors: dict[str, str]
    sent: list[int]  # the form's row of each attendee sent


def read_attendance(
    form: Mapping[str, str], agencies: Mapping[str, str], adding: bool = False
) -> AttendanceForm:
    """The posted rows as the attendance to send, or the form's own errors beside their row.
    ``agencies``: the directory's names by id."""
    try:
        count = int(form.get("person_count", "1"))
    except ValueError:
        count = 1
    count = max(1, min(MAX_PEOPLE, count + (1 if adding else 0)))
    rows = [{f: form.get(f"person-{n}-{f}", "").strip() for f in ROW_FIELDS} for n in range(count)]
    errors: dict[str, str] = {}
    people: list[dict[str, object]] = []
    sent: list[int] = []
    for n, row in enumerate(rows):
        # A capacity and "attended" are preselected on an empty row: it is empty if the
        # person and agency are.
        if not row["name"] and not row["agency"]:
            continue
        if not row["name"]:
            errors.setdefault(f"person-{n}-name", f"Person {n + 1}: enter their name")
        agency = row["agency"]
        if agency.startswith(BY_NAME) and agency.removeprefix(BY_NAME):
            agency_id, agency_name = None, agency.removeprefix(BY_NAME)
        elif agency in agencies:
            agency_id, agency_name = agency, agencies[agency]
        else:
            errors.setdefault(
                f"person-{n}-agency", f"Person {n + 1}: select the agency they represent"
            )
            continue
        people.append(
            {
                "person_name": row["name"],
                "agency_name": agency_name,
                "agency_id": agency_id,
                "capacity": row["capacity"] or Capacity.member.value,
                "present": row["present"] != "no",
            }
        )
        sent.append(n)
    # The meeting's own rule (one chair, present), said beside the row it concerns.
    chairs = [n for n in sent if rows[n]["capacity"] == Capacity.chair.value]
    for n in chairs[1:]:
        errors.setdefault(
            f"person-{n}-capacity",
            f"Person {n + 1}: a meeting has one chair: mark the others as members",
        )
    if chairs and rows[chairs[0]]["present"] == "no":
        n = chairs[0]
        errors.setdefault(f"person-{n}-present", f"Person {n + 1}: the chair must be present")
    if errors:
        return AttendanceForm(rows, None, errors, sent)
    try:
        update = AttendanceUpdate.model_validate({"attendees": people})
    except ValidationError as exc:
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            reason = str(e["msg"]).removeprefix("Value error, ")
            errors.setdefault(*refusal_field(loc, reason, sent))
        return AttendanceForm(rows, None, errors, sent)
    return AttendanceForm(rows, update, errors, sent)


def refusal_field(field: str, reason: str, sent: Sequence[int]) -> tuple[str, str]:
    """Where a refusal of the attendance belongs: a row's field when the meeting names one
    (``attendees.2.person_name``), the chair's row when it is about the chair, else the
    first row's name."""
    text = reason.strip()
    text = (text[:1].upper() + text[1:]) if text else text
    found = _ROW_REF.match(field)
    if found:
        n = int(found.group(1))
        row = sent[n] if n < len(sent) else n
        name = _API_FIELDS.get(found.group(2) or "", "name")
        return f"person-{row}-{name}", f"Person {row + 1}: {text}"
    if "chair" in text.lower():
        return "person-0-capacity", text
    return "person-0-name", text
