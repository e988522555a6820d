"""The shape of every service's access policy: who (an actor) may do what (a verb) to which
record, and within what scope. Each service writes its rules once, as data, in its own
``policy.py``, and its routes ask that module; docs/access.md is generated from the tables
(``python -m deploy.access_doc``) and tests/integration/test_access_policy.py walks them.

How a refusal is answered, everywhere:

- allowed (the actor has a scope and the record is in it): the work is done;
- the caller may see the record but not do this to it: 403 with the reason;
- the caller may not see the record: the same 404 as for a record that does not exist;
- a route on no one record (a list, a submission) that the actor may never use: 403.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mset_contract.auth import Principal
from mset_contract.vocab import Role


class Actor(StrEnum):
    """Who calls: a partner system (its agency's API key), an MSET service (the service
    token), or a member of staff by role (the values are the roles')."""

    partner_system = "partner_system"
    service = "service"
    coordinator = Role.coordinator.value
    chair = Role.chair.value
    panel_member = Role.panel_member.value
    manager = Role.manager.value
    provider = Role.provider.value
    analyst = Role.analyst.value
    admin = Role.admin.value
    dpo = Role.dpo.value
    ops = Role.ops.value


def case_record_rule(service: str) -> Rule:
    """A service's whole record of one case, read by the referral service for a subject
    access export (the MSET services' token only)."""
    return Rule(
        service,
        "case's whole record",
        "read for subject access",
        "GET /v1/cases/{case_id}/record",
        {Actor.service: Scope.every},
        refusal="a case's whole record is read by the MSET services",
    )


def actor_of(principal: Principal) -> Actor | None:
    if principal.kind == "agency":
        return Actor.partner_system
    if principal.kind == "service":
        return Actor.service
    return Actor(principal.role.value) if principal.role is not None else None


def actors_of(roles: tuple[Role, ...] | frozenset[Role]) -> frozenset[Actor]:
    return frozenset(Actor(r.value) for r in roles)


class Scope(StrEnum):
    """Which records of the kind an actor may do the thing to."""

    every = "every"  # every record of the kind in the partnership
    own_agency = "own agency"  # those the caller's agency submitted or reported
    owner = "owning agency"  # an action the caller's agency owns
    commissioned = "commissioning authorities"  # in an authority that commissions the agency
    routed = "routed to them"  # an inbox item routed to the user (docs/escalation-routing.md)
    served_authority = "authorities served"  # of an authority the user serves


class Outcome(enum.Enum):
    allow = "allow"
    refuse = "403"
    hide = "404"


@dataclass(frozen=True)
class Rule:
    """One row of the access table: ``who`` maps each actor that may to its scope; every
    actor not named may not."""

    service: str
    record: str
    verb: str
    route: str  # METHOD path: where the rule is enforced (for the docs and the walk)
    who: Mapping[Actor, Scope]
    # Refusal words for an actor with no scope at all, on a route with no one record.
    refusal: str = ""
    # The rule deciding whether a refused caller may see the record (then 403, else 404).
    seen_by: Rule | None = field(default=None, compare=False)

    def scope(self, principal: Principal) -> Scope | None:
        actor = actor_of(principal)
        return self.who.get(actor) if actor is not None else None

    def allowed_actors(self) -> str:
        names = [a.value.replace("_", " ") for a in Actor if a in self.who]
        return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def who_is(principal: Principal) -> str:
    """The caller as a refusal names them."""
    if principal.kind == "agency":
        return "a partner system (agency API key)"
    if principal.kind == "service":
        return "an MSET service"
    return f"the role '{principal.role.value}'" if principal.role else "this caller"


def require(principal: Principal, rule: Rule, error: type[Exception]) -> Scope:
    """A route on no one record (or before the record is looked up): the actor's scope, which
    the service narrows its records to, or ``error`` (403) with the rule's words; the answer
    is the same whatever record was named."""
    scope = rule.scope(principal)
    if scope is None:
        raise error(rule.refusal or f"{who_is(principal)} may not {rule.verb} a {rule.record}")
    return scope
