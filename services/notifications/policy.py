"""Who may do what in the notifications service: the one table, and the one place it is
enforced (``mset_platform.access`` says how a refusal is answered).

The inbox holds case-level facts (a case id, its level, the rules that fired): it is for the
staff who work cases, each seeing the items routed to them (docs/escalation-routing.md). An
item aimed at "the case holder" names no role, so the routing alone would show it to every
user of the agency; admins and analysts never see case-level data, so they have no inbox at
all (403 whatever the id: the answer says nothing about any item). An item not routed to the
caller is the same 404 as one that does not exist. Webhook subscriptions belong to a partner
system (its agency's API key) and are its own agency's.
"""

from __future__ import annotations

from mset_platform.access import Actor, Rule, Scope, case_record_rule

A = Actor
SERVICE = "notifications"

_CASE_WORKERS = {
    a: Scope.routed for a in (A.coordinator, A.chair, A.panel_member, A.manager, A.provider)
}
_INBOX_REFUSAL = (
    "the inbox is for the staff who work cases (a Bearer token): partner systems are told by "
    "webhook, and admins and analysts do not see case-level data"
)
_OWN = {A.partner_system: Scope.own_agency}
_WEBHOOK_REFUSAL = "webhooks belong to a partner system: use your agency's API key (X-API-Key)"


def _inbox(verb: str, route: str) -> Rule:
    return Rule(SERVICE, "inbox item", verb, route, _CASE_WORKERS, refusal=_INBOX_REFUSAL)


def _webhook(verb: str, route: str) -> Rule:
    return Rule(SERVICE, "webhook subscription", verb, route, _OWN, refusal=_WEBHOOK_REFUSAL)


INBOX_LIST = _inbox("list", "GET /v1/inbox")
INBOX_READ = _inbox("read", "GET /v1/inbox/{id}")
INBOX_ACKNOWLEDGE = _inbox("acknowledge", "POST /v1/inbox/{id}/acknowledge")
INBOX_ACTIONED = _inbox("mark actioned", "POST /v1/inbox/{id}/actioned")
WEBHOOK_CREATE = _webhook("create", "POST /v1/webhooks")
WEBHOOK_LIST = _webhook("list", "GET /v1/webhooks")
WEBHOOK_READ = _webhook("read", "GET /v1/webhooks/{id}")
WEBHOOK_DELIVERIES = _webhook("read the deliveries of", "GET /v1/webhooks/{id}/deliveries")
WEBHOOK_RESUME = _webhook("resume", "POST /v1/webhooks/{id}/resume")
WEBHOOK_DELETE = _webhook("delete", "DELETE /v1/webhooks/{id}")
WEBHOOK_ROTATE = _webhook("rotate the secret of", "POST /v1/webhooks/{id}/rotate-secret")

CASE_RECORD = case_record_rule(SERVICE)
# The ops dashboard's counts (docs/portal.md): by kind, urgency, authority and consumer
# group only, never an item, case or event.
OPERATIONS_READ = Rule(
    SERVICE,
    "operations counts",
    "read",
    "GET /v1/aggregates/operations",
    {A.ops: Scope.every},
    refusal="the operations counts are for the ops role",
)

RULES = (
    INBOX_LIST,
    INBOX_READ,
    INBOX_ACKNOWLEDGE,
    INBOX_ACTIONED,
    WEBHOOK_CREATE,
    WEBHOOK_LIST,
    WEBHOOK_READ,
    WEBHOOK_DELIVERIES,
    WEBHOOK_RESUME,
    WEBHOOK_DELETE,
    WEBHOOK_ROTATE,
    CASE_RECORD,
    OPERATIONS_READ,
)
