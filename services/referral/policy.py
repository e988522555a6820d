"""Who may do what in the referral service: the one table, and the one place it is enforced.

Every route on a referral, an action, a missing episode or the directory asks this module
(``check``/``require``); nothing else in the service decides access. The answer follows
``mset_platform.access``: allowed; 403 with the reason for a caller who may see the record;
the same 404 as for a record that does not exist for one who may not.

Coordinators, chairs, panel members and managers work the cases of the local authorities they
serve (identity records them: ``mset user serve``), and a cross-boundary case once its case
has told their authority about it (``referral_authorities_told``), never every case in the
region. Admins manage accounts and analysts see aggregates: neither reads nor changes a
child's record, so neither appears in any row below. Providers act for the episodes of the
authorities that commission their agency (identity records it: ``mset agency commission``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from mset_contract.auth import Principal
from mset_platform import access
from mset_platform.access import Actor, Outcome, Rule, Scope, who_is
from services.referral.domain import NotPermitted, ReferralNotFound

A = Actor
EVERY, OWN, OWNER, COMMISSIONED = Scope.every, Scope.own_agency, Scope.owner, Scope.commissioned
# A case (or missing episode) of an authority the user serves, or of one whose case has told
# an authority the user serves about it (a cross-boundary case: ``Facts.told``).
SERVED = Scope.served_authority
SERVICE = "referral"

# Partnership roles that work across agencies' referrals (the MSET coordinator and panels):
# the cases of the authorities they serve, not every case in the region.
_PARTNERSHIP = {A.coordinator: SERVED, A.chair: SERVED, A.panel_member: SERVED, A.manager: SERVED}

REFERRAL_SUBMIT = Rule(
    SERVICE,
    "referral",
    "submit",
    "POST /v1/referrals",
    {A.partner_system: EVERY},
    refusal="submit referrals with your agency's API key (X-API-Key)",
)
REFERRAL_READ = Rule(
    SERVICE,
    "referral",
    "read",
    "GET /v1/referrals/{id}",
    {A.partner_system: OWN, **_PARTNERSHIP, A.provider: OWN},
)
PAPERS_READ = Rule(
    SERVICE,
    "referral",
    "read the panel papers of",
    "GET /v1/referrals/{id}/papers",
    {A.coordinator: SERVED, A.chair: SERVED, A.panel_member: SERVED},
    seen_by=REFERRAL_READ,
)
PRE_MSET_DECIDE = Rule(
    SERVICE,
    "referral",
    "record the Pre-MSET decision on",
    "POST /v1/referrals/{id}/pre-mset-decision",
    {A.chair: SERVED},
    seen_by=REFERRAL_READ,
)
MSET_REVIEW = Rule(
    SERVICE,
    "referral",
    "record the MSET review of",
    "POST /v1/referrals/{id}/mset-review",
    {A.chair: SERVED},
    seen_by=REFERRAL_READ,
)
EXIT = Rule(
    SERVICE,
    "referral",
    "record the exit of",
    "POST /v1/referrals/{id}/exit",
    {A.chair: SERVED, A.coordinator: SERVED},
    seen_by=REFERRAL_READ,
)
# Progress on an action: the agency that owns it (its system or its staff who work cases),
# whether or not it may read the rest of the case, or the coordinator or chair.
ACTION_PROGRESS = Rule(
    SERVICE,
    "action",
    "report progress on",
    "POST /v1/referrals/{id}/actions/{action_id}/progress",
    {
        A.partner_system: OWNER,
        A.coordinator: SERVED,
        A.chair: SERVED,
        A.panel_member: OWNER,
        A.manager: OWNER,
        A.provider: OWNER,
    },
    refusal="only the agency that owns it (its system or its staff who work cases), the "
    "coordinator or the chair may",
    seen_by=REFERRAL_READ,
)
ACTIONS_LIST = Rule(
    SERVICE,
    "action",
    "list",
    "GET /v1/actions",
    {
        A.partner_system: OWNER,
        A.coordinator: OWNER,
        A.chair: OWNER,
        A.panel_member: OWNER,
        A.manager: OWNER,
        A.provider: OWNER,
    },
    refusal="actions are listed for the agency that owns them: its system's API key, or its "
    "staff who work cases",
)
EPISODE_REPORT = Rule(
    SERVICE,
    "missing episode",
    "report",
    "POST /v1/missing-episodes",
    {A.partner_system: EVERY},
    refusal="report missing episodes with your agency's API key",
)
# Naming a case in a report (case_referral_id) counts the episode toward the case's
# repeat-missing rule and puts it on the case's agenda: only for a case the reporting agency
# may read; any other id is answered as one that does not exist (422 naming the field).
EPISODE_LINK = Rule(
    SERVICE,
    "referral",
    "attach a missing episode to",
    "POST /v1/missing-episodes (case_referral_id)",
    {A.partner_system: OWN},
)
EPISODE_READ = Rule(
    SERVICE,
    "missing episode",
    "read",
    "GET /v1/missing-episodes/{id}",
    {A.partner_system: OWN, **_PARTNERSHIP, A.provider: COMMISSIONED},
)
EPISODE_RETURN = Rule(
    SERVICE,
    "missing episode",
    "record the return of",
    "POST /v1/missing-episodes/{id}/return",
    {A.partner_system: OWN},
    refusal="the reporting agency records the return with its API key",
    seen_by=EPISODE_READ,
)
EPISODE_RHI = Rule(
    SERVICE,
    "missing episode",
    "record the Return Home Interview of",
    "POST /v1/missing-episodes/{id}/rhi",
    {A.provider: COMMISSIONED, A.coordinator: SERVED},
    refusal="only a provider commissioned by the episode's authority, or the coordinator, may",
    seen_by=EPISODE_READ,
)
# The returned children awaiting their interview: for a provider, the episodes of the
# authorities that commission its agency; for a coordinator, those of the authorities they
# serve (and of cases that have told one of them). Those who may record the interview.
EPISODES_RETURNED = Rule(
    SERVICE,
    "missing episode",
    "list the returned children of",
    "GET /v1/missing-episodes (status=returned)",
    {A.provider: COMMISSIONED, A.coordinator: SERVED},
    refusal="the returned children awaiting an interview are listed for Return Home "
    "Interview providers and the coordinator",
)
# The cases at a stage (those awaiting Pre-MSET, say) of the authorities the caller serves, and
# of the cases that have told one of them: the coordinator preparing a panel and its chair.
CASES_LIST = Rule(
    SERVICE,
    "referral",
    "list the cases at a stage of",
    "GET /v1/referrals (stage)",
    {A.coordinator: SERVED, A.chair: SERVED},
    refusal="the cases at a stage are listed for the MSET coordinator and the chairs, who "
    "prepare and run the panels",
)
# An agency's name and type are not personal data: every member of staff may see the list
# (a chair choosing an owner, a coordinator preparing a panel) and so may the MSET services.
DIRECTORY_READ = Rule(
    SERVICE,
    "agency directory",
    "read",
    "GET /v1/agencies",
    {a: EVERY for a in Actor if a is not A.partner_system},
    refusal="the agency directory is for MSET staff (a bearer token) and MSET services",
)
AGENCY_READ = Rule(
    SERVICE,
    "agency directory",
    "read one agency of",
    "GET /v1/agencies/{id}",
    DIRECTORY_READ.who,
    refusal=DIRECTORY_READ.refusal,
)
CASES_WHO = Rule(
    SERVICE,
    "referral",
    "name the child of",
    "GET /v1/cases/who",
    {A.service: EVERY},
    refusal="who the cases are about is read by the MSET services",
)
# The information-sharing ledger and subject access (ADR 0023): the Data Protection Officer
# alone reads them; the MSET services report their own disclosures to it.
_DPO_ONLY = (
    "the information-sharing ledger and subject access exports are for the Data Protection "
    "Officer (a user with the role 'dpo')"
)
DISCLOSURES_READ = Rule(
    SERVICE,
    "information-sharing ledger",
    "read",
    "GET /v1/disclosures",
    {A.dpo: EVERY},
    refusal=_DPO_ONLY,
)
DISCLOSURES_EXPORT = Rule(
    SERVICE,
    "information-sharing ledger",
    "export",
    "GET /v1/disclosures/export.csv",
    {A.dpo: EVERY},
    refusal=_DPO_ONLY,
)
DISCLOSURES_REPORT = Rule(
    SERVICE,
    "information-sharing ledger",
    "report a disclosure to",
    "POST /v1/disclosures",
    {A.service: EVERY},
    refusal="disclosures are reported by the MSET services",
)
SUBJECT_ACCESS = Rule(
    SERVICE,
    "child's whole record",
    "export for subject access",
    "GET /v1/subject-access/{child}",
    {A.dpo: EVERY},
    refusal=_DPO_ONLY,
)
# Board reports (docs/reports.md): counts only, never a child's record, for the analysts,
# managers, the DPO and the MSET coordinator, across the partnership.
REPORTS_READ = Rule(
    SERVICE,
    "board report",
    "read",
    "GET /v1/reports/{name}",
    {A.coordinator: EVERY, A.manager: EVERY, A.analyst: EVERY, A.dpo: EVERY},
    refusal="board reports are for analysts, managers, the DPO and the MSET coordinator",
)
# The ops dashboard's counts of cases by stage, authority and deadline, and of failed
# workflows (docs/portal.md): never a case.
CASE_AGGREGATES_READ = Rule(
    SERVICE,
    "case counts",
    "read",
    "GET /v1/aggregates/cases",
    {A.ops: EVERY},
    refusal="the case counts are for the ops role",
)
# Every board report for a period as one PDF (docs/board-pack.md): the same readers.
BOARD_PACK_READ = Rule(
    SERVICE,
    "board report",
    "read",
    "GET /v1/reports/board-pack.pdf",
    {A.coordinator: EVERY, A.manager: EVERY, A.analyst: EVERY, A.dpo: EVERY},
    refusal="board reports are for analysts, managers, the DPO and the MSET coordinator",
)
# The child's identity and same-child links (ADR 0028). The identity is shown to whoever may
# read the case; the review queue and its decisions are the coordinator's, for links that
# touch an authority the coordinator serves (either side: matching is across authorities);
# a child's linked history to the partnership roles, each referral in it shown as far as the
# reader may read that referral (another authority's shows only that it exists).
CHILD_IDENTITY_READ = Rule(
    SERVICE,
    "child's identity",
    "read",
    "GET /v1/referrals/{id}/child",
    REFERRAL_READ.who,
    seen_by=REFERRAL_READ,
)
CHILD_HISTORY_READ = Rule(
    SERVICE,
    "child's linked history",
    "read",
    "GET /v1/referrals/{id}/child-history",
    dict(_PARTNERSHIP),
    seen_by=REFERRAL_READ,
)
_COORDINATOR_LINKS = "same-child links are reviewed by the MSET coordinator"
CHILD_LINKS_REVIEW = Rule(
    SERVICE,
    "same-child link",
    "list the candidates of",
    "GET /v1/child-links/candidates",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_LINKS,
)
CHILD_LINK_CONFIRM = Rule(
    SERVICE,
    "same-child link",
    "confirm",
    "POST /v1/child-links/{id}/confirm",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_LINKS,
)
CHILD_LINK_REJECT = Rule(
    SERVICE,
    "same-child link",
    "reject",
    "POST /v1/child-links/{id}/reject",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_LINKS,
)
CHILD_LINK_UNLINK = Rule(
    SERVICE,
    "same-child link",
    "undo",
    "POST /v1/child-links/{id}/unlink",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_LINKS,
)
# Persons of concern and locations (ADR 0030). An entity's mentions are shown in full to the
# partnership roles serving the authority whose tool mentioned it, or one it was shared with
# (``Facts.told``: the authorities the mention is shared to); elsewhere only that a mention
# exists. Suggested matches are the coordinator's to decide, for matches touching an authority
# they serve (either side), as for same-child links.
ENTITY_READ = Rule(
    SERVICE,
    "person or location of concern",
    "read",
    "GET /v1/entities/{id}",
    dict(_PARTNERSHIP),
)
# Seeing the pattern: a child's linked people and places (and the other children linked
# through them, counted where not shared) for the partnership roles working the child's case;
# an entity's graph and network view as its page; hotspots (counts) for any authority.
CHILD_ENTITIES_READ = Rule(
    SERVICE,
    "child's linked people and places",
    "read",
    "GET /v1/referrals/{id}/entities",
    dict(_PARTNERSHIP),
    seen_by=REFERRAL_READ,
)
ENTITY_GRAPH_READ = Rule(
    SERVICE,
    "person or location of concern",
    "read the network of",
    "GET /v1/entities/{id}/graph",
    dict(_PARTNERSHIP),
)
ENTITY_NETWORK_READ = Rule(
    SERVICE,
    "person or location of concern",
    "draw the network of",
    "GET /v1/entities/{id}/network.svg",
    dict(_PARTNERSHIP),
)
HOTSPOTS_READ = Rule(
    SERVICE,
    "hotspot",
    "list",
    "GET /v1/hotspots",
    # Any authority of the partnership's: a hotspot is counts, and a place's name is shown
    # only where its mention may be seen (need to know, ADR 0030).
    {A.coordinator: EVERY, A.chair: EVERY, A.manager: EVERY},
    refusal="hotspots are listed for the coordinator, chairs and managers",
)
_COORDINATOR_ENTITIES = "same-person and same-place matches are reviewed by the MSET coordinator"
ENTITY_MATCHES_REVIEW = Rule(
    SERVICE,
    "same-entity match",
    "list the candidates of",
    "GET /v1/entity-matches/candidates",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_ENTITIES,
)
ENTITY_MATCH_CONFIRM = Rule(
    SERVICE,
    "same-entity match",
    "confirm",
    "POST /v1/entity-matches/{id}/confirm",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_ENTITIES,
    seen_by=ENTITY_READ,
)
ENTITY_MATCH_REJECT = Rule(
    SERVICE,
    "same-entity match",
    "reject",
    "POST /v1/entity-matches/{id}/reject",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_ENTITIES,
    seen_by=ENTITY_READ,
)
ENTITY_MATCH_UNDO = Rule(
    SERVICE,
    "same-entity match",
    "undo",
    "POST /v1/entity-matches/{id}/undo",
    {A.coordinator: SERVED},
    refusal=_COORDINATOR_ENTITIES,
    seen_by=ENTITY_READ,
)
# Before a review recorded in a meeting is sent, the meeting API asks (as the chair) whether
# each entity its actions name is one the chair may see, of the right kind: the check the
# referral API's own mset-review route makes. It answers nothing about an entity but "no
# such entity that you may see".
ENTITY_TARGETS_CHECK = Rule(
    SERVICE,
    "action aimed at a person or location",
    "check",
    "POST /v1/entity-targets/check",
    {A.chair: SERVED},
    refusal="the chair recording an MSET review names the people and places its actions aim at",
)
# Need to know across borders: the coordinator shares their authorities' mentions of an
# entity with another authority (whose staff then see their detail); recorded in the ledger
# with the reason.
ENTITY_SHARE = Rule(
    SERVICE,
    "person or location of concern",
    "share with another authority",
    "POST /v1/entities/{id}/share",
    {A.coordinator: SERVED},
    refusal="an authority's mentions are shared by its MSET coordinator",
    seen_by=ENTITY_READ,
)
# Who a credential belongs to (name, role, agency): told to the MSET services only.
INTROSPECT = Rule(
    SERVICE,
    "identity",
    "introspect a credential of",
    "POST /v1/auth/introspect",
    {A.service: EVERY},
    refusal="introspection is for the MSET services only",
)

RULES = (
    REFERRAL_SUBMIT,
    REFERRAL_READ,
    PAPERS_READ,
    PRE_MSET_DECIDE,
    MSET_REVIEW,
    EXIT,
    ACTION_PROGRESS,
    ACTIONS_LIST,
    EPISODE_REPORT,
    EPISODE_LINK,
    EPISODE_READ,
    EPISODE_RETURN,
    EPISODE_RHI,
    EPISODES_RETURNED,
    CASES_LIST,
    DIRECTORY_READ,
    AGENCY_READ,
    CASES_WHO,
    DISCLOSURES_READ,
    DISCLOSURES_EXPORT,
    DISCLOSURES_REPORT,
    SUBJECT_ACCESS,
    REPORTS_READ,
    INTROSPECT,
    BOARD_PACK_READ,
    CASE_AGGREGATES_READ,
    CHILD_IDENTITY_READ,
    CHILD_HISTORY_READ,
    CHILD_LINKS_REVIEW,
    CHILD_LINK_CONFIRM,
    CHILD_LINK_REJECT,
    CHILD_LINK_UNLINK,
    ENTITY_READ,
    ENTITY_MATCHES_REVIEW,
    ENTITY_MATCH_CONFIRM,
    ENTITY_MATCH_REJECT,
    ENTITY_MATCH_UNDO,
    CHILD_ENTITIES_READ,
    ENTITY_GRAPH_READ,
    ENTITY_NETWORK_READ,
    HOTSPOTS_READ,
    ENTITY_SHARE,
    ENTITY_TARGETS_CHECK,
)


@dataclass(frozen=True)
class Facts:
    """What a rule's scope is checked against: the agency that submitted or reported the
    record, the agency owning an action, the record's local authority, and the other
    authorities its case has told about it (``referral_authorities_told``)."""

    agency_id: uuid.UUID | None = None
    owner_agency_id: uuid.UUID | None = None
    local_authority: str | None = None
    told: frozenset[str] = frozenset()


def in_scope(principal: Principal, scope: Scope, facts: Facts) -> bool:
    if scope is Scope.every:
        return True
    if scope is Scope.own_agency:
        return facts.agency_id is not None and principal.agency_id == facts.agency_id
    if scope is Scope.owner:
        return facts.owner_agency_id is not None and principal.agency_id == facts.owner_agency_id
    if scope is Scope.commissioned:
        return facts.local_authority is not None and (
            facts.local_authority in principal.rhi_provider_for
        )
    if scope is Scope.served_authority:
        # Only staff record authorities; a user with none recorded serves none.
        served = set(principal.authorities) if principal.kind == "user" else set()
        return facts.local_authority in served or bool(served & facts.told)
    return False


def may(principal: Principal, rule: Rule, facts: Facts) -> bool:
    scope = rule.scope(principal)
    return scope is not None and in_scope(principal, scope, facts)


def decide(principal: Principal, rule: Rule, facts: Facts) -> Outcome:
    if may(principal, rule, facts):
        return Outcome.allow
    seen_by = rule.seen_by or rule
    return Outcome.refuse if may(principal, seen_by, facts) else Outcome.hide


def check(principal: Principal, rule: Rule, facts: Facts, not_found: str) -> None:
    """Allowed, or ``NotPermitted`` (403) for a caller who may see the record, or
    ``ReferralNotFound(not_found)``: the words a missing record gets, so a refusal says
    nothing about whether it exists."""
    outcome = decide(principal, rule, facts)
    if outcome is Outcome.refuse:
        why = rule.refusal or f"only the {rule.allowed_actors()} may"
        raise NotPermitted(f"{who_is(principal)} may not {rule.verb} this {rule.record}: {why}")
    if outcome is Outcome.hide:
        raise ReferralNotFound(not_found)


def require(principal: Principal, rule: Rule, error: type[Exception] = NotPermitted) -> Scope:
    """A route on no one record: the actor's scope, or ``error`` (403) with the rule's
    words."""
    return access.require(principal, rule, error)
