"""Partner webhook subscriptions: create (the secret is shown once), list them, read the
delivery ledger page by page, rotate the secret, resume a parked one, delete. Only an
agency's own system (its API key) manages them.

A subscription's URL must be https outside development and must not name an address that is
not public, nor a name that resolves to one (mset_platform.egress; the operator's
``egress_allow`` makes exceptions). That is checked here, for a clear 422, and again at every
delivery, where it counts. The ledger shows the subscriber each delivery's state and each
attempt's outcome (delivered or failed), never what the URL answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.orm import Session

from mset_contract.auth import Principal
from mset_contract.events import EVENT_TYPES
from mset_platform.access import Rule, require
from mset_platform.codec import Keyring
from mset_platform.egress import (
    Lookup,
    host_refusal,
    parse_address,
    resolved_refusal,
    system_lookup,
)
from mset_platform.paging import PageRequest
from services.notifications.domain import (
    InvalidSubscription,
    PartnerSystemsOnly,
    SubscriptionNotFound,
    TooManySubscriptions,
)
from services.notifications.policy import (
    WEBHOOK_CREATE,
    WEBHOOK_DELETE,
    WEBHOOK_DELIVERIES,
    WEBHOOK_LIST,
    WEBHOOK_READ,
    WEBHOOK_RESUME,
    WEBHOOK_ROTATE,
)
from services.notifications.schemas import (
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookPage,
    WebhookPublic,
    WebhookSecretRotate,
    WebhookSecretRotated,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhooks import new_secret, seal_secret, subscription_secret

RECENT_DELIVERIES = 20


def _partner(principal: Principal, rule: Rule) -> None:
    """The access policy (services/notifications/policy.py): a partner system's own
    subscriptions (``_own`` narrows to its agency's)."""
    require(principal, rule, PartnerSystemsOnly)


def _delivered(a: WebhookAttempt) -> bool:
    return a.error is None and a.status_code is not None and 200 <= a.status_code < 300


def _deliveries(
    deliveries: Sequence[WebhookDelivery], attempts: Sequence[WebhookAttempt] = ()
) -> list[WebhookDeliveryPublic]:
    by_delivery: dict[uuid.UUID, list[WebhookAttemptPublic]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(
            WebhookAttemptPublic(
                attempt=a.attempt,
                # When it started: when it ended would tell how long the URL took to answer.
                at=a.at - timedelta(milliseconds=a.duration_ms),
                outcome="delivered" if _delivered(a) else "failed",
            )
        )
    return [
        WebhookDeliveryPublic(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            case_id=d.case_id,
            status="parked" if d.status == "held" else d.status,  # a closed set, ours
            attempts=d.attempts,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempt_log=by_delivery.get(d.id, []),
        )
        for d in deliveries
    ]


def _public(
    sub: WebhookSubscription,
    deliveries: Sequence[WebhookDelivery] = (),
    attempts: Sequence[WebhookAttempt] = (),
) -> WebhookPublic:
    return WebhookPublic(
        id=sub.id,
        url=sub.url,
        event_types=list(sub.event_types),
        status="parked" if sub.status == "parked" else "active",
        consecutive_failures=sub.consecutive_failures,
        parked_at=sub.parked_at,
        created_at=sub.created_at,
        secret_rotated_at=sub.secret_rotated_at,
        recent_deliveries=_deliveries(deliveries, attempts),
    )


class Subscriptions:
    def __init__(
        self, store: Store, settings: NotificationsSettings, lookup: Lookup = system_lookup
    ) -> None:
        self.store = store
        self.s = settings
        self.lookup = lookup
        keyring = settings.codec_keyring()
        if keyring is None:
            raise ValueError("webhook secrets are sealed with the payload keys: none are set")
        self.keyring: Keyring = keyring

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if self.s.https_required and parts.scheme != "https":
            raise InvalidSubscription("url", "must be an https:// URL")
        if parts.username or parts.password:
            raise InvalidSubscription("url", "must not carry credentials")
        host = parts.hostname or ""
        allow = self.s.egress_allow_list
        why = host_refusal(host, allow)
        if why is None and parse_address(host) is None:
            # A name: what it resolves to now. One that does not resolve yet is accepted;
            # every delivery resolves it again and refuses what is not public.
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                addresses = list(self.lookup(host, port))
            except OSError:
                addresses = []
            why = resolved_refusal(host, addresses, allow) if addresses else None
        if why is not None:
            raise InvalidSubscription(
                "url",
                f"{host} {why}: webhooks go to a partner's public endpoint (a private one "
                "only where the operator allows it)",
            )

    def _check(self, body: WebhookCreate) -> tuple[str, list[str]]:
        url = str(body.url)
        self._check_url(url)
        unknown = sorted(set(body.event_types) - EVENT_TYPES)
        if unknown:
            raise InvalidSubscription(
                "event_types",
                f"unknown event types: {', '.join(unknown)} (see GET /v1/event-types)",
            )
        return url, sorted(set(body.event_types))

    def create(self, principal: Principal, body: WebhookCreate) -> WebhookCreated:
        _partner(principal, WEBHOOK_CREATE)
        url, types = self._check(body)
        sub_id = uuid.uuid4()
        secret = new_secret()
        sub = WebhookSubscription(
            id=sub_id,
            agency_id=principal.agency_id,
            url=url,
            event_types=types,
            status="active",
            consecutive_failures=0,
            created_at=now_utc(),
            secret_sealed=seal_secret(self.keyring, sub_id, secret),
        )
        with self.store.session() as s:
            if (
                len(self.store.subscriptions_of(s, principal.agency_id))
                >= self.s.webhook_max_subscriptions_per_agency
            ):
                raise TooManySubscriptions(
                    f"an agency may hold {self.s.webhook_max_subscriptions_per_agency} "
                    "subscriptions; delete one first"
                )
            s.add(sub)
        return WebhookCreated(**_public(sub).model_dump(), secret=secret)

    def rotate_secret(
        self, principal: Principal, sub_id: uuid.UUID, body: WebhookSecretRotate
    ) -> WebhookSecretRotated:
        """A new random secret, shown this once. The one it replaces keeps signing too (a
        second ``v1=``) for ``keep_previous_seconds``; a secret older than that is dropped."""
        _partner(principal, WEBHOOK_ROTATE)
        keep = (
            self.s.webhook_secret_overlap_seconds
            if body.keep_previous_seconds is None
            else body.keep_previous_seconds
        )
        secret = new_secret()
        now = now_utc()
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id, lock=True)
            previous = sub.secret_sealed
            if previous is None:
                # A subscription from before random secrets: its derived secret, sealed now so
                # that it can keep signing through the overlap.
                previous = seal_secret(
                    self.keyring, sub.id, subscription_secret(self.s.webhook_signing_key, sub.id)
                )
            sub.secret_sealed = seal_secret(self.keyring, sub.id, secret)
            sub.secret_rotated_at = now
            if keep > 0:
                sub.previous_secret_sealed = previous
                sub.previous_secret_until = now + timedelta(seconds=keep)
            else:
                sub.previous_secret_sealed = None
                sub.previous_secret_until = None
            until = sub.previous_secret_until
        return WebhookSecretRotated(id=sub_id, secret=secret, previous_secret_valid_until=until)

    def list(self, principal: Principal, page: PageRequest) -> WebhookPage:
        _partner(principal, WEBHOOK_LIST)
        with self.store.session() as s:
            got = self.store.subscription_page(s, principal.agency_id, page)
            out = []
            for sub in got.rows:
                deliveries = self.store.recent_deliveries(s, sub.id, RECENT_DELIVERIES)
                out.append(_public(sub, deliveries))
            return WebhookPage(items=out, next_cursor=got.next_cursor)

    @staticmethod
    def _own(
        s: Session, principal: Principal, sub_id: uuid.UUID, lock: bool = False
    ) -> WebhookSubscription:
        sub = s.get(WebhookSubscription, sub_id, with_for_update=lock)
        if sub is None or sub.agency_id != principal.agency_id or sub.status == "deleted":
            raise SubscriptionNotFound(f"no webhook subscription {sub_id} of your agency")
        return sub

    def get(self, principal: Principal, sub_id: uuid.UUID) -> WebhookPublic:
        """One subscription with its recent deliveries and every attempt of each."""
        _partner(principal, WEBHOOK_READ)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id)
            deliveries = self.store.recent_deliveries(s, sub.id, RECENT_DELIVERIES)
            attempts = self.store.attempts_of(s, [d.id for d in deliveries])
            return _public(sub, deliveries, attempts)

    def deliveries(
        self, principal: Principal, sub_id: uuid.UUID, page: PageRequest
    ) -> WebhookDeliveryPage:
        """The subscription's whole ledger, a page at a time, each delivery's attempts too."""
        _partner(principal, WEBHOOK_DELIVERIES)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id)
            got = self.store.deliveries(s, sub.id, page)
            attempts = self.store.attempts_of(s, [d.id for d in got.rows])
            return WebhookDeliveryPage(
                items=_deliveries(got.rows, attempts), next_cursor=got.next_cursor
            )

    def resume(self, principal: Principal, sub_id: uuid.UUID) -> WebhookPublic:
        """Un-park: held deliveries become due now."""
        _partner(principal, WEBHOOK_RESUME)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id, lock=True)
            if sub.status == "parked":
                sub.status = "active"
                sub.parked_at = None
                sub.consecutive_failures = 0
                s.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.subscription_id == sub.id,
                        WebhookDelivery.status == "held",
                    )
                    .values(status="pending", next_attempt_at=now_utc())
                )
            return _public(sub)

    def delete(self, principal: Principal, sub_id: uuid.UUID) -> None:
        _partner(principal, WEBHOOK_DELETE)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id, lock=True)
            sub.status = "deleted"
            sub.deleted_at = now_utc()
