"""The access table (docs/access.md, ``services.access.RULES``) walked row by row with real
credentials against the real services: the referral API (reads and writes), the
notifications API (inbox and webhooks) and the meeting API. Every actor (a partner system,
an MSET service, each staff role) calls each row twice, once as the record's own (its agency,
or staff serving its authority) and once as another's, and gets what the table says: allowed,
403, or word for word the 404 a record that does not exist gets. A refused write leaves
nothing written (what a user would notice of the record is the same after the refusals).

The walks are generated from the table: each row's route names its walk in ``WALKS``, and a
row without one fails ``test_every_row_of_the_table_is_walked``. Credentials are minted by
identity as ``mset`` mints them and resolved by each service itself (introspection)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mset_contract.auth import SERVICE_PRINCIPAL, Principal
from mset_contract.meeting import attendance_example
from mset_contract.vocab import AgencyType, MeetingKind, Role, Stage
from mset_platform.access import Actor, Outcome, Rule, Scope
from mset_platform.db import make_engine
from services.access import RULES
from services.meeting import policy as meeting_policy
from services.meeting.store import Meeting
from services.notifications import policy as notifications_policy
from services.notifications.api import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.notifications.store import InboxItem, WebhookSubscription
from services.notifications.store import Store as NotificationsStore
from services.referral import policy
from services.referral.child_identity import ChildLink, ChildLinkEvent
from services.referral.entities import EntityMatch, EntityMatchEvent, EntityShare
from services.referral.policy import Facts
from services.referral.store import LedgerEntry, MissingEpisode, Referral
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)
from tests.integration.test_action_owners import plan_action
from tests.integration.test_meeting_decisions import one_item_meeting
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_need_to_know import same_answer
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.servers import serve
from tests.support.wait import eventually

# The walks run on PostgreSQL, the store production runs, only: who may do what is decided
# from the record's facts by the policy, the same on either store, and a walk on each took
# about 30 s. Every route walked here also runs on SQLite in its own service's tests.
ONE_STORE = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
# Each walk sends a few hundred requests: about 30 s on a quiet machine, and more than the
# suite's 120 s per test on a 2-core machine with a load of 15 (seen twice).
LONG_WALK = pytest.mark.timeout(480)
PUBLIC_HOOK = "https://hooks.partner.example/mset"  # resolved to a public address below
DENIED = (401, 403, 404)


@dataclass(frozen=True)
class Caller:
    actor: Actor
    where: str  # "home": the record's own (agency, authority); "away": another's
    credential: str
    principal: Principal

    def __str__(self) -> str:
        return f"{self.actor.value} ({self.where})"


@dataclass
class Target:
    """What a row's scope is checked against: the record's facts (agency, authority, the
    action's owner), and for an inbox item the users it is routed to."""

    facts: Facts | None = None  # None: a route on no one record
    routed_to: frozenset[uuid.UUID] = frozenset()
    # The authority an act on no one record names (calling a meeting, a schedule).
    authority: str | None = None


def callers(intake: Intake, la_home: str, la_away: str) -> list[Caller]:
    """Every actor, at the home agency serving the home authority and at another agency
    serving another; the providers are commissioned by their own authority."""
    tag = uuid.uuid4().hex[:6]
    home = intake.identity.create_agency(
        f"Home {tag}", AgencyType.voluntary_provider, la_home, [la_home]
    )
    away = intake.identity.create_agency(
        f"Away {tag}", AgencyType.voluntary_provider, la_away, [la_away]
    )
    found = [
        Caller(Actor.partner_system, "home", home.secret, _resolve(intake, home.secret)),
        Caller(Actor.partner_system, "away", away.secret, _resolve(intake, away.secret)),
        Caller(Actor.service, "home", TEST_SERVICE_TOKEN, SERVICE_PRINCIPAL),
    ]
    for role in Role:
        for where, agency, la in (("home", home, la_home), ("away", away, la_away)):
            name = f"{role.value} {where} {tag}"
            token = intake.identity.create_user(name, role, agency.name, (la,)).secret
            found.append(Caller(Actor(role.value), where, token, _resolve(intake, token)))
    return found


def _resolve(intake: Intake, credential: str) -> Principal:
    principal = intake.identity.resolve(credential)
    assert principal is not None
    return principal


def expected(rule: Rule, caller: Caller, target: Target) -> Outcome:
    """What the table says for this caller: the referral service's own decision for its
    rows (403 for one who may see the record, else 404); elsewhere a role the row does not
    name is refused whatever the id (403), and one it names sees only the records in its
    scope (404 for the rest)."""
    p = caller.principal
    scope = rule.scope(p)
    if rule is policy.EPISODE_LINK and policy.EPISODE_REPORT.scope(p) is None:
        return Outcome.refuse  # only a partner system reports, naming a case or not
    if target.facts is None:  # no one record: the role may (for the authority it names)
        if scope is None:
            return Outcome.refuse
        named = target.authority
        if scope is Scope.served_authority and named is not None and named not in p.authorities:
            return Outcome.refuse
        return Outcome.allow
    if rule.service == policy.SERVICE:
        return policy.decide(p, rule, target.facts)
    if scope is None:
        return Outcome.refuse
    if scope is Scope.routed:
        return Outcome.allow if p.user_id in target.routed_to else Outcome.hide
    return Outcome.allow if policy.in_scope(p, scope, target.facts) else Outcome.hide


Snapshot = Callable[[], Awaitable[Any]]


@dataclass
class Walk:
    """One row's request: ``path`` holds the record's id (``real``), swapped for a made-up
    one to compare a hidden record's answer with a missing one's."""

    method: str
    path: str
    target: Target
    body: Callable[[], Any] | None = None  # a fresh body for each call
    real: str | None = None  # the record's id in the path
    snapshot: Snapshot | None = None  # what a user would notice of the record
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Walker:
    url: str
    callers: list[Caller]
    # A service with no route for MSET services does not know the service token: to it the
    # token is no credential at all (401), which refuses as surely as a 403.
    knows_service_token: bool = True
    walked: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    def http(self, credential: str) -> httpx.AsyncClient:
        headers = (
            {"X-API-Key": credential}
            if credential.startswith("msetk_")
            else {"Authorization": f"Bearer {credential}"}
        )
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    async def row(self, rule: Rule, walk: Walk) -> None:
        """Every caller on the row: the refused first, then a check that they wrote
        nothing, then the allowed (who may change the record)."""
        plan = [(c, expected(rule, c, walk.target)) for c in self.callers]
        plan.sort(key=lambda ce: ce[1] is Outcome.allow)
        before = await walk.snapshot() if walk.snapshot else None
        checked = False
        for caller, want in plan:
            if want is Outcome.allow and not checked:
                checked = True
                if walk.snapshot and await walk.snapshot() != before:
                    self.failures.append(f"{rule.route}: a refused caller changed the record")
            async with self.http(caller.credential) as http:
                got = await self._call(http, walk, walk.path)
                why = self._judge(rule, walk, want, got, caller)
                if why is None and want is Outcome.hide and walk.real is not None:
                    fake = str(uuid.uuid4())
                    none = await self._call(http, walk, walk.path.replace(walk.real, fake))
                    try:
                        same_answer(got, none, walk.real, fake)
                    except AssertionError:
                        why = f"404 differs from a missing record's: {got.text} / {none.text}"
            if why is not None:
                self.failures.append(f"{rule.route} as {caller}: {why}")
        if not checked and walk.snapshot and await walk.snapshot() != before:
            self.failures.append(f"{rule.route}: a refused caller changed the record")
        self.walked.add(rule.route)

    async def _call(self, http: httpx.AsyncClient, walk: Walk, path: str) -> httpx.Response:
        body = walk.body() if walk.body else None
        return await http.request(walk.method, path, json=body, params=walk.params or None)

    def _judge(
        self, rule: Rule, walk: Walk, want: Outcome, got: httpx.Response, caller: Caller
    ) -> str | None:
        knows_service_token = self.knows_service_token or caller.actor is not Actor.service
        status = got.status_code
        if rule is policy.EPISODE_LINK and want is Outcome.hide:
            # A case the reporter may not read is the 422 of an id that names no case.
            fields = [e["field"] for e in got.json().get("errors", [])] if status == 422 else []
            return None if fields == ["case_referral_id"] else f"{status}, not 422: {got.text}"
        if want is Outcome.allow:
            if walk.method == "GET" and status != 200:
                return f"allowed, got {status}: {got.text[:300]}"
            # A write passed the access check: done, or refused by the record's state.
            if status in DENIED or status >= 500:
                return f"allowed, got {status}: {got.text[:300]}"
            return None
        if status == 401 and want is Outcome.refuse and not knows_service_token:
            return None
        if status != (403 if want is Outcome.refuse else 404):
            return f"expected {want.value}, got {status}: {got.text[:300]}"
        return None

    def done(self, rules: tuple[Rule, ...]) -> None:
        assert not self.failures, "\n".join(self.failures)
        assert self.walked == {r.route for r in rules}, {r.route for r in rules} - self.walked


# --- the referral service and the notifications service -----------------------------------

WALKED_HERE = (*policy.RULES, *notifications_policy.RULES)


def test_every_row_of_the_table_is_walked() -> None:
    """A row added to any service's table without a walk here fails."""
    walked = {r.route for r in WALKED_HERE} | {r.route for r in meeting_policy.RULES}
    assert {r.route for r in RULES} <= walked
    assert len(WALKED_HERE) + len(meeting_policy.RULES) == len(RULES)


@contextmanager
def notifications_api(intake: Intake, database_url: str) -> Iterator[str]:
    """The real notifications API, resolving callers by the referral service's
    introspection; a partner's webhook host resolves to a public address."""
    settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "referral_url": intake.url}
    )

    def lookup(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    with serve(notifications_app(settings, lookup=lookup)) as url:
        yield url


def now() -> str:
    return datetime.now(UTC).isoformat()


@ONE_STORE
@LONG_WALK
async def test_every_actor_gets_what_the_table_says_on_the_referral_and_notifications_services(
    intake: Intake, database_url: str
) -> None:
    la, la_away = fresh_authority(), fresh_authority()
    everyone = callers(intake, la, la_away)
    home_key = everyone[0].credential
    home = everyone[0].principal.agency_id
    referrals = Walker(intake.url, everyone)

    async def partner() -> httpx.AsyncClient:
        return referrals.http(home_key)

    # A case awaiting Pre-MSET, and a missing episode in the home authority.
    child = f"C-{uuid.uuid4().hex[:8]}"
    async with await partner() as http:
        body = tool(child__local_authority=la, child__agency_child_ref=child)
        accepted = (await http.post("/v1/referrals", json=body)).json()
        rid = accepted["referral_id"]
        await wait_for_stage(http, rid, "awaiting_pre_mset")
        report = missing_report()
        report["child"]["local_authority"] = la
        eid = (await http.post("/v1/missing-episodes", json=report)).json()["episode_id"]
    handle = intake.client.get_workflow_handle(accepted["workflow_id"])
    case = Target(Facts(agency_id=home, local_authority=la))
    episode = Target(Facts(agency_id=home, local_authority=la))

    async def case_record() -> Any:
        s = await handle.query("state")
        return (s["stage"], s["pre_mset"], s["reviews_total"], s["actions"], s["exit"])

    def count(model: Any) -> Callable[[], Awaitable[int]]:
        async def counted() -> int:
            with intake.store.session() as s:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

        return counted

    async def episode_view() -> Any:
        async with await partner() as http:
            v = (await http.get(f"/v1/missing-episodes/{eid}")).json()
        return (v["status"], v["returned_at"], v["rhi_outcome"])

    def new_tool() -> Any:
        return tool(child__local_authority=la, child__agency_child_ref=f"C-{uuid.uuid4().hex[:8]}")

    def new_report(**kw: Any) -> Any:
        r = missing_report(**kw)
        r["child"]["local_authority"] = la
        return r

    r, p = referrals.row, policy
    await r(
        p.REFERRAL_SUBMIT, Walk("POST", "/v1/referrals", Target(), new_tool, None, count(Referral))
    )
    await r(p.REFERRAL_READ, Walk("GET", f"/v1/referrals/{rid}", case, real=rid))
    await r(p.PAPERS_READ, Walk("GET", f"/v1/referrals/{rid}/papers", case, real=rid))
    pre_mset = {"outcome": "meets_criteria", "level": "medium"}
    await r(
        p.PRE_MSET_DECIDE,
        Walk(
            "POST",
            f"/v1/referrals/{rid}/pre-mset-decision",
            case,
            lambda: pre_mset,
            rid,
            case_record,
        ),
    )
    review = {"level": "medium", "review_id": "r-1", "actions": [plan_action(home)]}
    await r(
        p.MSET_REVIEW,
        Walk("POST", f"/v1/referrals/{rid}/mset-review", case, lambda: review, rid, case_record),
    )
    state = await handle.query("state")
    assert state["stage"] == Stage.active_plan.value, state["stage"]
    action_id = state["actions"][0]["action_id"]
    owned = Target(Facts(agency_id=home, local_authority=la, owner_agency_id=home))
    note = {"note": "Visited.", "completed": False}
    await r(
        p.ACTION_PROGRESS,
        Walk(
            "POST",
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            owned,
            lambda: note,
            rid,
            case_record,
        ),
    )
    await r(p.ACTIONS_LIST, Walk("GET", "/v1/actions", Target()))
    exit_ = {"reason": "sufficiently_safe"}
    await r(
        p.EXIT, Walk("POST", f"/v1/referrals/{rid}/exit", case, lambda: exit_, rid, case_record)
    )
    await r(
        p.EPISODE_REPORT,
        Walk("POST", "/v1/missing-episodes", Target(), new_report, None, count(MissingEpisode)),
    )

    # Naming a case in a report: a second case, open, of the home agency.
    async with await partner() as http:
        other = (await http.post("/v1/referrals", json=new_tool())).json()["referral_id"]
        await wait_for_stage(http, other, "awaiting_pre_mset")
    await r(
        p.EPISODE_LINK,
        Walk(
            "POST",
            "/v1/missing-episodes",
            Target(Facts(agency_id=home, local_authority=la)),
            lambda: new_report(case_referral_id=other),
            None,
            count(MissingEpisode),
        ),
    )
    # The cases awaiting Pre-MSET (``other``, now): listed for the coordinators and chairs who
    # serve the home authority, and for no one else.
    params = {"stage": "awaiting_pre_mset"}
    await r(p.CASES_LIST, Walk("GET", "/v1/referrals", Target(), params=params))

    async def awaiting(caller: Caller) -> bool:
        async with referrals.http(caller.credential) as http:
            resp = await http.get("/v1/referrals", params={**params, "limit": 200})
        assert resp.status_code == 200, resp.text
        return other in [c["referral_id"] for c in resp.json()["items"]]

    for c in everyone:
        if p.CASES_LIST.scope(c.principal) is not None:
            assert await awaiting(c) == (c.where == "home"), f"{c} and the case awaiting"
    await r(p.EPISODE_READ, Walk("GET", f"/v1/missing-episodes/{eid}", episode, real=eid))
    await r(
        p.EPISODE_RETURN,
        Walk(
            "POST",
            f"/v1/missing-episodes/{eid}/return",
            episode,
            lambda: {"returned_at": now()},
            eid,
            episode_view,
        ),
    )
    # Returned, the episode waits for its interview: listed for the providers the home
    # authority commissions and the coordinators who serve it, and for no one else.
    returned = Walk("GET", "/v1/missing-episodes", Target(), params={"status": "returned"})

    async def listed(caller: Caller) -> bool:
        async with referrals.http(caller.credential) as http:
            resp = await http.get("/v1/missing-episodes", params={"status": "returned"})
        assert resp.status_code == 200, resp.text
        return eid in [e["episode_id"] for e in resp.json()["items"]]

    home_provider = next(c for c in everyone if c.actor is Actor.provider and c.where == "home")
    await eventually(lambda: listed(home_provider), what="the returned episode in the list")
    await r(p.EPISODES_RETURNED, returned)
    for c in everyone:
        if p.EPISODES_RETURNED.scope(c.principal) is not None:
            assert await listed(c) == (c.where == "home"), f"{c} and the returned episode"
    rhi = {"outcome": "completed", "offered_at": now()}
    await r(
        p.EPISODE_RHI,
        Walk("POST", f"/v1/missing-episodes/{eid}/rhi", episode, lambda: rhi, eid, episode_view),
    )
    await r(p.DIRECTORY_READ, Walk("GET", "/v1/agencies", Target()))
    await r(p.AGENCY_READ, Walk("GET", f"/v1/agencies/{home}", Target()))
    await r(p.CASES_WHO, Walk("GET", "/v1/cases/who", Target(), params={"id": rid}))
    # Who a credential belongs to (here the partner's own key): the MSET services only.
    await r(
        p.INTROSPECT,
        Walk("POST", "/v1/auth/introspect", Target(), lambda: {"credential": home_key}),
    )
    await r(
        p.REPORTS_READ,
        Walk("GET", "/v1/reports/referrals", Target(), params={"authority": la}),
    )
    await r(
        p.BOARD_PACK_READ,
        Walk("GET", "/v1/reports/board-pack.pdf", Target(), params={"authority": la}),
    )
    # The ops dashboard's counts: the ops role's, whatever authority it serves.
    await r(p.CASE_AGGREGATES_READ, Walk("GET", "/v1/aggregates/cases", Target()))
    # The information-sharing ledger and subject access: the DPO's; the services report.
    await r(p.DISCLOSURES_READ, Walk("GET", "/v1/disclosures", Target()))
    await r(p.DISCLOSURES_EXPORT, Walk("GET", "/v1/disclosures/export.csv", Target()))

    def disclosure() -> Any:
        return {
            "reporter": "notifications",
            "entries": [
                {
                    "report_id": str(uuid.uuid4()),
                    "case_id": rid,
                    "record": "event",
                    "view": "webhook",
                    "fields": ["case_id"],
                    "recipient_kind": "webhook",
                    "agency_id": str(home),
                    "purpose": "case_work",
                    "at": now(),
                }
            ],
        }

    await r(
        p.DISCLOSURES_REPORT,
        Walk("POST", "/v1/disclosures", Target(), disclosure, None, count(LedgerEntry)),
    )
    await r(p.SUBJECT_ACCESS, Walk("GET", f"/v1/subject-access/{rid}", Target()))

    # The child's identity and same-child links (ADR 0028): two tools with one NHS number,
    # linked at intake; the link is in the home authority.
    named = {"name": {"given": "Walk", "family": "Through"}, "nhs_number": "9434765919"}
    async with await partner() as http:
        first = (await http.post("/v1/referrals", json=new_tool())).json()
        bodies = [new_tool(), new_tool()]
        for b in bodies:
            b["child"].update(named)
        linked = [(await http.post("/v1/referrals", json=b)).json()["referral_id"] for b in bodies]
        for x in (first["referral_id"], *linked):
            await wait_for_stage(http, x, "awaiting_pre_mset")
    with intake.store.session() as s:
        link = s.scalars(select(ChildLink)).one()
        link_id = str(link.id)
    await r(p.CHILD_IDENTITY_READ, Walk("GET", f"/v1/referrals/{rid}/child", case, real=rid))
    await r(
        p.CHILD_HISTORY_READ,
        Walk("GET", f"/v1/referrals/{rid}/child-history", case, real=rid),
    )
    await r(p.CHILD_LINKS_REVIEW, Walk("GET", "/v1/child-links/candidates", Target()))
    in_la = Target(Facts(local_authority=la, told=frozenset({la})))

    async def link_record() -> Any:
        with intake.store.session() as s:
            row = s.get(ChildLink, uuid.UUID(link_id))
            assert row is not None
            n = s.scalar(select(func.count()).select_from(ChildLinkEvent))
            return (row.status, n)

    def decision() -> Any:
        return {"reason": "Walked through the access table."}

    # linked → unlinked → linked; a rejection of a linked link is refused by its state (409).
    for rule, verb in (
        (p.CHILD_LINK_UNLINK, "unlink"),
        (p.CHILD_LINK_CONFIRM, "confirm"),
        (p.CHILD_LINK_REJECT, "reject"),
    ):
        await r(
            rule,
            Walk(
                "POST",
                f"/v1/child-links/{link_id}/{verb}",
                in_la,
                decision,
                link_id,
                link_record,
            ),
        )
    await walk_entities(referrals, intake, partner, new_tool, la)
    referrals.done(policy.RULES)

    with notifications_api(intake, database_url) as url:
        await walk_notifications(database_url, url, everyone, la)


async def walk_entities(
    referrals: Walker,
    intake: Intake,
    partner: Callable[[], Awaitable[httpx.AsyncClient]],
    new_tool: Callable[[], Any],
    la: str,
) -> None:
    """Persons and places of concern (ADR 0030): two tools of the home authority naming
    the same phone number, so a match is suggested between their mentions."""
    person = {
        "relationship": "associate",
        "description": "Adult male.",
        "identifiers": {"names": ["Walk Through"], "phones": ["07700 900999"]},
    }
    home = referrals.callers[0].principal.agency_id
    async with await partner() as http:
        for _ in range(2):
            body = new_tool()
            body["persons_of_concern"] = [person]
            rid = (await http.post("/v1/referrals", json=body)).json()["referral_id"]
            await wait_for_stage(http, rid, "awaiting_pre_mset")
    with intake.store.session() as s:
        match = s.scalars(select(EntityMatch)).one()
        match_id, entity_id = str(match.id), str(match.a_entity_id)
    r, p = referrals.row, policy
    mention = Target(Facts(local_authority=la))
    await r(p.ENTITY_READ, Walk("GET", f"/v1/entities/{entity_id}", mention, real=entity_id))
    await r(p.ENTITY_MATCHES_REVIEW, Walk("GET", "/v1/entity-matches/candidates", Target()))
    await r(
        p.ENTITY_GRAPH_READ, Walk("GET", f"/v1/entities/{entity_id}/graph", mention, real=entity_id)
    )
    await r(
        p.ENTITY_NETWORK_READ,
        Walk("GET", f"/v1/entities/{entity_id}/network.svg", mention, real=entity_id),
    )
    case = Target(Facts(agency_id=home, local_authority=la))
    await r(p.CHILD_ENTITIES_READ, Walk("GET", f"/v1/referrals/{rid}/entities", case, real=rid))
    await r(
        p.HOTSPOTS_READ,
        Walk("GET", "/v1/hotspots", Target(authority=la), params={"authority": la}),
    )
    # The meeting API's check before a review naming the person is sent: for the chairs, 204
    # where they may see it and 422 (no such person that you may see) where not.
    aimed = {"actions": [{"entity_id": entity_id, "target": "perpetrator"}]}
    await r(
        p.ENTITY_TARGETS_CHECK,
        Walk("POST", "/v1/entity-targets/check", Target(), lambda: aimed),
    )
    in_la = Target(Facts(local_authority=la, told=frozenset({la})))

    async def match_record() -> Any:
        with intake.store.session() as s:
            row = s.get(EntityMatch, uuid.UUID(match_id))
            assert row is not None
            n = s.scalar(select(func.count()).select_from(EntityMatchEvent))
            return (row.status, n)

    def decision() -> Any:
        return {"reason": "Walked through the access table."}

    async def shares() -> int:
        with intake.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(EntityShare)) or 0)

    # Shared with an authority no caller serves, so no later row's answer changes.
    elsewhere = {"to_authority": fresh_authority(), "reason": "Walked through the table."}
    await r(
        p.ENTITY_SHARE,
        Walk(
            "POST",
            f"/v1/entities/{entity_id}/share",
            mention,
            lambda: elsewhere,
            entity_id,
            shares,
        ),
    )
    # candidate → confirmed → undone; a rejection of an undone match is refused by its state.
    for rule, verb in (
        (p.ENTITY_MATCH_CONFIRM, "confirm"),
        (p.ENTITY_MATCH_UNDO, "undo"),
        (p.ENTITY_MATCH_REJECT, "reject"),
    ):
        await r(
            rule,
            Walk(
                "POST",
                f"/v1/entity-matches/{match_id}/{verb}",
                in_la,
                decision,
                match_id,
                match_record,
            ),
        )


async def walk_notifications(database_url: str, url: str, everyone: list[Caller], la: str) -> None:
    engine = make_engine(database_url)
    try:
        await _walk_notifications(NotificationsStore(engine), url, everyone, la)
    finally:
        engine.dispose()


async def _walk_notifications(
    store: NotificationsStore, url: str, everyone: list[Caller], la: str
) -> None:
    walker = Walker(url, everyone, knows_service_token=False)
    home_key, home = everyone[0].credential, everyone[0].principal.agency_id
    # An item for "the coordinator of the home authority": routed to the home coordinator.
    routed = frozenset(
        c.principal.user_id
        for c in everyone
        if c.actor is Actor.coordinator and c.where == "home" and c.principal.user_id
    )
    item_id = uuid.uuid4()
    with store.session() as s:
        s.add(
            InboxItem(
                id=item_id,
                event_id=uuid.uuid4(),
                case_id=uuid.uuid4(),
                referrer_agency_id=home,
                local_authority=la,
                kind="reassessment_overdue",
                urgency="routine",
                rule="escalate.reassessment_overdue",
                ruleset_version="v1",
                fired_rules=[],
                designation="local_authority",
                agency_ref=la,
                target_role=Role.coordinator.value,
                target_authority=la,
                created_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    item = Target(Facts(), routed_to=routed)

    async def item_record() -> Any:
        with store.session() as s:
            i = s.get(InboxItem, item_id)
            assert i is not None
            return (i.acknowledged_at, i.actioned_at, i.action_note)

    async def subscription() -> str:
        async with walker.http(home_key) as http:
            made = await http.post(
                "/v1/webhooks",
                json={"url": PUBLIC_HOOK, "event_types": ["mset.referral.escalated"]},
            )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def sub_record(sub: str) -> Snapshot:
        async def record() -> Any:
            with store.session() as s:
                w = s.get(WebhookSubscription, uuid.UUID(sub))
                return None if w is None else (w.status, w.secret_sealed, w.deleted_at)

        return record

    async def subscriptions() -> int:
        with store.session() as s:
            return int(s.scalar(select(func.count()).select_from(WebhookSubscription)) or 0)

    n, w = notifications_policy, walker.row
    await w(n.INBOX_LIST, Walk("GET", "/v1/inbox", Target()))
    await w(n.INBOX_READ, Walk("GET", f"/v1/inbox/{item_id}", item, real=str(item_id)))
    await w(
        n.INBOX_ACKNOWLEDGE,
        Walk("POST", f"/v1/inbox/{item_id}/acknowledge", item, None, str(item_id), item_record),
    )
    await w(
        n.INBOX_ACTIONED,
        Walk(
            "POST",
            f"/v1/inbox/{item_id}/actioned",
            item,
            lambda: {"note": "Called."},
            str(item_id),
            item_record,
        ),
    )
    hook = {"url": PUBLIC_HOOK, "event_types": ["mset.referral.escalated"]}
    await w(
        n.WEBHOOK_CREATE, Walk("POST", "/v1/webhooks", Target(), lambda: hook, None, subscriptions)
    )
    await w(n.WEBHOOK_LIST, Walk("GET", "/v1/webhooks", Target()))
    await w(n.CASE_RECORD, Walk("GET", f"/v1/cases/{uuid.uuid4()}/record", Target()))
    await w(n.OPERATIONS_READ, Walk("GET", "/v1/aggregates/operations", Target()))
    own = Target(Facts(agency_id=home))
    for rule, method, tail in (
        (n.WEBHOOK_READ, "GET", ""),
        (n.WEBHOOK_DELIVERIES, "GET", "/deliveries"),
        (n.WEBHOOK_RESUME, "POST", "/resume"),
        (n.WEBHOOK_ROTATE, "POST", "/rotate-secret"),
        (n.WEBHOOK_DELETE, "DELETE", ""),
    ):
        sub = await subscription()
        body: Callable[[], Any] | None = (lambda: {}) if rule is n.WEBHOOK_ROTATE else None
        await w(rule, Walk(method, f"/v1/webhooks/{sub}{tail}", own, body, sub, sub_record(sub)))
    walker.done(notifications_policy.RULES)


# --- the meeting service -----------------------------------------------------------------


@ONE_STORE
@LONG_WALK
async def test_every_actor_gets_what_the_table_says_on_the_meeting_service(panel: Panel) -> None:
    la = panel.local_authority
    everyone = callers(panel.intake, la, fresh_authority())
    walker = Walker(panel.url, everyone, knows_service_token=False)
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    mid, item = await one_item_meeting(panel, MeetingKind.pre_mset)
    meeting = Target(Facts(local_authority=la))
    rid = str(item["referral_id"])
    assert case.id.endswith(rid)

    def meeting_record() -> Snapshot:
        async def record() -> Any:
            with panel.store.session() as s:
                m = s.get(Meeting, uuid.UUID(mid))
                assert m is not None
                return (m.status, m.agenda_built_at)

        return record

    async def agenda_record() -> Any:
        async with panel.http("coordinator") as http:
            a = (await http.get(f"/v1/meetings/{mid}/agenda")).json()
            m = (await http.get(f"/v1/meetings/{mid}")).json()
        return (
            a["built_at"],
            [i.get("decision") for i in a["items"]],
            m["attendance"],
            m["status"],
        )

    async def meetings() -> int:
        with panel.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(Meeting)) or 0)

    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    decision = {"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"}
    m, w = meeting_policy.RULES, walker.row
    by_route = {r.route: r for r in m}

    async def row(route: str, walk: Walk) -> None:
        await w(by_route[route], walk)

    await row("GET /v1/meetings", Walk("GET", "/v1/meetings", Target()))
    await row("GET /v1/meetings/{id}", Walk("GET", f"/v1/meetings/{mid}", meeting, real=mid))
    await row(
        "GET /v1/meetings/{id}/agenda", Walk("GET", f"/v1/meetings/{mid}/agenda", meeting, real=mid)
    )
    await row(
        "GET /v1/meetings/{id}/minutes.md",
        Walk("GET", f"/v1/meetings/{mid}/minutes.md", meeting, real=mid),
    )
    await row(
        "GET /v1/meetings/{id}/minutes.pdf",
        Walk("GET", f"/v1/meetings/{mid}/minutes.pdf", meeting, real=mid),
    )
    await row(
        "POST /v1/meetings",
        Walk(
            "POST",
            "/v1/meetings",
            Target(authority=la),
            lambda: {"kind": "lmaps", "local_authority": la, "held_at": soon},
            None,
            meetings,
        ),
    )
    await row(
        "POST /v1/meetings/{id}/agenda/refresh",
        Walk("POST", f"/v1/meetings/{mid}/agenda/refresh", meeting, None, mid, agenda_record),
    )
    await row(
        "PUT /v1/meetings/{id}/attendance",
        Walk(
            "PUT", f"/v1/meetings/{mid}/attendance", meeting, attendance_example, mid, agenda_record
        ),
    )
    [item] = (await panel.agenda(mid))["items"]  # redrawn: the item's id is new
    await row(
        "POST /v1/meetings/{id}/items/{item_id}/decision",
        Walk(
            "POST",
            f"/v1/meetings/{mid}/items/{item['item_id']}/decision",
            meeting,
            lambda: decision,
            mid,
            agenda_record,
        ),
    )
    await row(
        "POST /v1/meetings/{id}/cases/{referral_id}/decision",
        Walk(
            "POST",
            f"/v1/meetings/{mid}/cases/{rid}/decision",
            meeting,
            lambda: decision,
            mid,
            agenda_record,
        ),
    )
    await row("GET /v1/schedules", Walk("GET", "/v1/schedules", Target()))
    await row(
        "POST /v1/schedules/{local_authority}/{kind}/trigger",
        # Refused before the schedule is touched; the allowed coordinator's meeting is called
        # by the schedule's worker, later.
        Walk("POST", f"/v1/schedules/{la}/mset/trigger", Target(authority=la)),
    )
    await row(
        "GET /v1/reports/attendance",
        Walk("GET", "/v1/reports/attendance", Target(), params={"local_authority": la}),
    )
    # The MSET services' routes: the board reports' counts and a subject access export.
    year = {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}
    await row(
        "GET /v1/aggregates/attendance",
        Walk("GET", "/v1/aggregates/attendance", Target(), params={"local_authority": la, **year}),
    )
    await row(
        "GET /v1/cases/{case_id}/record",
        Walk("GET", f"/v1/cases/{rid}/record", Target()),
    )
    await row(
        "POST /v1/meetings/{id}/close",
        Walk(
            "POST",
            f"/v1/meetings/{mid}/close",
            meeting,
            lambda: {"carry_over": True},
            mid,
            meeting_record(),
        ),
    )
    walker.done(meeting_policy.RULES)
