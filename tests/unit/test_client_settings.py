"""Settings become the right client arguments: Temporal's TLS, Kafka's security, the
database URL (issue 12, item 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client, TLSConfig

import services.notifications.broker as broker_module
from mset_platform.db import with_driver
from mset_platform.temporal import connect, tls_config
from services.notifications.broker import Broker
from services.notifications.settings import NotificationsSettings
from workflows.worker import WorkflowWorkerSettings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(__import__("os").environ):
        if name.startswith("MSET_"):
            monkeypatch.delenv(name)
    # A development machine's (production, the default, would want real keys and secrets).
    monkeypatch.setenv("MSET_ENVIRONMENT", "development")
    return monkeypatch


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name in ("tls.crt", "tls.key", "ca.crt"):
        path = tmp_path / name
        path.write_bytes(f"-----BEGIN {name}-----\n".encode())
        files[name] = path
    return files


def test_temporal_is_plain_grpc_unless_tls_is_configured(clean_env: pytest.MonkeyPatch) -> None:
    assert tls_config(WorkflowWorkerSettings()) is False


def test_mutual_tls_reads_the_files_the_shared_names_point_at(
    clean_env: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    clean_env.setenv("MSET_TEMPORAL_TLS_CLIENT_CERT", str(pem_files["tls.crt"]))
    clean_env.setenv("MSET_TEMPORAL_TLS_CLIENT_KEY", str(pem_files["tls.key"]))
    clean_env.setenv("MSET_TEMPORAL_TLS_SERVER_CA", str(pem_files["ca.crt"]))
    clean_env.setenv("MSET_TEMPORAL_TLS_SERVER_NAME", "temporal-frontend")
    tls = tls_config(WorkflowWorkerSettings())
    assert tls == TLSConfig(
        server_root_ca_cert=b"-----BEGIN ca.crt-----\n",
        domain="temporal-frontend",
        client_cert=b"-----BEGIN tls.crt-----\n",
        client_private_key=b"-----BEGIN tls.key-----\n",
    )


def test_tls_without_files_uses_the_system_roots(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MSET_TEMPORAL_TLS", "true")
    assert tls_config(WorkflowWorkerSettings()) == TLSConfig()


def test_a_client_certificate_without_its_key_is_refused(
    clean_env: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    with pytest.raises(ValidationError, match="temporal_tls_client_key go together"):
        WorkflowWorkerSettings(temporal_tls_client_cert=pem_files["tls.crt"])


async def test_connect_hands_the_tls_settings_to_the_client(
    clean_env: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    seen: dict[str, Any] = {}

    async def fake_connect(target: str, **kwargs: Any) -> str:
        seen.update(kwargs, target=target)
        return "client"

    clean_env.setattr(Client, "connect", fake_connect)
    settings = WorkflowWorkerSettings(
        temporal_address="temporal-frontend.temporal.svc:7233",
        temporal_namespace="mset",
        temporal_tls_server_ca=pem_files["ca.crt"],
    )
    await connect(settings)
    assert seen["target"] == "temporal-frontend.temporal.svc:7233"
    assert seen["namespace"] == "mset"
    assert seen["tls"] == TLSConfig(server_root_ca_cert=b"-----BEGIN ca.crt-----\n")


def test_kafka_is_plaintext_by_default(clean_env: pytest.MonkeyPatch) -> None:
    assert NotificationsSettings().kafka_client_args() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_kafka_python_its_mechanism_credentials_and_ca(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("MSET_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    clean_env.setenv("MSET_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    clean_env.setenv("MSET_KAFKA_SASL_USERNAME", "mset-notifications")
    clean_env.setenv("MSET_KAFKA_SASL_PASSWORD", "from-the-kafkauser-secret")
    clean_env.setenv("MSET_KAFKA_SSL_CAFILE", "/etc/mset/kafka-ca/ca.crt")
    settings = NotificationsSettings()
    assert "from-the-kafkauser-secret" not in repr(settings)
    assert settings.kafka_client_args() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "mset-notifications",
        "sasl_plain_password": "from-the-kafkauser-secret",
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/mset/kafka-ca/ca.crt",
    }


def test_tls_client_authentication_passes_the_certificate_and_key(
    clean_env: pytest.MonkeyPatch,
) -> None:
    settings = NotificationsSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=Path("/ca.crt"),
        kafka_ssl_certfile=Path("/user.crt"),
        kafka_ssl_keyfile=Path("/user.key"),
    )
    assert settings.kafka_client_args() == {
        "security_protocol": "SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": "/ca.crt",
        "ssl_certfile": "/user.crt",
        "ssl_keyfile": "/user.key",
    }


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs kafka_sasl_mechanism"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
            },
            "needs kafka_sasl_password",
        ),
        ({"kafka_sasl_username": "u"}, "kafka_security_protocol is PLAINTEXT"),
        ({"kafka_ssl_cafile": Path("/ca.crt")}, "kafka_ssl_\\* files are set"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": Path("/u.crt")},
            "kafka_ssl_keyfile go together",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
    ],
)
def test_inconsistent_kafka_security_is_refused_at_start_up(
    clean_env: pytest.MonkeyPatch, given: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        NotificationsSettings(**given)


def test_every_kafka_client_the_broker_makes_gets_the_security_arguments(
    clean_env: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[str, dict[str, Any]]] = []

    def fake(kind: str) -> Any:
        def build(**kwargs: Any) -> Any:
            made.append((kind, kwargs))
            return type(kind, (), {"subscribe": lambda self, topics: None})()

        return build

    clean_env.setattr(broker_module, "require_reachable", lambda *a: None)
    for kind in ("KafkaProducer", "KafkaConsumer", "KafkaAdminClient"):
        clean_env.setattr(broker_module, kind, fake(kind))
    settings = NotificationsSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="mset-notifications",
        kafka_sasl_password="pw",
    )
    broker = Broker(settings)
    broker.producer()
    broker.consumer("inbox")
    broker._admin_client()
    assert [k for k, _ in made] == ["KafkaProducer", "KafkaConsumer", "KafkaAdminClient"]
    for _, kwargs in made:
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_password"] == "pw"


@pytest.mark.parametrize(
    ("url", "engine_url"),
    [
        ("postgresql://app:pw@mset-postgres-rw:5432/mset", "postgresql+psycopg://app:pw@mset-postgres-rw:5432/mset"),
        ("postgres://app:pw@h/mset", "postgresql+psycopg://app:pw@h/mset"),
        ("postgresql+psycopg://app@h/mset", "postgresql+psycopg://app@h/mset"),
        ("sqlite:///data/referral.db", "sqlite:///data/referral.db"),
    ],
)  # fmt: skip
def test_a_database_url_without_a_driver_gets_the_one_we_ship(url: str, engine_url: str) -> None:
    # CloudNativePG's "<cluster>-app" Secret holds postgresql://..., which SQLAlchemy would
    # otherwise open with psycopg2 (not installed).
    assert with_driver(url) == engine_url
