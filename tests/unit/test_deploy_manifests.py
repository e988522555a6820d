"""The deployment (deploy/k8s, deploy/container) renders and is valid before anyone applies it.

Each overlay is rendered with ``kubectl kustomize`` and every object checked offline: the
built-in kinds against the Kubernetes API's JSON schemas (kubernetes-validate, pinned), the
operators' kinds (Strimzi, CloudNativePG) against deploy/k8s/schemas/crds.yaml. Then the
policy a cluster admin would check by hand: probes, resources, the restricted security
context, graceful shutdown long enough for the workers' drain, a PodDisruptionBudget and a
HorizontalPodAutoscaler for every API, no secret in the manifests, and settings that the
services accept as they would at start-up.
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from mset_contract.events.codec import DEAD_LETTER_TOPIC, EVENTS_TOPIC
from mset_platform.codec import Keyring
from mset_platform.codec_server import CodecServerSettings
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN
from mset_platform.migrations import MigrationSettings
from mset_platform.search_attributes import SearchAttributeSettings
from mset_platform.settings import SHARED_NAMES, ServiceSettings
from services.meeting.settings import MeetingSettings
from services.notifications.settings import NotificationsSettings
from services.portal.settings import PortalSettings
from services.referral.settings import ReferralSettings
from services.triage.settings import TriageSettings
from workflows.worker import WorkflowWorkerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("development", "production")
# The Kubernetes version the manifests are checked against (lifecycle.preStop.sleep is in
# the API from 1.29; clusters older than that are out of support).
KUBERNETES_VERSION = "1.32.0"
CRD_SCHEMAS: dict[str, Any] = yaml.safe_load((K8S / "schemas" / "crds.yaml").read_text())

Obj = dict[str, Any]


@functools.cache
def render(overlay: str) -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: the manifests cannot be rendered")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def the_config(objects: tuple[Obj, ...]) -> Obj:
    """mset-config, by the name kustomize gave it (a hash of its data appended, so that a
    change of configuration rolls every Deployment)."""
    (config,) = of_kind(objects, "ConfigMap")
    assert config["metadata"]["name"].startswith("mset-config-")
    return config


def problems(obj: Obj) -> list[str]:
    """What is wrong with ``obj`` by its schema (empty: valid)."""
    key = f"{obj['apiVersion']}/{obj['kind']}"
    if key in CRD_SCHEMAS:
        validator = jsonschema.Draft7Validator(CRD_SCHEMAS[key])
        return [f"{key} {obj['metadata']['name']}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{key}: neither a Kubernetes kind nor a CRD in deploy/k8s/schemas/crds.yaml"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{key} {obj['metadata']['name']}: {exc.message}"]
    return []


def test_every_rendered_object_validates_against_its_schema(overlay: str) -> None:
    objects = render(overlay)
    assert {"Deployment", "Job", "Kafka", "KafkaTopic", "Cluster"} <= {o["kind"] for o in objects}
    assert [p for o in objects for p in problems(o)] == []


def test_the_schema_check_refuses_what_a_cluster_would_refuse() -> None:
    # So that the check above can fail: a misspelt field, a wrong type, a missing CRD field.
    deployment = named(render("development"), "Deployment", "referral-api")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    assert problems(broken)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    assert problems(broken)
    topic = yaml.safe_load(
        yaml.safe_dump(named(render("development"), "KafkaTopic", "mset-events"))
    )
    del topic["spec"]["replicas"]
    assert problems(topic)
    assert problems({"apiVersion": "example.org/v1", "kind": "Unknown", "metadata": {"name": "x"}})


def containers(workload: Obj) -> list[Obj]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def test_every_deployment_is_probed_bounded_and_restricted(overlay: str) -> None:
    for workload in of_kind(render(overlay), "Deployment") + of_kind(render(overlay), "Job"):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in containers(workload):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert not sc.get("privileged", False), name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, bound)
            if workload["kind"] == "Deployment":
                assert "readinessProbe" in c and "livenessProbe" in c, name
            # A read-only root needs somewhere to write temporary files.
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), name  # noqa: S108


def test_apis_are_probed_on_healthz_and_workers_on_their_metrics_port(overlay: str) -> None:
    for d in of_kind(render(overlay), "Deployment"):
        (c,) = containers(d)
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in ("api", "web"):
            assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        else:
            assert component == "worker"
            assert c["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
            env = env_of(render(overlay), c)
            prefix = next(k for k in env if k.endswith("WORKER_METRICS_PORT"))
            assert env[prefix] == "9100"
            assert env[prefix.replace("WORKER_METRICS_PORT", "METRICS_HOST")] == "0.0.0.0"  # noqa: S104


def test_workers_are_given_time_to_drain_before_they_are_killed(overlay: str) -> None:
    drain = NotificationsSettings.model_fields["shutdown_drain_seconds"].default
    activities = WORKER_GRACEFUL_SHUTDOWN.total_seconds()
    for d in of_kind(render(overlay), "Deployment"):
        grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        name = d["metadata"]["name"]
        if name == "notifications-worker":
            assert grace >= activities + drain + 10, name
        elif name.endswith("-worker"):
            assert grace >= activities + 10, name


def test_every_api_has_a_service_a_disruption_budget_and_an_autoscaler(overlay: str) -> None:
    objects = render(overlay)
    apis = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-api")]
    assert {d["metadata"]["name"] for d in apis} == {
        "referral-api",
        "triage-api",
        "meeting-api",
        "notifications-api",
    }
    for d in apis:
        name = d["metadata"]["name"]
        selector = d["spec"]["selector"]["matchLabels"]
        assert named(objects, "Service", name)["spec"]["selector"] == selector
        pdb = named(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert pdb["spec"]["maxUnavailable"] == 1
        hpa = named(objects, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["spec"]["minReplicas"] <= d["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    if overlay == "production":
        assert all(d["spec"]["replicas"] >= 3 for d in apis)


SECRETISH = re.compile(
    r"(PASSWORD|TOKENS?|SECRET|SIGNING_KEY|CODEC_KEYS|IDENTITY_KEYS|INDEX_KEY|DATABASE_URL)$"
)


def test_the_codec_server_runs_with_its_ops_tokens_from_a_secret(overlay: str) -> None:
    # Temporal's UI and CLI decode history through it (docs/operations.md): a Service in
    # front of its pods on the port its settings listen on, its tokens a Secret's.
    objects = render(overlay)
    d = named(objects, "Deployment", "codec-server")
    (c,) = containers(d)
    env = env_of(objects, c)
    # (That the process accepts these settings is checked with every other process's below.)
    (port,) = c["ports"]
    assert port["containerPort"] == int(env["MSET_CODEC_SERVER_PORT"]) == 8005
    service = named(objects, "Service", "codec-server")
    assert service["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]
    (tokens,) = [v for v in c["env"] if v["name"] == "MSET_CODEC_SERVER_OPS_TOKENS"]
    assert tokens["valueFrom"]["secretKeyRef"]["name"] == "mset-codec-ops"
    assert env["MSET_CODEC_SERVER_UI_ORIGIN"].startswith("https://")


def test_secrets_are_only_referenced_never_written(overlay: str) -> None:
    objects = render(overlay)
    assert of_kind(objects, "Secret") == []
    for workload in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        for c in containers(workload):
            for var in c.get("env", []):
                if SECRETISH.search(var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), var["name"]
    (config,) = of_kind(objects, "ConfigMap")
    assert not [k for k in config["data"] if SECRETISH.search(k)]


def test_the_codec_keys_are_mounted_from_their_placeholder_secret(overlay: str) -> None:
    # The payload keyring (mset_platform/codec.py) is the Secret "mset-payload-keys", which
    # the deployer creates (docs/operations.md); outside development a process without it
    # refuses to start.
    for d in of_kind(render(overlay), "Deployment"):
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        if d["metadata"]["name"] == "portal":
            # The portal never reads or writes a workflow payload: it holds no key.
            assert "payload-keys" not in volumes
            continue
        assert volumes["payload-keys"]["secret"]["secretName"] == "mset-payload-keys"


def test_the_portal_is_one_pod_behind_a_service_with_only_the_service_token(
    overlay: str,
) -> None:
    # A backend-for-frontend: the signed-in person's own credential reaches the services, so
    # it is given no payload key and no Temporal certificate; the service token only to ask
    # who a token belongs to at sign-in (introspection answers the MSET services only, ADR
    # 0029). Its sessions live in its process, so one pod (docs/portal.md).
    objects = render(overlay)
    d = named(objects, "Deployment", "portal")
    (c,) = containers(d)
    assert d["spec"]["replicas"] == 1
    env = env_of(objects, c)
    (port,) = c["ports"]
    assert port["containerPort"] == int(env["MSET_PORTAL_PORT"]) == 8004
    service = named(objects, "Service", "portal")
    assert service["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert [v["name"] for v in c.get("env", []) if "valueFrom" in v] == ["MSET_SERVICE_TOKEN"]
    volumes = {v["name"] for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes == {"tmp"}
    assert env["MSET_PORTAL_ASSETS_DIR"] == "/opt/mset-portal/node_modules"
    # The ops dashboard links into the Temporal UI the codec server lets browsers call from,
    # not to a developer's loopback address.
    (codec,) = containers(named(objects, "Deployment", "codec-server"))
    ui = env_of(objects, codec)["MSET_CODEC_SERVER_UI_ORIGIN"]
    assert env["MSET_PORTAL_TEMPORAL_UI_URL"] == ui and ui.startswith("https://")


def env_of(objects: tuple[Obj, ...], c: Obj) -> dict[str, str]:
    """The container's environment as the process sees it; a secret stands in as a value of
    the right shape (the real one is never in the manifests)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        config = named(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update(config["data"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["name"] == "DATABASE_URL":
            env[var["name"]] = "postgresql://mset:secret@mset-postgres-rw:5432/mset"
        elif var["name"] == "MSET_REFERRAL_IDENTITY_KEYS":
            env[var["name"]] = "stand-in=" + base64.b64encode(b"s" * 32).decode()
        elif var["name"] == "MSET_REFERRAL_IDENTITY_INDEX_KEY":
            env[var["name"]] = base64.b64encode(b"i" * 32).decode()
        elif var["name"] == "MSET_CODEC_SERVER_OPS_TOKENS":
            env[var["name"]] = '{"ops-alice": "stand-in-for-an-ops-token-of-some-length"}'
        else:
            env[var["name"]] = f"stand-in-for-{var['name'].lower()}-of-some-length"
    return env


def settings_for(command: list[str]) -> tuple[type[ServiceSettings], str | None]:
    """The settings class the process reads (and, for a migration, its env prefix)."""
    module = command[2]
    service = module.split(".")[1] if module.startswith("services.") else None
    by_service: dict[str, type[ServiceSettings]] = {
        "referral": ReferralSettings,
        "triage": TriageSettings,
        "meeting": MeetingSettings,
        "notifications": NotificationsSettings,
        "portal": PortalSettings,
    }
    if module.endswith(".migrate") and service:
        return MigrationSettings, f"MSET_{service.upper()}_"
    if service:
        return by_service[service], None
    if module == "workflows.worker":
        return WorkflowWorkerSettings, None
    if module == "mset_platform.codec_server":
        return CodecServerSettings, None
    assert module == "mset_platform.search_attributes", module
    return SearchAttributeSettings, None


def names_read(cls: type[ServiceSettings], prefix: str | None) -> set[str]:
    prefix = prefix if prefix is not None else str(cls.model_config.get("env_prefix", ""))
    names = {prefix + f.upper() for f in cls.model_fields}
    names |= {SHARED_NAMES[f] for f in cls.model_fields if f in SHARED_NAMES}
    for field in cls.model_fields.values():
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []):
            if isinstance(choice, str):
                names.add(choice.upper())
    return names


# Python's own.
NOT_OURS_YET = {"PYTHONUNBUFFERED"}


def test_every_process_accepts_its_settings_and_reads_every_variable_it_is_given(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stand_in_key_file = tmp_path / "keyring.json"
    stand_in_key_file.write_text(Keyring.generate("stand-in").to_json())
    objects = render(overlay)
    for workload in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        (c,) = containers(workload)
        cls, prefix = settings_for(c["command"])
        env = env_of(objects, c)
        config_names = set(the_config(objects)["data"])
        own = set(env) - config_names - NOT_OURS_YET
        # A misspelt variable is ignored by the settings (extra="ignore"): caught here.
        assert own <= names_read(cls, prefix), (workload["metadata"]["name"], own)
        for name in list(__import__("os").environ):
            if name.startswith("MSET_") or name == "DATABASE_URL":
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if "MSET_CODEC_KEY_FILE" in env:
            # The mounted Secret, stood in for by a key file of the same shape.
            monkeypatch.setenv("MSET_CODEC_KEY_FILE", str(stand_in_key_file))
        settings: BaseModel = cls(_env_prefix=prefix) if prefix else cls()
        assert getattr(settings, "environment") == overlay  # noqa: B009
    every = set().union(*(names_read(c, None) for c in (
        ReferralSettings, TriageSettings, MeetingSettings, NotificationsSettings,
        WorkflowWorkerSettings,
    )))  # fmt: skip
    config = set(the_config(objects)["data"])
    assert config - NOT_OURS_YET <= every


def test_production_talks_tls_to_temporal_and_sasl_ssl_to_kafka(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    objects = render("production")
    config = the_config(objects)["data"]
    assert config["MSET_TEMPORAL_TLS"] == "true"
    worker = named(objects, "Deployment", "notifications-worker")
    env = env_of(objects, containers(worker)[0])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stand_in_key_file = tmp_path / "keyring.json"  # the mounted Secret's stand-in
    stand_in_key_file.write_text(Keyring.generate("stand-in").to_json())
    monkeypatch.setenv("MSET_CODEC_KEY_FILE", str(stand_in_key_file))
    settings = NotificationsSettings()
    assert settings.temporal_tls_enabled
    assert settings.temporal_tls_client_cert == Path("/etc/mset/temporal-tls/tls.crt")
    args = settings.kafka_client_args()
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert args["ssl_cafile"] == "/etc/mset/kafka-ca/ca.crt"
    # The files are where the Secrets are mounted, for every process that talks to Temporal
    # (the portal never does: test_the_portal_is_one_pod_behind_a_service_...).
    for d in of_kind(objects, "Deployment"):
        if d["metadata"]["name"] == "portal":
            continue
        mounts = {m["mountPath"] for m in containers(d)[0]["volumeMounts"]}
        assert "/etc/mset/temporal-tls" in mounts, d["metadata"]["name"]
    mounts = {m["mountPath"] for m in containers(worker)[0]["volumeMounts"]}
    assert "/etc/mset/kafka-ca" in mounts
    kafka = named(objects, "Kafka", "mset-kafka")["spec"]["kafka"]
    assert [(x["port"], x["tls"], x["authentication"]["type"]) for x in kafka["listeners"]] == [
        (9093, True, "scram-sha-512")
    ]
    assert config["MSET_BROKER"].endswith(":9093")
    user = named(objects, "KafkaUser", "mset-notifications")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_kafka_topics_are_the_services_topics_replicated_three_ways(overlay: str) -> None:
    objects = render(overlay)
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(objects, "KafkaTopic")}
    assert set(topics) == {EVENTS_TOPIC, DEAD_LETTER_TOPIC}
    # The worker recreates an events topic with fewer partitions than it is configured for.
    partitions = int(the_config(objects)["data"][
        "MSET_NOTIFICATIONS_TOPIC_PARTITIONS"
    ])  # fmt: skip
    assert topics[EVENTS_TOPIC]["partitions"] == partitions
    for spec in topics.values():
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == 2
    config = named(objects, "Kafka", "mset-kafka")["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] == 2
    assert config["default.replication.factor"] == 3
    (pool,) = of_kind(objects, "KafkaNodePool")
    assert pool["spec"]["replicas"] >= 3


def test_every_command_is_a_module_of_this_repository_that_runs(overlay: str) -> None:
    objects = render(overlay)
    modules = set()
    for workload in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        (c,) = containers(workload)
        assert c["command"][:2] == ["python", "-m"], workload["metadata"]["name"]
        modules.add(c["command"][2])
    jobs = {c["command"][2] for j in of_kind(objects, "Job") for c in containers(j)}
    assert jobs == {
        "services.referral.migrate",
        "services.meeting.migrate",
        "services.notifications.migrate",
        "mset_platform.search_attributes",
    }
    for module in modules | {dockerfile_cmd_module()}:
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.is_file(), module
        assert 'if __name__ == "__main__":' in path.read_text(), module


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = (ROOT / "deploy" / "container" / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def dockerfile_cmd_module() -> str:
    final = dockerfile_stages()[-1]
    (cmd,) = [line for line in final if line.startswith("CMD ")]
    argv = yaml.safe_load(cmd.removeprefix("CMD "))
    assert argv[:2] == ["python", "-m"]
    return str(argv[2])


def test_the_image_runs_as_a_numeric_non_root_user_with_no_build_tools() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: wheels are built in a stage of their own"
    final = stages[-1]
    assert final[0].split()[1] == "${PYTHON_IMAGE}"
    text = (ROOT / "deploy" / "container" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    (user,) = [line for line in final if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    # The pods run as the same user the image names.
    pod = named(render("production"), "Deployment", "referral-api")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    build_tools = re.compile(r"\b(gcc|g\+\+|build-essential|make|clang|cc)\b")
    for line in final:
        if line.startswith("RUN ") and "install" in line:
            assert not build_tools.search(line.replace("--no-index", "")), line
    assert any("build-essential" in line for line in stages[0]), "the compiler lives in build"
    assert not any(line.startswith("COPY --from") and "/wheels" in line for line in final), (
        "wheels are bind-mounted, not copied into a layer of the final image"
    )


def test_temporal_values_use_postgresql_and_the_namespace_the_services_use() -> None:
    values = yaml.safe_load((K8S / "temporal" / "values.yaml").read_text())
    production = yaml.safe_load((K8S / "temporal" / "values-production.yaml").read_text())
    objects = render("production")
    config = the_config(objects)["data"]
    persistence = values["server"]["config"]["persistence"]
    clusters = {c["metadata"]["name"] for c in of_kind(objects, "Cluster")}
    databases = {"temporal"} | {d["spec"]["name"] for d in of_kind(objects, "Database")}
    for store in persistence["datastores"].values():
        sql = store["sql"]
        assert sql["pluginName"] == "postgres12"
        assert "password" not in sql and sql["existingSecret"] == "temporal-postgres-app"
        host = sql["connectAddr"].split(":")[0]
        cluster, _, namespace = host.partition("-rw.")
        assert cluster in clusters and namespace.startswith("mset.")
        assert sql["databaseName"] in databases
    namespaces = [n["name"] for n in values["server"]["config"]["namespaces"]["namespace"]]
    assert config["MSET_TEMPORAL_NAMESPACE"] in namespaces
    frontend = production["server"]["tls"]["frontend"]
    assert frontend["requireClientAuth"] is True
    assert frontend["serverName"] == config["MSET_TEMPORAL_TLS_SERVER_NAME"]
