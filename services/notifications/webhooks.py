"""Signed webhook deliveries to partner systems.

Secrets. Each subscription has its own random secret (``whsec_`` and 256 random bits), shown
once: in the answer that creates the subscription, and in the answer that rotates it
(``POST /v1/webhooks/{id}/rotate-secret``). It is stored sealed (AES-256-GCM under a key
derived from the service's payload keys, bound to the subscription's id): a copy of the
database alone holds no usable secret, and nothing public derives it. Subscriptions made
before secrets were random keep their secret, derived from ``webhook_signing_key``, until
their owner rotates it.

Signature. Each delivery carries::

    MSET-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
constant time, and refuses a timestamp older than a few minutes (replay). ``verify`` below
is the reference implementation. For a while after a rotation (24 hours unless the rotation
said otherwise; 0 for a leaked secret) the header carries a second ``v1=``, signed with the
previous secret, so a receiver still holding the old secret accepts deliveries until it is
given the new one: a receiver accepts the delivery if any ``v1`` matches. Other headers:
``MSET-Delivery`` (the delivery id: this event for this subscription), ``MSET-Event-Id``,
``MSET-Event-Type``; the body is the event as a CloudEvents JSON document
(``application/cloudevents+json``).

Where a delivery may go. Every connection is made through ``mset_platform.egress``: the
subscription's host is resolved once per connection, every address is checked (no loopback,
private, link-local, CGNAT, multicast, reserved or IPv4-mapped address, unless the operator's
``egress_allow`` names it), and the socket connects to a checked address, so a DNS answer
changed between check and connect (rebinding) is never used. Redirects are not followed (a
3xx is a failed attempt). The subscriber's ledger says only whether each attempt was
delivered or failed: the status code, error and timing stay in our database (a subscriber
who could read them could use us to scan whatever its URL reaches).

Duplicates. Delivery is at least once (docs/decisions/0018): an answer lost to a time-out, or
a worker killed between posting and recording the answer, means the same delivery is posted
again. Every attempt carries the same ``MSET-Event-Id`` (the CloudEvent's ``id``, which
CloudEvents says identifies a duplicate) and the same body: the receiver drops an event id
it has already accepted, answering 2xx. Only the signature's timestamp differs.

Retries. A delivery that does not get a 2xx answer in time is retried with exponential
backoff up to ``webhook_max_attempts``; every attempt is a row in the ledger, counted when
the delivery is claimed, just before it is posted (an attempt lost to a kill counts too). A
subscription failing ``webhook_park_after_failures`` times in a row is parked: its
deliveries are held (not lost) until its owner resumes it, and the owner sees the state in
``GET /v1/webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update

from mset_platform.codec import Keyring
from mset_platform.egress import GuardedTransport, Lookup, refused_by_guard, system_lookup
from services.notifications.disclosures import webhook_disclosed
from services.notifications.domain import backoff_seconds
from services.notifications.polling import PollingLoop
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    DeliveryClaim,
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhook_spans import answer_on_span, post_span

log = logging.getLogger("mset.notifications.webhooks")

SIGNATURE_HEADER = "MSET-Signature"
DELIVERY_HEADER = "MSET-Delivery"
EVENT_ID_HEADER = "MSET-Event-Id"
EVENT_TYPE_HEADER = "MSET-Event-Type"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300
BATCH = 20  # deliveries posted per tick at most


_SEAL_INFO = b"mset-flow webhook secret v1"
_NONCE_BYTES = 12


class SecretUnavailable(Exception):
    """A stored secret cannot be opened: its key left the keyring, or the row was altered."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _aead(keyring: Keyring, key_id: str) -> AESGCM:
    # A key of its own, derived from the payload key: the payload key itself never encrypts
    # anything but payloads.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        keyring.keys[key_id]
    )
    return AESGCM(key)


def seal_secret(keyring: Keyring, subscription_id: uuid.UUID, secret: str) -> str:
    """``<key id>:<base64 nonce + ciphertext>``, bound to the subscription (a sealed secret
    copied onto another row does not open)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(keyring, keyring.current).encrypt(
        nonce, secret.encode("utf-8"), subscription_id.bytes
    )
    return f"{keyring.current}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def open_secret(keyring: Keyring, subscription_id: uuid.UUID, sealed: str) -> str:
    key_id, _, blob = sealed.partition(":")
    if key_id not in keyring.keys:
        raise SecretUnavailable(f"sealed with key {key_id!r}, which is not in the keyring")
    raw = base64.b64decode(blob)
    try:
        plain = _aead(keyring, key_id).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], subscription_id.bytes
        )
    except InvalidTag:
        raise SecretUnavailable("the sealed secret does not authenticate") from None
    return plain.decode("utf-8")


def subscription_secret(signing_key: str, subscription_id: uuid.UUID) -> str:
    """The secret of a subscription made before secrets were random (derived, never stored).
    Only for those rows: a new subscription's secret is ``new_secret()``."""
    mac = hmac.new(
        signing_key.encode("utf-8"), f"webhook/{subscription_id}".encode(), hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()


def signature_header(secret: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """One ``v1=`` per secret (the current one first, then one in its overlap)."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    return f"t={t}," + ",".join(f"v1={signature(k, t, body)}" for k in keys)


def signing_secrets(
    sub: WebhookSubscription, keyring: Keyring, signing_key: str, now: datetime
) -> list[str]:
    """The secrets a delivery to ``sub`` is signed with now: its own, and the previous one
    while its overlap lasts."""
    if sub.secret_sealed is None:
        return [subscription_secret(signing_key, sub.id)]
    out = [open_secret(keyring, sub.id, sub.secret_sealed)]
    if (
        sub.previous_secret_sealed is not None
        and sub.previous_secret_until is not None
        and sub.previous_secret_until > now
    ):
        out.append(open_secret(keyring, sub.id, sub.previous_secret_sealed))
    return out


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


class WebhookDispatcher(PollingLoop):
    """Posts due deliveries from the ledger, on its own thread, one at a time."""

    name = "webhook-dispatcher"

    def __init__(
        self,
        store: Store,
        settings: NotificationsSettings,
        stop: threading.Event,
        lookup: Lookup = system_lookup,
    ) -> None:
        """``lookup`` resolves host names (the system resolver; a test plays DNS with it)."""
        super().__init__(stop, settings.dispatch_poll_seconds)
        self.store = store
        self.s = settings
        keyring = settings.codec_keyring()
        if keyring is None:
            raise ValueError("webhook secrets are sealed with the payload keys: none are set")
        self.keyring = keyring
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,  # a 3xx is a failed attempt: never followed
            trust_env=False,  # no proxy from the environment: it would connect unchecked
            transport=GuardedTransport(settings.egress_allow_list, lookup),
            headers={"User-Agent": "mset-flow-webhooks/1"},
        )

    def close(self) -> None:
        self.client.close()

    def tick(self) -> int:
        """Post due deliveries, claiming each just before it is posted, up to a batch."""
        lease = timedelta(seconds=self.s.webhook_timeout_seconds + 30)
        done = 0
        while done < BATCH and not self.stop.is_set():
            claim = self.store.claim_next_delivery(lease)
            if claim is None:
                break
            if claim.in_doubt:
                log.warning(
                    "webhook delivery %s: attempt %d was never recorded (its sender stopped); "
                    "posting it again, with the same event id for the receiver to drop",
                    claim.delivery.id,
                    claim.attempt - 1,
                )
            with post_span(claim):
                self._deliver(claim)
            done += 1
        return done

    def _deliver(self, claim: DeliveryClaim) -> None:
        delivery, sub = claim.delivery, claim.subscription
        body = delivery.body.encode("utf-8")
        if self.s.https_required and urlsplit(sub.url).scheme != "https":
            # Made when plain http was allowed here: not sent in the clear now.
            self._record(claim, None, "refused: not an https URL", 0)
            return
        try:
            keys = signing_secrets(sub, self.keyring, self.s.webhook_signing_key, now_utc())
        except SecretUnavailable as exc:
            log.error("webhook subscription %s: its secret cannot be opened: %s", sub.id, exc)
            self._record(claim, None, "refused: secret unavailable", 0)
            return
        headers = {
            "Content-Type": "application/cloudevents+json",
            SIGNATURE_HEADER: signature_header(keys, body),
            DELIVERY_HEADER: str(delivery.id),
            EVENT_ID_HEADER: str(delivery.event_id),
            EVENT_TYPE_HEADER: delivery.event_type,
        }
        # Noted for the information-sharing ledger before the body leaves (ADR 0023).
        self.store.note_disclosures([webhook_disclosed(delivery, sub)])
        started = time.monotonic()
        code: int | None = None
        try:
            resp = self.client.post(sub.url, content=body, headers=headers)
            code = resp.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except httpx.HTTPError as exc:
            refused = refused_by_guard(exc)
            if refused is not None:
                # Kept for the operator (ledger and log); the subscriber sees "failed".
                log.warning("webhook delivery %s refused: %s", delivery.id, refused)
                error = f"refused: {refused}"[:200]
            else:
                error = type(exc).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        self._record(claim, code, error, duration_ms)

    def _record(
        self, claim: DeliveryClaim, code: int | None, error: str | None, duration_ms: int
    ) -> None:
        answer_on_span(code, error)
        now = now_utc()
        with self.store.session() as s:
            d = s.get(WebhookDelivery, claim.delivery.id, with_for_update=True)
            sub = s.get(WebhookSubscription, claim.subscription.id, with_for_update=True)
            if d is None or sub is None:
                return
            s.add(
                WebhookAttempt(
                    delivery_id=d.id,
                    attempt=claim.attempt,
                    at=now,
                    status_code=code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            if d.claim_token != claim.token:
                # The lease ran out mid-post and another dispatcher claimed it: that claim
                # decides the delivery's state; this answer is kept in the ledger only.
                log.warning(
                    "webhook delivery %s: attempt %d answered after its lease ran out",
                    d.id,
                    claim.attempt,
                )
                return
            d.claim_token = None
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
            if claim.attempt >= self.s.webhook_max_attempts:
                d.status = "failed"
                d.next_attempt_at = None
            else:
                delay = backoff_seconds(
                    claim.attempt,
                    self.s.webhook_backoff_seconds,
                    self.s.webhook_backoff_max_seconds,
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
