"""The access table (docs/access.md) is the code's, and covers every route of the services
that hold records: a route no row speaks for is a route nobody decided access for."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from mset_platform.access import Actor
from services.access import DOC, RULES, markdown_table
from services.meeting.api import create_app as meeting_app
from services.meeting.settings import MeetingSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referral.api import create_app as referral_app
from services.referral.settings import ReferralSettings

# Routes that hold nothing about a child and need no credential.
PUBLIC = {
    "GET /v1/catalogue",
    "GET /v1/event-types",
}

_PARAM = re.compile(r"\{[a-z_]+\}")


def _routes(create: Callable[[Any], FastAPI], settings: Any) -> set[str]:
    app = create(settings.model_validate({"environment": "development"}))
    out = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        for method in getattr(route, "methods", None) or ():
            if path.startswith("/v1/") and method != "HEAD":
                out.add(f"{method} {_PARAM.sub('{}', path)}")
    return out


def test_the_document_shows_the_codes_table() -> None:
    assert markdown_table() in DOC.read_text(encoding="utf-8"), (
        "docs/access.md is out of date: python -m services.access"
    )


def test_every_route_has_a_row_and_every_row_a_route() -> None:
    served = (
        _routes(referral_app, ReferralSettings)
        | _routes(notifications_app, NotificationsSettings)
        | _routes(meeting_app, MeetingSettings)
    )
    rows = {_PARAM.sub("{}", r.route.split(" (")[0]) for r in RULES}
    assert served - PUBLIC == rows


def test_admins_and_analysts_touch_no_case_level_record() -> None:
    aggregate = {
        ("attendance report", "read"),
        ("board report", "read"),
        ("agency directory", "read"),
        ("agency directory", "read one agency of"),
    }
    for rule in RULES:
        if (rule.record, rule.verb) not in aggregate:
            assert Actor.admin not in rule.who and Actor.analyst not in rule.who, rule.route


def test_ops_reads_counts_only() -> None:
    """The ops role is named on the operations counts and the agency directory (as every
    member of staff is), and on no case-level record."""
    named = {rule.route for rule in RULES if Actor.ops in rule.who}
    assert named == {
        "GET /v1/aggregates/cases",
        "GET /v1/aggregates/operations",
        "GET /v1/agencies",
        "GET /v1/agencies/{id}",
    }
