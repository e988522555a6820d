"""The names of every metric sample MSET's processes can export, derived from the code that
exports them, so that the dashboard and alert rules (deploy/grafana, deploy/prometheus) are
checked against what a scrape can really show, not against a list someone copied.

- An API: ``mset_platform.metrics.install_metrics`` (request metrics, process metrics) and
  its service's domain gauges (``read_gauges`` of the referral and notifications services,
  read from freshly migrated empty tables: a family is there even with no rows) with
  ``TableGauges``' own ``mset_domain_metrics_up``.
- A worker: prometheus-client's default registry, which ``worker_start_metrics`` serves, once
  every worker module is imported (their counters register at import); and the Temporal
  SDK's metrics, whose names are defined in the SDK's core (Rust), shipped as source inside
  the ``temporalio`` wheel this project pins: each instrument's ``MetricParameters`` there,
  with the prefix and unit suffix of the ``PrometheusConfig`` the workers use
  (``mset_platform.metrics.sdk_telemetry_config``).

A family's samples are named as the Prometheus text format names them: a prometheus-client
counter ``x`` as ``x_total`` (and ``x_created``), a histogram as ``_bucket``/``_sum``/
``_count``; the SDK's counters keep their bare name (its exporter adds no ``_total``), which
``tests/integration/test_metrics.py`` checks against a real worker's scrape.
"""

from __future__ import annotations

import functools
import importlib
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import temporalio
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig

from mset_platform.db import make_engine
from mset_platform.metrics import TableGauges, sdk_telemetry_config

# Every process that serves prometheus-client's default registry (a worker's own port).
WORKER_MODULES = (
    "services.referral.worker",
    "services.triage.worker",
    "services.meeting.worker",
    "services.notifications.worker",
    "workflows.worker",
)

SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "stateset": ("",),
    "unknown": ("",),
}


def sample_names(families: Iterable[Metric]) -> set[str]:
    return {f.name + suffix for f in families for suffix in SAMPLE_SUFFIXES[f.type]}


def _collected(collector: Collector) -> list[Metric]:
    return list(collector.collect())


def api_metric_names() -> set[str]:
    """What an API's ``/metrics`` can show: request and process metrics, and the domain
    gauges of the services that serve them."""
    from fastapi import FastAPI

    from mset_platform.metrics import install_metrics
    from services.notifications.metrics import read_gauges as notifications_gauges
    from services.notifications.migrate import upgrade as notifications_upgrade
    from services.notifications.settings import NotificationsSettings
    from services.notifications.store import Store as NotificationsStore
    from services.referral.metrics import read_gauges as referral_gauges
    from services.referral.migrate import upgrade as referral_upgrade
    from services.referral.store import Store as ReferralStore

    registry: CollectorRegistry = install_metrics(FastAPI())
    families = list(registry.collect())
    groups = NotificationsSettings.model_fields["outbox_consumer_groups"].default
    with tempfile.TemporaryDirectory() as tmp:
        referral = make_engine(f"sqlite:///{Path(tmp) / 'referral.db'}")
        notifications = make_engine(f"sqlite:///{Path(tmp) / 'notifications.db'}")
        try:
            referral_upgrade(referral)
            notifications_upgrade(notifications)
            families += referral_gauges(ReferralStore(referral))
            families += notifications_gauges(NotificationsStore(notifications), groups)
        finally:
            referral.dispose()
            notifications.dispose()
    # The collector's own gauge, beside what it reads.
    families += _collected(TableGauges("names", list))
    return sample_names(families)


def worker_metric_names() -> set[str]:
    """What a worker's own port can show: prometheus-client's default registry once every
    worker module is loaded."""
    for module in WORKER_MODULES:
        importlib.import_module(module)
    return sample_names(REGISTRY.collect())


# The SDK core's sources, in the temporalio wheel, that define the metrics a worker's SDK
# exports (its client's and its worker's); constants they use come from these too.
SDK_CORE = Path(temporalio.__file__).parent / "bridge" / "sdk-core" / "crates"
SDK_METRIC_SOURCES = ("sdk-core/src/telemetry/metrics.rs", "client/src/metrics.rs")
SDK_CONSTANT_SOURCES = (*SDK_METRIC_SOURCES, "common/src/telemetry/metrics.rs")
SDK_PREFIX_SOURCE = "common/src/telemetry.rs"

_RUST_CONST = re.compile(r'(?:const|static)\s+([A-Z0-9_]+):\s*&str\s*=\s*"([a-z0-9_]+)"')
_INSTRUMENT = re.compile(
    r"(\w+)\(\s*MetricParameters\s*\{\s*name:\s*([A-Z0-9_]+|\"[a-z0-9_]+\")\.into\(\),"
    r"(.*?)\}\s*\)",
    re.S,
)


def _without_tests(source: str) -> str:
    """A Rust file without its unit-test module (its instruments are made-up names)."""
    return re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+", source)[0]


def _sdk_kind(call: str) -> str:
    if "histogram" in call:
        return "histogram"
    if "up_down_counter" in call or "gauge" in call:
        return "gauge"
    if "counter" in call:
        return "counter"
    raise AssertionError(
        f"the SDK core makes an instrument with {call}(): unknown to this parser (a new "
        "temporalio? see tests/support/exported_metrics.py)"
    )


@functools.cache
def sdk_metric_names() -> frozenset[str]:
    """The samples the Temporal SDK's Prometheus exporter can show on a worker's SDK port."""
    telemetry = sdk_telemetry_config("127.0.0.1:0")
    config = telemetry.metrics
    assert isinstance(config, PrometheusConfig), config
    constants: dict[str, str] = {}
    for rel in SDK_CONSTANT_SOURCES:
        constants.update(_RUST_CONST.findall(_without_tests((SDK_CORE / rel).read_text())))
    prefix = telemetry.metric_prefix
    if prefix is None:
        (prefix,) = re.findall(
            r'pub static METRIC_PREFIX: &str = "([a-z_]*)"',
            (SDK_CORE / SDK_PREFIX_SOURCE).read_text(),
        )
    names: set[str] = set()
    for rel in SDK_METRIC_SOURCES:
        for call, name, rest in _INSTRUMENT.findall(_without_tests((SDK_CORE / rel).read_text())):
            base = prefix + (name.strip('"') if name.startswith('"') else constants[name])
            kind = _sdk_kind(call)
            if kind == "histogram":
                (unit,) = re.findall(r'unit:\s*"([a-z]*)"', rest) or [""]
                if unit == "duration":
                    unit = "seconds" if config.durations_as_seconds else "milliseconds"
                if config.unit_suffix and unit:
                    base = f"{base}_{unit}"
                names |= {base + s for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(base)
    assert len(names) > 20, f"only {len(names)} SDK metrics found in {SDK_CORE}: parser broken?"
    return frozenset(names)


@functools.cache
def exported_metric_names() -> frozenset[str]:
    """Every sample name any MSET process can export."""
    return frozenset(api_metric_names() | worker_metric_names() | sdk_metric_names())
