"""Notifications service settings: read once at start-up and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mset_contract.events import DEAD_LETTER_TOPIC, EVENTS_TOPIC
from mset_contract.temporal import NOTIFICATIONS_TASK_QUEUE
from mset_contract.triage import Urgency
from mset_contract.vocab import Role

DEV_WEBHOOK_SIGNING_KEY = "dev-webhook-signing-key-not-for-production"

# Who an unacknowledged urgent item goes to next (DESIGN.md §5: "high risk → manager and MSET
# chair at once"; nobody above the chair). A role missing here is the top of its line.
DEFAULT_LADDER: dict[Role, Role] = {
    Role.provider: Role.manager,
    Role.panel_member: Role.coordinator,
    Role.coordinator: Role.chair,
    Role.manager: Role.chair,
}


class NotificationsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_NOTIFICATIONS_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("MSET_ENVIRONMENT", "environment")
    )
    host: str = "127.0.0.1"
    port: int = 8003
    # Where inbox links in e-mails point: the address staff reach this API at.
    public_base_url: str = "http://127.0.0.1:8003"
    database_url: str = Field(
        default="sqlite:///data/notifications.db",
        validation_alias=AliasChoices(
            "MSET_NOTIFICATIONS_DATABASE_URL", "DATABASE_URL", "database_url"
        ),
    )
    auto_migrate: bool = True
    max_body_bytes: int = 64 * 1024
    # Who a credential belongs to is the referral service's answer (POST /v1/auth/introspect).
    referral_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("MSET_REFERRAL_URL", "referral_url"),
    )
    introspect_ttl_seconds: float = 30.0

    # Temporal: the publish activity and re-escalation timers run on this task queue.
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("MSET_TEMPORAL_ADDRESS", "temporal_address"),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("MSET_TEMPORAL_NAMESPACE", "temporal_namespace"),
    )
    task_queue: str = NOTIFICATIONS_TASK_QUEUE

    # Kafka. Tansu answers JoinGroup after half the session timeout (DESIGN.md §3): keep the
    # session short locally so a consumer starts in about 3 s, not 22 s.
    broker: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("MSET_BROKER", "broker")
    )
    events_topic: str = EVENTS_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    topic_partitions: int = Field(default=6, ge=1, le=256)
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
    # The producer gives up within these bounds and the activity fails; Temporal retries it.
    producer_delivery_timeout_ms: int = 20_000
    producer_request_timeout_ms: int = 10_000
    producer_max_block_ms: int = 10_000

    # Escalation inbox: an urgent item nobody acknowledges goes up the line.
    reescalate_urgencies: set[Urgency] = {Urgency.immediate}
    reescalate_after_seconds: float = Field(default=30 * 60, gt=0)
    reescalation_ladder: dict[Role, Role] = Field(default_factory=lambda: dict(DEFAULT_LADDER))

    # Partner webhooks.
    webhook_signing_key: str = DEV_WEBHOOK_SIGNING_KEY
    webhook_require_https: bool | None = None  # None: required in production only
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

    # Outbox dispatchers (webhooks, e-mail): how often they look for due work.
    dispatch_poll_seconds: float = Field(default=0.25, gt=0)

    @property
    def https_required(self) -> bool:
        if self.webhook_require_https is None:
            return self.environment == "production"
        return self.webhook_require_https

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> NotificationsSettings:
        if self.environment == "production" and (
            self.webhook_signing_key == DEV_WEBHOOK_SIGNING_KEY
        ):
            raise ValueError(
                "MSET_NOTIFICATIONS_WEBHOOK_SIGNING_KEY must be set to a secret in production"
            )
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self
