"""The settings every MSET process shares, and how each is named in the environment.

A service's own settings derive from ``ServiceSettings`` and carry the service's prefix
(``MSET_MEETING_``). A shared setting is read from the service's own name first, then from
the name every service shares: ``MSET_TRIAGE_TEMPORAL_ADDRESS``, else
``MSET_TEMPORAL_ADDRESS``; ``MSET_MEETING_DATABASE_URL``, else ``DATABASE_URL``. Settings
are read once, when the class is created at start-up, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mset_contract.types import DEFAULT_AUTHORITIES, LocalAuthorityCode
from mset_platform.codec import DEV_KEY, DEV_KEY_ID, DEV_KEYRING, Keyring
from mset_platform.egress import AllowList

Environment = Literal["development", "test", "production"]

# The same development token in every service, so a local stack works unconfigured.
DEV_SERVICE_TOKEN = "dev-service-token-not-for-production"  # noqa: S105 - refused in production

# A setting's name shared by every service that has it (after its own, prefixed, name).
SHARED_NAMES = {
    "environment": "MSET_ENVIRONMENT",
    "temporal_address": "MSET_TEMPORAL_ADDRESS",
    "temporal_namespace": "MSET_TEMPORAL_NAMESPACE",
    "database_url": "DATABASE_URL",
    "referral_url": "MSET_REFERRAL_URL",
    "triage_url": "MSET_TRIAGE_URL",
    "meeting_url": "MSET_MEETING_URL",
    "notifications_url": "MSET_NOTIFICATIONS_URL",
    "service_token": "MSET_SERVICE_TOKEN",
    "broker": "MSET_BROKER",
    "authorities": "MSET_AUTHORITIES",
    # Temporal over TLS (a secured cluster, or Temporal Cloud with mTLS).
    "temporal_tls": "MSET_TEMPORAL_TLS",
    "temporal_tls_client_cert": "MSET_TEMPORAL_TLS_CLIENT_CERT",
    "temporal_tls_client_key": "MSET_TEMPORAL_TLS_CLIENT_KEY",
    "temporal_tls_server_ca": "MSET_TEMPORAL_TLS_SERVER_CA",
    "temporal_tls_server_name": "MSET_TEMPORAL_TLS_SERVER_NAME",
    # Kafka security (KafkaClientSettings).
    "kafka_security_protocol": "MSET_KAFKA_SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": "MSET_KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "MSET_KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "MSET_KAFKA_SASL_PASSWORD",
    "kafka_ssl_cafile": "MSET_KAFKA_SSL_CAFILE",
    "kafka_ssl_certfile": "MSET_KAFKA_SSL_CERTFILE",
    "kafka_ssl_keyfile": "MSET_KAFKA_SSL_KEYFILE",
    # Traces (mset_platform.tracing): OpenTelemetry's own name for the collector's address.
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "codec_key_file": "MSET_CODEC_KEY_FILE",
    "codec_keys": "MSET_CODEC_KEYS",
    "codec_key_id": "MSET_CODEC_KEY_ID",
    # The retention policy (RetentionSettings): one policy for the partnership.
    "retention_keep_until_age": "MSET_RETENTION_KEEP_UNTIL_AGE",
    "retention_years_after_closure": "MSET_RETENTION_YEARS_AFTER_CLOSURE",
    "retention_schedule": "MSET_RETENTION_SCHEDULE",
    "retention_sweep_hour": "MSET_RETENTION_SWEEP_HOUR",
    "retention_timezone": "MSET_RETENTION_TIMEZONE",
}


class _SharedNames(PydanticBaseSettingsSource):
    """The shared names in ``SHARED_NAMES``, for the fields this settings class has."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items()}
        return {
            field: env[name]
            for field, name in SHARED_NAMES.items()
            if field in self.settings_cls.model_fields and name in env
        }


class ServiceSettings(BaseSettings):
    """What every MSET process reads: where it runs, its Temporal server, and the keys its
    Temporal payloads are encrypted with (``mset_platform.codec``)."""

    model_config = SettingsConfigDict(extra="ignore")

    # Production unless said otherwise: a process started without MSET_ENVIRONMENT refuses
    # every development secret. `make dev` (deploy/stack.py) says development explicitly.
    environment: Environment = "production"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # A worker's metrics (docs/metrics.md): its domain counters and process metrics
    # (prometheus-client) and the Temporal SDK's own metrics (the SDK's exporter), each on a
    # port of its own; None: not served. An API serves its metrics at /metrics on its port.
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_sdk_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Where spans are exported (OTLP over HTTP, the collector's base URL, e.g.
    # http://otel-collector:4318; /v1/traces is added). None: traces stay in the process
    # (trace ids still reach the logs and travel with events), nothing is exported.
    otlp_endpoint: str | None = None
    # TLS to Temporal: on when ``temporal_tls`` is true or any of the files below is set.
    # Mutual TLS presents the client certificate and key (both or neither); the server's CA
    # (PEM) is needed when the server's certificate is not signed by a public CA, and the
    # server name when the address is not a name on the certificate (a Service's cluster
    # name in front of a cluster whose certificate names something else). Files are paths
    # (a mounted Secret), read when the client connects, never copied into the environment.
    temporal_tls: bool = False
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    temporal_tls_server_ca: Path | None = None
    temporal_tls_server_name: str | None = None

    # The payload keyring: a JSON key file ({"current": id, "keys": {id: base64}}), or the
    # keys themselves (``<id>=<base64>,...``). ``codec_key_id`` names the key that encrypts
    # now when the file or the list does not (or overrides it). None of these set: the
    # built-in development key, in development only; anywhere else the process refuses.
    codec_key_file: Path | None = None
    codec_keys: SecretStr | None = None
    codec_key_id: str | None = None
    # False only for a process that never reads or writes a payload (a migration, the
    # search-attribute Job): it starts without keys, and any payload it meets is refused.
    payload_keys_required: ClassVar[bool] = True
    _keyring: Keyring | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier wins: arguments, the service's own names, then the shared names.
        return (
            init_settings,
            env_settings,
            _SharedNames(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    def development_secrets(self) -> dict[str, tuple[str, str]]:
        """Each secret this service holds: its variable's name → (value, development value)."""
        return {}

    @property
    def temporal_tls_enabled(self) -> bool:
        return self.temporal_tls or any(
            v is not None
            for v in (
                self.temporal_tls_client_cert,
                self.temporal_tls_client_key,
                self.temporal_tls_server_ca,
                self.temporal_tls_server_name,
            )
        )

    @model_validator(mode="after")
    def _client_cert_with_its_key(self) -> Self:
        if (self.temporal_tls_client_cert is None) != (self.temporal_tls_client_key is None):
            raise ValueError(
                "temporal_tls_client_cert and temporal_tls_client_key go together: "
                "set both for mutual TLS, or neither"
            )
        return self

    def codec_keyring(self) -> Keyring | None:
        """The payload keys, read (and checked) when the settings were created; None for a
        process that needs none and was given none."""
        return self._keyring

    @model_validator(mode="after")
    def _payload_keys(self) -> Self:
        # Fail closed: outside development a process with no keys of its own refuses to start
        # rather than writing history that anyone with access to Temporal could read, or that
        # every development machine could decrypt (the built-in key, refused in production).
        production = self.environment == "production"
        if self.codec_key_file is not None and self.codec_keys is not None:
            raise ValueError("set MSET_CODEC_KEY_FILE or MSET_CODEC_KEYS, not both")
        if self.codec_key_file is not None:
            ring = Keyring.from_file(self.codec_key_file)
        elif self.codec_keys is not None:
            ring = Keyring.from_env(self.codec_keys.get_secret_value(), self.codec_key_id)
        elif not self.payload_keys_required:
            return self
        elif self.environment != "development":
            raise ValueError(
                "payload encryption keys are not set: MSET_CODEC_KEY_FILE (or MSET_CODEC_KEYS) "
                f"must be set outside development (MSET_ENVIRONMENT is {self.environment})"
            )
        else:
            ring = DEV_KEYRING
        if self.codec_key_id is not None and self.codec_key_id != ring.current:
            ring = Keyring(current=self.codec_key_id, keys=ring.keys)
        if production and (DEV_KEY_ID in ring.keys or DEV_KEY in ring.keys.values()):
            raise ValueError("the built-in development payload key must not be used in production")
        self._keyring = ring
        return self

    @model_validator(mode="after")
    def _no_development_secret_in_production(self) -> Self:
        if self.environment == "production":
            for name, (value, development) in self.development_secrets().items():
                if value == development:
                    raise ValueError(f"{name} must be set to a secret in production")
        return self


class ApiSettings(ServiceSettings):
    """A service with an HTTP API: where it listens, and the largest body it accepts."""

    host: str = "127.0.0.1"
    port: int
    max_body_bytes: int = 256 * 1024


class DatabaseSettings(ServiceSettings):
    """A service that owns tables: a SQLite file by default (each service names its own);
    PostgreSQL when ``DATABASE_URL`` (or the service's prefixed name) says so."""

    database_url: str
    # Bring the tables to the latest migration at start-up (API, worker and tools alike).
    auto_migrate: bool = True


class ServiceTokenSettings(ServiceSettings):
    """A service that holds the token MSET services call each other with."""

    # SecretStr: kept out of reprs and logs.
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)

    def development_secrets(self) -> dict[str, tuple[str, str]]:
        token = self.service_token.get_secret_value()
        return {**super().development_secrets(), "MSET_SERVICE_TOKEN": (token, DEV_SERVICE_TOKEN)}

    @model_validator(mode="after")
    def _long_enough(self) -> Self:
        if len(self.service_token.get_secret_value()) < 16:
            raise ValueError("the service token must be at least 16 characters")
        return self

    @model_validator(mode="after")
    def _no_development_token_outside_development(self) -> Self:
        # The development token is in this repository, so anyone can present it: only a
        # development machine may accept it (a test harness sets a token of its own).
        if (
            self.environment != "development"
            and self.service_token.get_secret_value() == DEV_SERVICE_TOKEN
        ):
            raise ValueError(
                "MSET_SERVICE_TOKEN must be set to a secret of your own: the development "
                f"token is accepted in development only (MSET_ENVIRONMENT is {self.environment})"
            )
        return self


class IdentityClientSettings(ServiceTokenSettings):
    """A service whose callers are resolved by the referral service, which owns identity
    (``POST /v1/auth/introspect``, which answers the MSET services only: the service token)."""

    referral_url: str = "http://127.0.0.1:8000"
    # How long an introspection answer is reused before the referral service is asked again.
    introspect_ttl_seconds: float = 30.0


class EgressSettings(ServiceSettings):
    """A service that sends requests to URLs its callers give it (partner webhooks). Those
    requests reach public addresses only (mset_platform/egress.py). ``egress_allow`` names
    the exceptions an operator vouches for, a partner's private endpoint: networks (CIDR, or
    one address) and host names, comma separated (``MSET_NOTIFICATIONS_EGRESS_ALLOW=
    10.20.0.0/16,hooks.partner.internal``). Checked at start-up: an entry that is neither a
    network nor a host name stops the service."""

    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    _egress_allow: AllowList = PrivateAttr(default_factory=AllowList)

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _egress_comma_separated(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [a.strip() for a in v.split(",") if a.strip()]
        return v

    @model_validator(mode="after")
    def _egress_allow_list(self) -> Self:
        self._egress_allow = AllowList.parse(self.egress_allow)
        return self

    @property
    def egress_allow_list(self) -> AllowList:
        return self._egress_allow


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaClientSettings(ServiceSettings):
    """A service that talks to Kafka: how it authenticates and what it trusts.

    PLAINTEXT (the local broker) by default. A Strimzi cluster's TLS listener is ``SSL`` with
    the cluster CA (``ssl_cafile``), plus a client certificate and key for ``tls``
    authentication, or ``SASL_SSL`` with ``SCRAM-SHA-512`` and the KafkaUser's password.
    ``kafka_client_args`` turns these into kafka-python's keyword arguments, the same for
    every producer, consumer and admin client.
    """

    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        ssl = self.kafka_security_protocol.endswith("SSL")
        given = {
            "kafka_sasl_mechanism": self.kafka_sasl_mechanism,
            "kafka_sasl_username": self.kafka_sasl_username,
            "kafka_sasl_password": self.kafka_sasl_password,
        }
        if sasl:
            missing = [name for name, v in given.items() if v is None]
            if missing:
                raise ValueError(
                    f"kafka_security_protocol {self.kafka_security_protocol} needs "
                    + ", ".join(missing)
                )
        elif any(v is not None for v in given.values()):
            # Set but unused would send the password nowhere and the operator would not know.
            raise ValueError(
                "kafka_sasl_* are set but kafka_security_protocol is "
                f"{self.kafka_security_protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not ssl and any(f is not None for f in files):
            raise ValueError(
                "kafka_ssl_* files are set but kafka_security_protocol is "
                f"{self.kafka_security_protocol}: use SSL (or SASL_SSL)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        return self

    def kafka_client_args(self) -> dict[str, Any]:
        """kafka-python's security arguments (KafkaProducer, KafkaConsumer, KafkaAdminClient
        take the same names)."""
        args: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism is not None:
            assert self.kafka_sasl_password is not None  # checked above
            args["sasl_mechanism"] = self.kafka_sasl_mechanism
            args["sasl_plain_username"] = self.kafka_sasl_username
            args["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL"):
            # Verify the broker's certificate and name always: with no CA file, the system's.
            args["ssl_check_hostname"] = True
            for name, path in (
                ("ssl_cafile", self.kafka_ssl_cafile),
                ("ssl_certfile", self.kafka_ssl_certfile),
                ("ssl_keyfile", self.kafka_ssl_keyfile),
            ):
                if path is not None:
                    args[name] = str(path)
        return args


class RetentionSettings(ServiceSettings):
    """The retention policy (docs/retention.md, ADR 0024): a child's records are kept while
    any of their cases is open, and once all are closed until the later of the child's
    ``retention_keep_until_age`` birthday and ``retention_years_after_closure`` years after
    the last closure (or the last missing episode). Then the daily sweep (a Temporal
    Schedule, ``retention_schedule``) erases them from every store.

    The floors refuse a policy that would erase a child's records while the child is a child
    or within a year of closing: a typo must not delete a partnership's case records."""

    retention_keep_until_age: int = Field(default=25, ge=18, le=120)
    retention_years_after_closure: int = Field(default=6, ge=1, le=100)
    # Whether this process creates (or updates) the retention schedule at start; off where
    # another process does (a deployment's set-up Job), or in tests that run the sweep.
    retention_schedule: bool = True
    retention_sweep_hour: int = Field(default=2, ge=0, le=23)
    retention_timezone: str = "Europe/London"

    @property
    def retention_policy(self) -> str:
        """The policy's name, as each erasure's record names it."""
        return (
            f"later-of-age-{self.retention_keep_until_age}"
            f"-or-{self.retention_years_after_closure}y-after-closure"
        )


class AuthoritiesSettings(ServiceSettings):
    """A service that knows the partnership's local authorities. They are configuration, one
    list for every service: ``MSET_AUTHORITIES`` (comma separated), or the service's own
    prefixed name (``MSET_MEETING_AUTHORITIES``). A request naming any other authority is
    refused, naming its field (``authority_refusal``)."""

    authorities: Annotated[list[LocalAuthorityCode], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_AUTHORITIES), min_length=1
    )

    @field_validator("authorities", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [a.strip() for a in v.split(",") if a.strip()]
        return v

    @field_validator("authorities")
    @classmethod
    def _once_each(cls, v: list[str]) -> list[str]:
        # A name listed twice is a typing slip, not a second authority: a regional report's
        # rows are one per authority, and a repeated row label would stop it.
        return list(dict.fromkeys(v))


def authority_refusal(code: str, known: Collection[str]) -> str | None:
    """Why ``code`` is refused as a local authority of the partnership (the words for the
    422's field error), or None when the partnership has it."""
    if code in known:
        return None
    return f"no local authority '{code}' in this partnership: use one of {', '.join(sorted(known))}"
