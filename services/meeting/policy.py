"""Who may do what in the meeting service, as rows of the access table (docs/access.md).

The service enforces its one table, ``domain.PERMISSIONS`` (each route calls
``domain.require`` before it looks a meeting up, so a refusal by role is a 403 whatever the
id); these rows are generated from that table, with the routes each permission guards.
A meeting's agenda and minutes are about its authority's children: each panel role sees,
prepares, decides in and closes the meetings of the authorities it serves
(``domain.require_in``: any other meeting is the 404 of one that does not exist), and calls
or triggers meetings only for those. Partner systems, providers, managers and admins have no
business with panel papers; analysts see the aggregate attendance only.
"""

from __future__ import annotations

from mset_platform.access import Actor, Rule, Scope, case_record_rule
from services.meeting.domain import PERMISSIONS, Permission

SERVICE = "meeting"

# What each permission is, and the routes it guards.
_ROWS: tuple[tuple[Permission, str, str, str], ...] = (
    (Permission.read, "meeting", "list", "GET /v1/meetings"),
    (Permission.read, "meeting", "read", "GET /v1/meetings/{id}"),
    (Permission.read, "meeting", "read the agenda of", "GET /v1/meetings/{id}/agenda"),
    (Permission.read, "meeting", "read the minutes of", "GET /v1/meetings/{id}/minutes.md"),
    (Permission.read, "meeting", "read the minutes (PDF) of", "GET /v1/meetings/{id}/minutes.pdf"),
    (Permission.call_meeting, "meeting", "call (extraordinary LMAPS)", "POST /v1/meetings"),
    (
        Permission.prepare,
        "meeting",
        "redraw the agenda of",
        "POST /v1/meetings/{id}/agenda/refresh",
    ),
    (Permission.prepare, "meeting", "record the attendance of", "PUT /v1/meetings/{id}/attendance"),
    (
        Permission.decide,
        "meeting",
        "record a decision in",
        "POST /v1/meetings/{id}/items/{item_id}/decision",
    ),
    (
        Permission.decide,
        "meeting",
        "record a case's decision in",
        "POST /v1/meetings/{id}/cases/{referral_id}/decision",
    ),
    (Permission.close, "meeting", "close", "POST /v1/meetings/{id}/close"),
    (Permission.run_schedules, "meeting schedule", "list", "GET /v1/schedules"),
    (
        Permission.run_schedules,
        "meeting schedule",
        "trigger",
        "POST /v1/schedules/{local_authority}/{kind}/trigger",
    ),
    (Permission.attendance_report, "attendance report", "read", "GET /v1/reports/attendance"),
)


# Rows on no one authority's meetings: the schedules' list (configuration) and the aggregate
# attendance report (counts by agency, no child's data). Every other row is for the
# meetings of the authorities the caller serves (``domain.require_in``/``require_authority``).
_PARTNERSHIP_WIDE = {"GET /v1/schedules", "GET /v1/reports/attendance"}


def _scope(route: str) -> Scope:
    return Scope.every if route in _PARTNERSHIP_WIDE else Scope.served_authority


RULES = (
    *(
        Rule(
            SERVICE,
            record,
            verb,
            route,
            {a: _scope(route) for a in Actor if a.value in PERMISSIONS[p]},
        )
        for p, record, verb, route in _ROWS
    ),
    # Counts by agency for the referral service's board reports (docs/decisions/0023): the
    # MSET services only; people read the reports there.
    Rule(
        SERVICE,
        "attendance aggregates",
        "read",
        "GET /v1/aggregates/attendance",
        {Actor.service: Scope.every},
        refusal="attendance aggregates are read by the MSET services",
    ),
)
CASE_RECORD = case_record_rule(SERVICE)
RULES = (*RULES, CASE_RECORD)
