"""Signed webhook deliveries to partner systems.

Signature. Each subscription has its own secret, shown once when it is created. It is not
stored: it is derived from the service's signing key and the subscription id
(HMAC-SHA256), so a copy of the database holds no webhook secret. Each delivery carries::

    MSET-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
constant time, and refuses a timestamp older than a few minutes (replay). ``verify`` below
is the reference implementation. Other headers: ``MSET-Delivery`` (the delivery id, stable
across retries), ``MSET-Event-Id``, ``MSET-Event-Type``; the body is the event as a
CloudEvents JSON document (``application/cloudevents+json``).

Retries. A delivery that does not get a 2xx answer in time is retried with exponential
backoff up to ``webhook_max_attempts``; every attempt is a row in the ledger. A subscription
failing ``webhook_park_after_failures`` times in a row is parked: its deliveries are held
(not lost) until its owner resumes it, and the owner sees the state in ``GET /v1/webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update

from services.notifications.domain import backoff_seconds
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)

log = logging.getLogger("mset.notifications.webhooks")

SIGNATURE_HEADER = "MSET-Signature"
DELIVERY_HEADER = "MSET-Delivery"
EVENT_ID_HEADER = "MSET-Event-Id"
EVENT_TYPE_HEADER = "MSET-Event-Type"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


def subscription_secret(signing_key: str, subscription_id: uuid.UUID) -> str:
    mac = hmac.new(
        signing_key.encode("utf-8"), f"webhook/{subscription_id}".encode(), hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a partner's receiver does: True only for a fresh, correctly signed body."""
    if not header:
        return False
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        k, _, v = item.strip().partition("=")
        parts.setdefault(k, []).append(v)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_seconds:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


class WebhookDispatcher:
    """Posts due deliveries from the ledger, on its own thread, one at a time."""

    def __init__(
        self,
        store: Store,
        settings: NotificationsSettings,
        stop: threading.Event,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.s = settings
        self.stop = stop
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "mset-flow-webhooks/1"},
        )
        self.thread = threading.Thread(target=self.run, name="webhook-dispatcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    done = self.tick()
                except Exception:
                    log.exception("webhook dispatcher tick failed; retrying")
                    done = 0
                if not done:
                    self.stop.wait(self.s.dispatch_poll_seconds)
        finally:
            self.client.close()

    def tick(self) -> int:
        lease = timedelta(seconds=self.s.webhook_timeout_seconds + 30)
        claimed = self.store.claim_due_deliveries(limit=20, lease=lease)
        for delivery, sub in claimed:
            if self.stop.is_set():
                break
            self._deliver(delivery, sub)
        return len(claimed)

    def _deliver(self, delivery: WebhookDelivery, sub: WebhookSubscription) -> None:
        attempt = delivery.attempts + 1
        body = delivery.body.encode("utf-8")
        secret = subscription_secret(self.s.webhook_signing_key, sub.id)
        headers = {
            "Content-Type": "application/cloudevents+json",
            SIGNATURE_HEADER: signature_header(secret, body),
            DELIVERY_HEADER: str(delivery.id),
            EVENT_ID_HEADER: str(delivery.event_id),
            EVENT_TYPE_HEADER: delivery.event_type,
        }
        started = time.monotonic()
        code: int | None = None
        try:
            resp = self.client.post(sub.url, content=body, headers=headers)
            code = resp.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        self._record(delivery.id, sub.id, attempt, code, error, duration_ms)

    def _record(
        self,
        delivery_id: uuid.UUID,
        subscription_id: uuid.UUID,
        attempt: int,
        code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        now = now_utc()
        with self.store.session() as s:
            d = s.get(WebhookDelivery, delivery_id, with_for_update=True)
            sub = s.get(WebhookSubscription, subscription_id, with_for_update=True)
            if d is None or sub is None:
                return
            s.add(
                WebhookAttempt(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    at=now,
                    status_code=code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            d.attempts = attempt
            d.lease_until = None
            d.last_status_code = code
            d.last_error = error
            if error is None:
                d.status = "delivered"
                d.delivered_at = now
                d.next_attempt_at = None
                sub.consecutive_failures = 0
                sub.last_error = None
                return
            sub.consecutive_failures += 1
            sub.last_error = error
            if attempt >= self.s.webhook_max_attempts:
                d.status = "failed"
                d.next_attempt_at = None
            else:
                delay = backoff_seconds(
                    attempt, self.s.webhook_backoff_seconds, self.s.webhook_backoff_max_seconds
                )
                d.next_attempt_at = now + timedelta(seconds=delay)
            if (
                sub.status == "active"
                and sub.consecutive_failures >= self.s.webhook_park_after_failures
            ):
                sub.status = "parked"
                sub.parked_at = now
                s.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.subscription_id == sub.id,
                        WebhookDelivery.status == "pending",
                    )
                    .values(status="held")
                )
                log.warning(
                    "webhook subscription %s parked after %d consecutive failures",
                    sub.id,
                    sub.consecutive_failures,
                )
