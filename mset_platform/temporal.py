"""The Temporal client every process uses, and the main of a worker process.

``data_converter`` is the one place payloads are (de)serialised and encrypted: every API,
worker, tool and test environment gets its converter here, from its settings' keyring, so no
client can write a payload in clear. ``interceptors()`` is the one place for interceptors:
tracing (mset_platform.tracing) on every client, and so on every worker built on one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from mset_platform.codec import EncryptionCodec, Keyring, NoKeysCodec
from mset_platform.metrics import worker_start_metrics
from mset_platform.process import configure_logging, refusing_to_start
from mset_platform.settings import ServiceSettings
from mset_platform.tracing import configure_tracing, service_name


def data_converter(keyring: Keyring | None) -> DataConverter:
    """Contract models cross Temporal as JSON, validated back into the same models; each
    payload is then encrypted with the keyring's current key (``mset_platform.codec``).
    Failure messages and stack traces go into an encrypted payload too: an error may quote
    what it refused. No keyring (a process that needs none): every payload is refused."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring) if keyring is not None else NoKeysCodec(),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


S = TypeVar("S", bound=ServiceSettings)


def interceptors() -> list[Interceptor]:
    """Every client's interceptors. A worker takes its client's, so these also run in every
    worker: ``TracingInterceptor`` puts the caller's trace context in the headers of a
    workflow start, signal, update or query, and each workflow and activity continues it
    (spans for starting and running each; the workflow's own are zero-length, as the
    interceptor makes them replay-safe). Its spans carry workflow and activity ids, and
    workflow ids name the case: an opaque id is how an operator goes from a trace to the
    case's history in the Temporal UI (docs/observability.md)."""
    return [TracingInterceptor()]


def tls_config(settings: ServiceSettings) -> TLSConfig | bool:
    """``Client.connect``'s ``tls``: False (plain gRPC, the local dev server) unless the
    settings turn TLS on; then the server's CA, the name to verify and the client's
    certificate and key for mutual TLS, each only when given (the SDK then uses the
    system's roots and the address's host name)."""
    if not settings.temporal_tls_enabled:
        return False

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_server_ca),
        domain=settings.temporal_tls_server_name,
        client_cert=read(settings.temporal_tls_client_cert),
        client_private_key=read(settings.temporal_tls_client_key),
    )


async def connect(settings: ServiceSettings, *, lazy: bool = False) -> Client:
    """A client for the settings' server, namespace and TLS. ``lazy``: connect on first use,
    so an API starts (and answers /healthz) while Temporal is still coming up."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec_keyring()),
        interceptors=interceptors(),
        tls=tls_config(settings),
        lazy=lazy,
    )


def run_worker(name: str, settings: S, run: Callable[[S], Coroutine[Any, Any, None]]) -> None:
    """The main of worker process ``name``, once its settings are read (``refusing_to_start``):
    logging and tracing set up, its metrics served (before any client connects: the SDK's
    exporter is on the process's default runtime), then ``run`` until it ends."""
    configure_logging(settings.environment, service_name(name))
    configure_tracing(settings, name)
    worker_start_metrics(settings)
    asyncio.run(run(settings))


def worker_main(
    name: str, load: Callable[[], S], run: Callable[[S], Coroutine[Any, Any, None]]
) -> None:
    """A worker process's whole main: settings read (or a one-line refusal), then
    ``run_worker``."""
    with refusing_to_start(name):
        settings = load()
    run_worker(name, settings, run)
