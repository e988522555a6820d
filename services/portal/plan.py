"""The chair's MSET plan form: the review's level and rationale and the plan's actions
(owner agency, due date, aim, target), read from a posted form into the review to send, and
the refusals put back beside the field each concerns. Plain logic: no web, HTTP or service
code.

One form, two ways in: on a case's page it is the referral API's ``MsetReviewCreate``, named
by a review id the portal takes from the case's state; on an MSET meeting's agenda item it is
the meeting API's ``MsetReviewRequest``, which the meeting names itself (the item's id).

The form works without JavaScript: it shows a number of action rows (``action_count``),
"Add another action" posts the form back with one row more, and a row left wholly empty is
no action. Each field's id is the anchor the error summary links to (``action-2-due``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mset_contract.cases import MsetReviewCreate, MsetReviewRequest
from mset_contract.vocab import ActionAim, ActionTarget
from services.portal.domain import LONDON

MAX_ACTIONS = 20
# An action falls due at the end of the working day it is given for, in UK time.
DUE_HOUR = 17

ACTION_FIELDS = ("description", "owner", "due-day", "due-month", "due-year", "aim", "target")
AIM_NAMES = {
    ActionAim.remove: "Remove the risk",
    ActionAim.avoid: "Avoid the risk",
    ActionAim.reduce: "Reduce the risk",
}
TARGET_NAMES = {
    ActionTarget.victim: "The child (victim)",
    ActionTarget.perpetrator: "Perpetrators",
    ActionTarget.location: "Locations",
}
# The API's names for an action's fields, as the form names them.
_API_FIELDS = {
    "owner_agency_id": "owner",
    "due_at": "due",
    "aim": "aim",
    "target": "target",
    "description": "description",
}
_MISSING = {
    "description": "Enter what the action is",
    "owner": "Select the agency that owns the action",
    "due": "Enter the date the action is due",
    "aim": "Select what the action aims to do",
    "target": "Select who or what the action is aimed at",
}
_ACTION_REF = re.compile(r"^actions\.(\d+)\.(\w+)")


def action_count(form: Mapping[str, str], adding: bool) -> int:
    """How many action rows the form shows: as posted, one more when adding, at least one."""
    try:
        count = int(form.get("action_count", "1"))
    except ValueError:
        count = 1
    return max(1, min(MAX_ACTIONS, count + (1 if adding else 0)))


def action_rows(form: Mapping[str, str], count: int) -> list[dict[str, str]]:
    """Each action row's fields as typed (stripped), in order."""
    return [
        {f: form.get(f"action-{n}-{f}", "").strip() for f in ACTION_FIELDS} for n in range(count)
    ]


def _blank(row: Mapping[str, str]) -> bool:
    return not any(row.values())


def _due_at(row: Mapping[str, str]) -> datetime:
    """The date typed, at the end of that working day in UK time; ValueError in words."""
    parts = {k: row[f"due-{k}"] for k in ("day", "month", "year")}
    missing = [k for k, v in parts.items() if not v]
    if len(missing) == 3:
        raise ValueError(_MISSING["due"])
    if missing:
        raise ValueError(f"The due date must include a {missing[0]}")
    try:
        d, m, y = (int(parts[k]) for k in ("day", "month", "year"))
        return datetime(y, m, d, DUE_HOUR, 0, tzinfo=LONDON)
    except ValueError:
        raise ValueError("The due date must be a real date") from None


@dataclass(frozen=True)
class PlanForm:
    """A posted plan: what was typed (to show again) and the review, or the form's errors."""

    values: dict[str, str]
    rows: list[dict[str, str]]
    review: MsetReviewRequest | None
    errors: dict[str, str]

    def sent_rows(self) -> list[int]:
        """The form's row of each action sent (a wholly empty row is not sent), to number a
        refusal of the n-th action as the chair sees the rows."""
        return [n for n, row in enumerate(self.rows) if any(row.values())]


def read_plan(form: Mapping[str, str], review_id: str | None, adding: bool = False) -> PlanForm:
    """The posted form as the review to send, or the form's own errors (required fields and
    real dates, in GOV.UK's words) beside their fields. Whether a due date is in the future
    and whether an owner exists are the case's, the meeting's and the directory's to say.

    ``review_id``: the case's form names its review (``MsetReviewCreate``); None for a
    meeting's agenda item, whose decision the meeting names (``MsetReviewRequest``)."""
    values = {k: form.get(k, "").strip() for k in ("level", "rationale")}
    rows = action_rows(form, action_count(form, adding))
    errors: dict[str, str] = {}
    if values["level"] not in {"low", "medium", "high"}:
        errors["level"] = "Select the level the MSET group agrees"
    actions: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        if _blank(row):
            continue
        action: dict[str, Any] = {}
        for name in ("description", "owner", "aim", "target"):
            if not row[name]:
                errors.setdefault(f"action-{n}-{name}", f"Action {n + 1}: {_MISSING[name]}")
        try:
            action["due_at"] = _due_at(row)
        except ValueError as exc:
            errors.setdefault(f"action-{n}-due", f"Action {n + 1}: {exc}")
        action.update(
            description=row["description"],
            owner_agency_id=row["owner"],
            aim=row["aim"],
            target=row["target"],
        )
        actions.append({"row": n, **action})
    if errors:
        return PlanForm(values, rows, None, errors)
    body: dict[str, Any] = {
        "level": values["level"],
        "rationale": values["rationale"] or None,
        "actions": [{k: v for k, v in a.items() if k != "row"} for a in actions],
    }
    model: type[MsetReviewRequest] = MsetReviewRequest
    if review_id is not None:
        body["review_id"], model = review_id, MsetReviewCreate
    try:
        review = model.model_validate(body)
    except ValidationError as exc:
        rows_of = [a["row"] for a in actions]
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            reason = str(e["msg"]).removeprefix("Value error, ")
            field, words = review_field(loc, reason, rows_of)
            errors.setdefault(field, words)
        return PlanForm(values, rows, None, errors)
    return PlanForm(values, rows, review, errors)


def refused(form: PlanForm, refusals: Sequence[tuple[str, str]]) -> PlanForm:
    """The form again with a service's refusals (each a field and its reason, as the
    referral or meeting API names them) beside the fields they concern."""
    errors: dict[str, str] = {}
    for field, reason in refusals:
        name, words = review_field(field, reason, form.sent_rows())
        errors.setdefault(name, words)
    return replace(form, review=None, errors=errors)


def review_field(field: str, reason: str, rows_of: Sequence[int]) -> tuple[str, str]:
    """Where a refusal of the review belongs on the form, and its words: an action's field
    (``actions.1.due_at``, named by the API's field or at the head of the case's reason) is
    that action row's field, numbered as the chair sees the rows; else the rationale or the
    level. ``rows_of``: the form's row of each action sent (empty rows are not sent)."""
    text = reason.strip()
    found = _ACTION_REF.match(field) or _ACTION_REF.match(text)
    if found:
        sent, api_field = int(found.group(1)), found.group(2)
        row = rows_of[sent] if sent < len(rows_of) else sent
        name = _API_FIELDS.get(api_field, "description")
        text = _ACTION_REF.sub("", text).lstrip(": ").strip()
        text = text.replace("choose the owner from GET /v1/agencies", "choose one from the list")
        text = text.replace(
            "choose the owner from the agency directory (GET /v1/agencies on the referral API)",
            "choose one from the list",
        )
        if not text or text == "required field is missing":
            text = _MISSING[name]
        return f"action-{row}-{name}", f"Action {row + 1}: {_sentence(text)}"
    lowered = f"{field} {text}".lower()
    if "rationale" in lowered:
        return "rationale", _sentence(text)
    return "level", _sentence(text)


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]) if text else text


def decision_id_for(referral_id: str, sequence: int) -> str:
    """A decision's or review's id, from the case's state as the form was shown (the read
    model's record number): a retry of the same form is one decision, and two chairs who
    opened the form on the same state share the id, so the second's different decision is
    refused by the case (409) as a conflict rather than recorded on top of the first unseen."""
    return f"portal-{referral_id[:8]}-{sequence}"
