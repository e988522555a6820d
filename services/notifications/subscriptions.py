"""Partner webhook subscriptions: create (the secret is shown once), list with the delivery
ledger, resume a parked one, delete. Only an agency's own system (its API key) manages them."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.orm import Session

from mset_contract.auth import Principal
from mset_contract.events import EVENT_TYPES
from services.notifications.domain import (
    InvalidSubscription,
    PartnerSystemsOnly,
    SubscriptionNotFound,
    TooManySubscriptions,
)
from services.notifications.schemas import (
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookList,
    WebhookPublic,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhooks import subscription_secret

RECENT_DELIVERIES = 20


def _partner(principal: Principal) -> None:
    if principal.kind != "agency":
        raise PartnerSystemsOnly(
            "webhooks belong to a partner system: use your agency's API key (X-API-Key)"
        )


def _public(
    sub: WebhookSubscription,
    deliveries: Sequence[WebhookDelivery] = (),
    attempts: Sequence[WebhookAttempt] = (),
) -> WebhookPublic:
    by_delivery: dict[uuid.UUID, list[WebhookAttemptPublic]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(
            WebhookAttemptPublic(
                attempt=a.attempt,
                at=a.at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
        )
    return WebhookPublic(
        id=sub.id,
        url=sub.url,
        event_types=list(sub.event_types),
        status="parked" if sub.status == "parked" else "active",
        consecutive_failures=sub.consecutive_failures,
        parked_at=sub.parked_at,
        last_error=sub.last_error,
        created_at=sub.created_at,
        recent_deliveries=[
            WebhookDeliveryPublic(
                id=d.id,
                event_id=d.event_id,
                event_type=d.event_type,
                case_id=d.case_id,
                status=d.status,  # a closed set, written by us
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                created_at=d.created_at,
                delivered_at=d.delivered_at,
                attempt_log=by_delivery.get(d.id, []),
            )
            for d in deliveries
        ],
    )


class Subscriptions:
    def __init__(self, store: Store, settings: NotificationsSettings) -> None:
        self.store = store
        self.s = settings

    def _check(self, body: WebhookCreate) -> tuple[str, list[str]]:
        url = str(body.url)
        parts = urlsplit(url)
        if self.s.https_required and parts.scheme != "https":
            raise InvalidSubscription("url", "must be an https:// URL")
        if parts.username or parts.password:
            raise InvalidSubscription("url", "must not carry credentials")
        if self.s.environment == "production":
            try:
                ip = ipaddress.ip_address(parts.hostname or "")
            except ValueError:
                ip = None
            if ip is not None and (ip.is_private or ip.is_loopback or ip.is_link_local):
                raise InvalidSubscription("url", "must not point at a private address")
        unknown = sorted(set(body.event_types) - EVENT_TYPES)
        if unknown:
            raise InvalidSubscription(
                "event_types",
                f"unknown event types: {', '.join(unknown)} (see GET /v1/event-types)",
            )
        return url, sorted(set(body.event_types))

    def create(self, principal: Principal, body: WebhookCreate) -> WebhookCreated:
        _partner(principal)
        url, types = self._check(body)
        sub = WebhookSubscription(
            id=uuid.uuid4(),
            agency_id=principal.agency_id,
            url=url,
            event_types=types,
            status="active",
            consecutive_failures=0,
            created_at=now_utc(),
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
        return WebhookCreated(
            **_public(sub).model_dump(),
            secret=subscription_secret(self.s.webhook_signing_key, sub.id),
        )

    def list(self, principal: Principal) -> WebhookList:
        _partner(principal)
        with self.store.session() as s:
            out = []
            for sub in self.store.subscriptions_of(s, principal.agency_id):
                deliveries = self.store.recent_deliveries(s, sub.id, RECENT_DELIVERIES)
                out.append(_public(sub, deliveries))
            return WebhookList(subscriptions=out)

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
        _partner(principal)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id)
            deliveries = self.store.recent_deliveries(s, sub.id, RECENT_DELIVERIES)
            attempts = self.store.attempts_of(s, [d.id for d in deliveries])
            return _public(sub, deliveries, attempts)

    def resume(self, principal: Principal, sub_id: uuid.UUID) -> WebhookPublic:
        """Un-park: held deliveries become due now."""
        _partner(principal)
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
        _partner(principal)
        with self.store.session() as s:
            sub = self._own(s, principal, sub_id, lock=True)
            sub.status = "deleted"
            sub.deleted_at = now_utc()
