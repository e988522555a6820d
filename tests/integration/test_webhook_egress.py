"""Partner webhooks cannot be aimed inside our network, and tell the partner nothing of what
their URL answered (issue 11, finding 1); their secrets are random and rotate (finding 9).

On SQLite and PostgreSQL, against a real HTTP receiver on 127.0.0.1. No DNS server is asked:
``FakeDns`` plays one (the ``lookup`` seam of the API and the dispatcher), answering what an
attacker's DNS would: a private address, a public one at subscription and a private one at
delivery (rebinding). Without ``egress_allow`` every address in the finding is refused, at
subscription (422 naming ``url``) and at delivery (nothing reaches the receiver); with it,
the receiver on 127.0.0.1 is the partner's private endpoint the operator allowed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select, update

from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType
from services.notifications.api import create_app
from services.notifications.settings import DEV_WEBHOOK_SIGNING_KEY, NotificationsSettings
from services.notifications.store import (
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhooks import WebhookDispatcher, subscription_secret, verify
from tests.support.servers import serve

PUBLIC = "93.184.215.14"  # any global address: nothing ever connects to it here
EVENT = "mset.referral.escalated"

# Every address the finding names, as a partner would write it, and what it is.
REFUSED_URLS = {
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://metadata.google.internal/computeMetadata/v1/": "private network",
    "http://127.0.0.1:6379/": "loopback",
    "http://127.0.0.1:5432/": "loopback",
    "http://[::1]/hooks": "loopback",
    "http://[::ffff:127.0.0.1]/hooks": "IPv4-mapped",
    "http://2130706433/hooks": "loopback",  # 127.0.0.1 as one number
    "http://0.0.0.0/hooks": "unspecified",
    "http://10.0.0.5/hooks": "private",
    "http://100.64.0.1/hooks": "carrier-grade NAT",
    "http://224.0.0.1/hooks": "multicast",
    "http://[fe80::1]/hooks": "link-local",
    "http://localhost:8003/v1/inbox": "private network",
    "http://metadata/computeMetadata/v1/": "single-label",
    # Names, resolved by the DNS an attacker controls:
    "http://private.partner.example/hooks": "private",
    "http://mixed.partner.example/hooks": "private",
    "http://loop.partner.example/hooks": "loopback",
}


@dataclass
class FakeDns:
    """A DNS server: a name's answers, in turn (the last one repeats), and who asked."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.answers.update(
            {
                "private.partner.example": [["10.0.0.5"]],
                "mixed.partner.example": [[PUBLIC, "192.168.1.7"]],
                "loop.partner.example": [["127.0.0.1"]],
            }
        )

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.asked.append(host)
            turns = self.answers.get(host.lower())
            if turns is None:
                if host.endswith(".example"):
                    return [PUBLIC]
                raise OSError(-2, "Name or service not known")
            return turns.pop(0) if len(turns) > 1 else turns[0]


@dataclass
class Hits:
    """A partner's endpoint: ``/hooks/<name>`` answers 204, ``/redirect/<name>`` a 307 to
    ``/hooks/<name>``, ``/fail/<name>`` a 500 with an error text; every request recorded."""

    url: str = ""
    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def at(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [g for g in self.got if g[0] == path]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Hits]:
    app = FastAPI()
    hits = Hits()

    @app.post("/{kind}/{name}")
    async def hook(kind: str, name: str, request: Request) -> Response:
        hits.got.append((request.url.path, dict(request.headers), await request.body()))
        if kind == "redirect":
            return Response(status_code=307, headers={"Location": f"{hits.url}/hooks/{name}"})
        if kind == "fail":
            return Response(status_code=500, content=b"redis: NOAUTH Authentication required")
        return Response(status_code=204)

    with serve(app) as url:
        hits.url = url
        yield hits


@dataclass
class World:
    settings: NotificationsSettings
    store: Store
    dns: FakeDns
    transport: httpx.ASGITransport
    key: str
    agency: uuid.UUID
    principals: dict[str, Principal]

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport,
            base_url="http://notifications",
            headers={"Authorization": f"Bearer {key or self.key}"},
        )

    def partner(self) -> str:
        key = f"key-{uuid.uuid4().hex}"
        self.principals[key] = Principal(
            kind="agency",
            agency_id=uuid.uuid4(),
            agency_name="b",
            agency_type=AgencyType.police,
        )
        return key

    def dispatcher(self, **settings: Any) -> WebhookDispatcher:
        s = NotificationsSettings.model_validate({**self.settings.model_dump(), **settings})
        return WebhookDispatcher(self.store, s, threading.Event(), lookup=self.dns)

    def deliver_to(self, sub_id: uuid.UUID) -> uuid.UUID:
        """A due delivery for the subscription (as the webhook consumer makes one)."""
        event = uuid.uuid4()
        now = now_utc()
        with self.store.session() as s:
            s.add(
                WebhookDelivery(
                    id=uuid.uuid4(),
                    subscription_id=sub_id,
                    event_id=event,
                    event_type=EVENT,
                    case_id=uuid.uuid4(),
                    body=f'{{"id": "{event}", "type": "{EVENT}"}}',
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return event

    def stored_subscription(self, url: str) -> uuid.UUID:
        """A subscription already in the ledger (made before the checks, or whose name
        resolved to a public address when it was made)."""
        sub = uuid.uuid4()
        with self.store.session() as s:
            s.add(
                WebhookSubscription(
                    id=sub,
                    agency_id=self.agency,
                    url=url,
                    event_types=[EVENT],
                    status="active",
                    consecutive_failures=0,
                    created_at=now_utc(),
                )
            )
        return sub

    def attempts(self, event: uuid.UUID) -> list[WebhookAttempt]:
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(WebhookAttempt)
                    .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                    .where(WebhookDelivery.event_id == event)
                    .order_by(WebhookAttempt.attempt)
                )
            )


def world_settings(database_url: str, **kw: Any) -> NotificationsSettings:
    return NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            # Plain http here, so that what refuses these URLs is their address.
            "webhook_require_https": False,
            # A local receiver in this busy process: a slow answer must not read as a failure.
            "webhook_timeout_seconds": 10,
            "webhook_backoff_seconds": 60,  # a retry waits: each tick posts one attempt
            "webhook_max_attempts": 2,
            "webhook_park_after_failures": 2,
            **kw,
        }
    )


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings = world_settings(database_url)  # no egress_allow: nothing private allowed
    principals: dict[str, Principal] = {}
    agency = uuid.uuid4()
    key = f"key-{uuid.uuid4().hex}"
    principals[key] = Principal(
        kind="agency", agency_id=agency, agency_name="a", agency_type=AgencyType.police
    )

    async def resolve(credential: str) -> Principal | None:
        return principals.get(credential)

    dns = FakeDns()
    app = create_app(settings, resolver=resolve, lookup=dns)
    async with app.router.lifespan_context(app):
        yield World(
            settings,
            app.state.store,
            dns,
            httpx.ASGITransport(app=app),
            key,
            agency,
            principals,
        )


async def subscribe(world: World, url: str, key: str | None = None) -> httpx.Response:
    async with world.http(key) as http:
        return await http.post("/v1/webhooks", json={"url": url, "event_types": [EVENT]})


# --- at subscription ---------------------------------------------------------------------


async def test_every_address_in_the_finding_is_refused_at_subscription_naming_the_url(
    world: World,
) -> None:
    for url, what in REFUSED_URLS.items():
        resp = await subscribe(world, url)
        assert resp.status_code == 422, (url, resp.text)
        (error,) = resp.json()["errors"]
        assert error["field"] == "url", url
        assert what.split()[0].lower() in error["reason"].lower(), (url, error["reason"])
    async with world.http() as http:
        assert (await http.get("/v1/webhooks")).json()["items"] == []
    # A public name is accepted (as the partner's real endpoint is).
    assert (await subscribe(world, "http://hooks.partner.example/mset")).status_code == 201


async def test_only_https_outside_development(database_url: str) -> None:
    """No override: https required in the test and production environments, not in
    development; and production refuses to start with the requirement turned off."""
    assert NotificationsSettings(environment="test", database_url=database_url).https_required
    assert not NotificationsSettings(environment="development").https_required
    with pytest.raises(ValueError, match="webhook_require_https"):
        NotificationsSettings(
            environment="production",
            webhook_signing_key="s" * 40,
            service_token="t" * 40,
            webhook_require_https=False,
        )


async def test_the_allow_list_admits_a_partners_private_endpoint_and_nothing_else(
    database_url: str,
) -> None:
    settings = world_settings(database_url, egress_allow="127.0.0.1,hooks.partner.internal")
    principals = {
        "k": Principal(
            kind="agency", agency_id=uuid.uuid4(), agency_name="a", agency_type=AgencyType.police
        )
    }

    async def resolve(credential: str) -> Principal | None:
        return principals.get(credential)

    app = create_app(settings, resolver=resolve, lookup=FakeDns())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://n",
            headers={"Authorization": "Bearer k"},
        ) as http:

            async def code(url: str) -> int:
                resp = await http.post("/v1/webhooks", json={"url": url, "event_types": [EVENT]})
                return resp.status_code

            assert await code("http://127.0.0.1:9999/hooks") == 201
            assert await code("http://hooks.partner.internal/hooks") == 201
            # Not what the allow-list names, or never reachable that way:
            assert await code("http://127.0.0.2/hooks") == 422
            assert await code("http://[::ffff:127.0.0.1]/hooks") == 422
            assert await code("http://0.0.0.0/hooks") == 422
            assert await code("http://other.partner.internal/hooks") == 422


def test_an_allow_list_entry_that_is_not_a_network_or_host_stops_the_service() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.5/8"):
        NotificationsSettings(egress_allow="10.0.0.5/8")
    with pytest.raises(ValueError, match="nor a host name"):
        NotificationsSettings(egress_allow="http://x/")


# --- at delivery -------------------------------------------------------------------------


async def test_a_name_that_resolves_to_a_private_address_at_delivery_is_not_posted_to(
    world: World, endpoint: Hits
) -> None:
    """DNS rebinding: public when the partner subscribed, 127.0.0.1 (where the receiver, and
    our own services, listen) when the delivery goes out. Nothing reaches the receiver."""
    port = urlsplit(endpoint.url).port
    world.dns.answers["rebind.partner.example"] = [[PUBLIC], ["127.0.0.1"]]
    hook = f"rebind-{uuid.uuid4().hex[:8]}"
    resp = await subscribe(world, f"http://rebind.partner.example:{port}/hooks/{hook}")
    assert resp.status_code == 201, resp.text
    event = world.deliver_to(uuid.UUID(resp.json()["id"]))

    dispatcher = world.dispatcher()
    try:
        assert dispatcher.tick() == 1
    finally:
        dispatcher.client.close()
    assert endpoint.at(f"/hooks/{hook}") == []
    (attempt,) = world.attempts(event)
    assert attempt.status_code is None
    assert attempt.error is not None and "127.0.0.1" in attempt.error
    assert attempt.error.startswith("refused:")  # by the guard, before any connection


async def test_every_address_in_the_finding_is_refused_at_delivery(
    world: World, endpoint: Hits
) -> None:
    """Subscriptions already stored (made before the checks): each delivery is refused
    before a connection is made; the receiver on 127.0.0.1 hears nothing."""
    port = urlsplit(endpoint.url).port
    urls = [u.replace("127.0.0.1:6379", f"127.0.0.1:{port}") for u in REFUSED_URLS]
    urls += [f"http://localhost:{port}/hooks/x", f"http://loop.partner.example:{port}/hooks/x"]
    events = {world.deliver_to(world.stored_subscription(u)): u for u in urls}
    before = len(endpoint.got)
    dispatcher = world.dispatcher()
    try:
        assert dispatcher.tick() == len(events)
    finally:
        dispatcher.client.close()
    assert len(endpoint.got) == before
    for event, url in events.items():
        (attempt,) = world.attempts(event)
        assert attempt.error is not None and attempt.error.startswith("refused:"), (url, attempt)


async def test_the_connection_goes_to_the_address_checked_keeping_the_host_name(
    world: World, endpoint: Hits
) -> None:
    """With the receiver's address allowed, a name only our DNS knows reaches it: the
    dispatcher connected to the address it checked (nothing resolved the name again: no
    real DNS knows it), asked the resolver once, and sent the name in ``Host``."""
    port = urlsplit(endpoint.url).port
    world.dns.answers["pinned.partner.example"] = [["127.0.0.1"], ["10.0.0.5"]]
    hook = f"pin-{uuid.uuid4().hex[:8]}"
    event = world.deliver_to(
        world.stored_subscription(f"http://pinned.partner.example:{port}/hooks/{hook}")
    )
    dispatcher = world.dispatcher(egress_allow=["127.0.0.1"])
    try:
        assert dispatcher.tick() == 1
    finally:
        dispatcher.client.close()
    ((_, headers, _),) = endpoint.at(f"/hooks/{hook}")
    assert headers["host"] == f"pinned.partner.example:{port}"
    assert world.dns.asked.count("pinned.partner.example") == 1
    assert [(a.status_code, a.error) for a in world.attempts(event)] == [(204, None)]


async def test_a_redirect_is_not_followed(world: World, endpoint: Hits) -> None:
    hook = f"redir-{uuid.uuid4().hex[:8]}"
    event = world.deliver_to(world.stored_subscription(f"{endpoint.url}/redirect/{hook}"))
    dispatcher = world.dispatcher(egress_allow=["127.0.0.1"])
    try:
        assert dispatcher.tick() == 1
    finally:
        dispatcher.client.close()
    assert len(endpoint.at(f"/redirect/{hook}")) == 1
    assert endpoint.at(f"/hooks/{hook}") == []  # where it pointed: never posted to
    assert [(a.status_code, a.error) for a in world.attempts(event)] == [(307, "HTTP 307")]


# --- what the subscriber sees ------------------------------------------------------------


async def test_the_subscriber_sees_only_delivered_failed_or_parked(
    world: World, endpoint: Hits
) -> None:
    """Failures of every kind (a refused address, an error answer with its text) look the
    same to the subscriber: failed, then parked. No status code, error text or timing."""
    fail = f"{endpoint.url}/fail/{uuid.uuid4().hex[:8]}"
    resp = await subscribe(world, "http://hooks.partner.example/mset")
    sub_id = uuid.UUID(resp.json()["id"])
    with world.store.session() as s:
        sub = s.get(WebhookSubscription, sub_id)
        assert sub is not None
        sub.url = fail  # as if its name now pointed at our 127.0.0.1: 500 with a body
    first = world.deliver_to(sub_id)
    dispatcher = world.dispatcher(egress_allow=["127.0.0.1"])
    try:
        assert dispatcher.tick() == 1  # 500
        with world.store.session() as s:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.event_id == first)
                .values(next_attempt_at=now_utc())
            )
        assert dispatcher.tick() == 1  # 500 again: failed, and the subscription is parked
    finally:
        dispatcher.client.close()
    held = world.deliver_to(sub_id)
    with world.store.session() as s:
        s.execute(
            update(WebhookDelivery).where(WebhookDelivery.event_id == held).values(status="held")
        )

    async with world.http() as http:
        one = (await http.get(f"/v1/webhooks/{sub_id}")).json()
        ledger = (await http.get(f"/v1/webhooks/{sub_id}/deliveries")).json()["items"]
        listed = (await http.get("/v1/webhooks")).json()["items"]
    assert one["status"] == "parked"
    by_event = {d["event_id"]: d for d in ledger}
    assert by_event[str(first)]["status"] == "failed"
    assert by_event[str(held)]["status"] == "parked"
    assert [a["outcome"] for a in by_event[str(first)]["attempt_log"]] == ["failed", "failed"]
    text = str(one) + str(ledger) + str(listed)
    assert "NOAUTH" not in text and "HTTP 500" not in text and "refused" not in text
    assert "last_error" not in one and "last_error" not in listed[0]
    for d in [*ledger, *one["recent_deliveries"]]:
        assert set(d) == {
            "id",
            "event_id",
            "event_type",
            "case_id",
            "status",
            "attempts",
            "created_at",
            "delivered_at",
            "attempt_log",
        }
        assert d["status"] in {"pending", "delivered", "failed", "parked"}
        for a in d["attempt_log"]:
            assert set(a) == {"attempt", "at", "outcome"}
    # The operator still has it all.
    assert [(a.status_code, a.error) for a in world.attempts(first)] == [
        (500, "HTTP 500"),
        (500, "HTTP 500"),
    ]


# --- secrets -----------------------------------------------------------------------------


def _signature(endpoint: Hits, path: str) -> tuple[str, bytes]:
    ((_, headers, body),) = endpoint.at(path)
    return headers["mset-signature"], body


async def test_each_secret_is_random_and_rotates_with_a_stated_overlap(
    world: World, endpoint: Hits
) -> None:
    hook = f"sec-{uuid.uuid4().hex[:8]}"
    made = [await subscribe(world, f"http://h{n}.partner.example/mset") for n in range(2)]
    subs = [m.json() for m in made]
    secrets = [s["secret"] for s in subs]
    assert secrets[0] != secrets[1] and all(s.startswith("whsec_") for s in secrets)
    for sub in subs:
        # Not what anyone holding the (public, development) signing key can recompute.
        sub_id = uuid.UUID(sub["id"])
        assert sub["secret"] != subscription_secret(DEV_WEBHOOK_SIGNING_KEY, sub_id)
        assert sub["secret"] != subscription_secret(world.settings.webhook_signing_key, sub_id)
    with world.store.session() as s:
        row = s.get(WebhookSubscription, uuid.UUID(subs[0]["id"]))
        assert row is not None and row.secret_sealed is not None
        assert secrets[0] not in row.secret_sealed and secrets[0][6:] not in row.secret_sealed

    sub_id = uuid.UUID(subs[0]["id"])
    with world.store.session() as s:
        row = s.get(WebhookSubscription, sub_id)
        assert row is not None
        row.url = f"{endpoint.url}/hooks/{hook}"
    dispatcher = world.dispatcher(egress_allow=["127.0.0.1"])

    def deliver(n: int) -> tuple[str, bytes]:
        world.deliver_to(sub_id)
        assert dispatcher.tick() == 1
        got = endpoint.at(f"/hooks/{hook}")
        assert len(got) == n
        return got[-1][1]["mset-signature"], got[-1][2]

    try:
        header, body = deliver(1)
        assert verify(secrets[0], header, body)
        assert not verify(subscription_secret(DEV_WEBHOOK_SIGNING_KEY, sub_id), header, body)

        async with world.http() as http:
            rotated = await http.post(f"/v1/webhooks/{sub_id}/rotate-secret", json={})
            stranger = await http.post(
                f"/v1/webhooks/{sub_id}/rotate-secret", json={}, headers=_auth(world.partner())
            )
        assert rotated.status_code == 200, rotated.text
        assert stranger.status_code == 404
        second = rotated.json()["secret"]
        until = datetime.fromisoformat(rotated.json()["previous_secret_valid_until"])
        assert 23 * 3600 < (until - datetime.now(UTC)).total_seconds() <= 24 * 3600
        header, body = deliver(2)
        assert header.count("v1=") == 2  # the new secret's signature and the previous one's
        assert verify(second, header, body) and verify(secrets[0], header, body)

        async with world.http() as http:
            leaked = await http.post(
                f"/v1/webhooks/{sub_id}/rotate-secret", json={"keep_previous_seconds": 0}
            )
            bad = await http.post(
                f"/v1/webhooks/{sub_id}/rotate-secret", json={"keep_previous_seconds": -1}
            )
            shown = (await http.get(f"/v1/webhooks/{sub_id}")).json()
        assert leaked.status_code == 200 and leaked.json()["previous_secret_valid_until"] is None
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "keep_previous_seconds"
        assert shown["secret_rotated_at"] is not None and "secret" not in shown
        third = leaked.json()["secret"]
        header, body = deliver(3)
        assert header.count("v1=") == 1
        assert verify(third, header, body)
        assert not verify(second, header, body) and not verify(secrets[0], header, body)
    finally:
        dispatcher.client.close()


async def test_a_subscription_from_before_random_secrets_keeps_its_secret_until_rotated(
    world: World, endpoint: Hits
) -> None:
    hook = f"old-{uuid.uuid4().hex[:8]}"
    sub_id = world.stored_subscription(f"{endpoint.url}/hooks/{hook}")  # no sealed secret
    old = subscription_secret(world.settings.webhook_signing_key, sub_id)
    dispatcher = world.dispatcher(egress_allow=["127.0.0.1"])
    try:
        world.deliver_to(sub_id)
        assert dispatcher.tick() == 1
        header, body = _signature(endpoint, f"/hooks/{hook}")
        assert verify(old, header, body)
        async with world.http() as http:
            resp = await http.post(f"/v1/webhooks/{sub_id}/rotate-secret", json={})
        assert resp.status_code == 200, resp.text
        world.deliver_to(sub_id)
        assert dispatcher.tick() == 1
        _, headers, body = endpoint.at(f"/hooks/{hook}")[-1]
        assert verify(resp.json()["secret"], headers["mset-signature"], body)
        assert verify(old, headers["mset-signature"], body)  # during the overlap
    finally:
        dispatcher.client.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
