"""Notifications service settings: read once at start-up and passed down."""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from mset_contract.events import DEAD_LETTER_TOPIC, EVENTS_TOPIC
from mset_contract.temporal import NOTIFICATIONS_TASK_QUEUE
from mset_contract.triage import Urgency
from mset_contract.vocab import Role
from mset_platform.settings import (
    ApiSettings,
    DatabaseSettings,
    EgressSettings,
    IdentityClientSettings,
    KafkaClientSettings,
    ServiceTokenSettings,
)

DEV_WEBHOOK_SIGNING_KEY = "dev-webhook-signing-key-not-for-production"

# Who an unacknowledged urgent item goes to next (docs/architecture.md §8: "high risk →
# manager and MSET chair at once"; nobody above the chair). A role missing here is the top of
# its line.
DEFAULT_LADDER: dict[Role, Role] = {
    Role.provider: Role.manager,
    Role.panel_member: Role.coordinator,
    Role.coordinator: Role.chair,
    Role.manager: Role.chair,
}


# The service token: the referral service asks for a case's record (subject access), and this
# service reports its disclosures to the referral service's information-sharing ledger.
class NotificationsSettings(
    ApiSettings,
    DatabaseSettings,
    IdentityClientSettings,
    KafkaClientSettings,
    EgressSettings,
    ServiceTokenSettings,
):
    model_config = SettingsConfigDict(env_prefix="MSET_NOTIFICATIONS_")

    port: int = 8003
    # Where inbox links in e-mails point: the address staff reach this API at.
    public_base_url: str = "http://127.0.0.1:8003"
    database_url: str = "sqlite:///data/notifications.db"
    max_body_bytes: int = 64 * 1024

    # Temporal: the publish activity and re-escalation timers run on this task queue.
    task_queue: str = NOTIFICATIONS_TASK_QUEUE

    # Kafka. Tansu answers JoinGroup after half the session timeout (docs/architecture.md §5):
    # keep the session short locally so a consumer starts in about 3 s, not 22 s.
    broker: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("MSET_BROKER", "broker")
    )
    events_topic: str = EVENTS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    topic_partitions: int = Field(default=6, ge=1, le=256)
    # Replicas of a topic this service creates itself (one broker locally). Where topics are
    # declared beforehand (Strimzi KafkaTopic, deploy/k8s), they exist and this is unused.
    topic_replication_factor: int = Field(default=1, ge=1, le=16)
    consumer_group_prefix: str = "mset-notifications"
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300_000
    poll_timeout_ms: int = 200
    # Tansu holds a fetch for the whole wait even when records arrive meanwhile (Apache Kafka
    # answers at once), so this wait is the consumer's latency floor: kafka-python's default
    # of 500 ms costs about 250 ms per event on average, 100 ms about 50 ms (measured).
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5000)
    max_poll_records: int = 100
    # How often a consumer compares its positions with the topic (recreated? beyond the end?).
    position_check_seconds: float = Field(default=2.0, gt=0)
    # A poll that has not returned in this long is stuck (see ConsumerLoop._watch).
    poll_stuck_seconds: float = Field(default=20.0, gt=0)
    # The event outbox: the groups that must all handle an event before it is settled (every
    # consumer of the deployment, wherever it runs), how often the relay looks, how long an
    # event the broker never acknowledged waits for its own activity's retry before the relay
    # sends it, and how long settled events are kept.
    outbox_consumer_groups: tuple[str, ...] = ("inbox", "webhooks", "email")
    outbox_relay_seconds: float = Field(default=1.0, gt=0)
    outbox_unacknowledged_after_seconds: float = Field(default=120.0, gt=0)
    outbox_keep_settled_days: float = Field(default=7.0, gt=0)
    # The producer gives up within these bounds and the activity fails; Temporal retries it.
    producer_delivery_timeout_ms: int = 20_000
    producer_request_timeout_ms: int = 10_000
    producer_max_block_ms: int = 10_000

    # Escalation inbox: an urgent item nobody acknowledges goes up the line.
    reescalate_urgencies: set[Urgency] = {Urgency.immediate}
    reescalate_after_seconds: float = Field(default=30 * 60, gt=0)
    reescalation_ladder: dict[Role, Role] = Field(default_factory=lambda: dict(DEFAULT_LADDER))

    # Partner webhooks. Each subscription's secret is random, stored sealed with the payload
    # keys (webhooks.py); the signing key only signs for subscriptions made before that (their
    # secret was derived from it) until their owner rotates the secret.
    webhook_signing_key: str = DEV_WEBHOOK_SIGNING_KEY
    # None: https required everywhere but development. A test tier whose receivers are plain
    # http on 127.0.0.1 turns it off explicitly; production refuses to start with it off.
    webhook_require_https: bool | None = None
    # After a rotation, how long deliveries are signed with the previous secret too (a second
    # v1= in MSET-Signature), unless the rotation asks for less (0: a leaked secret).
    webhook_secret_overlap_seconds: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600)
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_park_after_failures: int = Field(default=10, ge=1)
    webhook_max_subscriptions_per_agency: int = 20

    # E-mail for urgent escalations. Identity holds no e-mail addresses, so each role's
    # address (a team mailbox) is configuration; a role with no address gets no e-mail.
    email_urgencies: set[Urgency] = {Urgency.immediate}
    email_recipients: dict[Role, str] = Field(default_factory=dict)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "mset-flow@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 10.0
    email_max_attempts: int = Field(default=10, ge=1)
    email_backoff_seconds: float = Field(default=30.0, gt=0)

    # On SIGTERM the consumers read on until caught up (or this long) before stopping.
    shutdown_drain_seconds: float = Field(default=10.0, ge=0)

    # Outbox dispatchers (webhooks, e-mail): how often they look for due work.
    dispatch_poll_seconds: float = Field(default=0.25, gt=0)
    # How often disclosures noted here are relayed to the information-sharing ledger.
    disclosure_relay_seconds: float = Field(default=1.0, gt=0)

    @property
    def https_required(self) -> bool:
        if self.webhook_require_https is None:
            return self.environment != "development"
        return self.webhook_require_https

    @model_validator(mode="after")
    def _https_in_production(self) -> Self:
        if self.environment == "production" and self.webhook_require_https is False:
            raise ValueError("webhook_require_https cannot be turned off in production")
        return self

    def development_secrets(self) -> dict[str, tuple[str, str]]:
        return {
            **super().development_secrets(),
            "MSET_NOTIFICATIONS_WEBHOOK_SIGNING_KEY": (
                self.webhook_signing_key,
                DEV_WEBHOOK_SIGNING_KEY,
            ),
        }

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Self:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self
