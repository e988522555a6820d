"""``python -m mset_platform.search_attributes``: register the search attributes MSET's
workflows set (``mset_contract.temporal.SEARCH_ATTRIBUTES``) on the settings' namespace.

A deployment runs this as a Job once Temporal is up and before the workers start: a workflow
that upserts an attribute the namespace does not know fails its task. ``make dev`` passes
the same attributes to the dev server's command line instead. Safe to run again: it adds
only what is missing, and refuses (rather than ignores) an attribute registered with another
type, which no later run could fix by itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from pydantic_settings import SettingsConfigDict
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from mset_contract.temporal import SEARCH_ATTRIBUTES
from mset_platform.process import configure_logging, refusing_to_start
from mset_platform.settings import ServiceSettings
from mset_platform.temporal import connect
from mset_platform.tracing import service_name

log = logging.getLogger("mset.search_attributes")


class SearchAttributeConflict(Exception):
    """An attribute MSET needs is registered with another type."""


class SearchAttributeSettings(ServiceSettings):
    """Only the shared Temporal settings (address, namespace, TLS)."""

    model_config = SettingsConfigDict(env_prefix="MSET_SEARCH_ATTRIBUTES_")
    # It registers attributes and reads or writes no payload: it needs no payload keys.
    payload_keys_required: ClassVar[bool] = False


def wanted() -> dict[str, IndexedValueType.ValueType]:
    return {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
    }


async def register(client: Client, namespace: str) -> list[str]:
    """Add the attributes ``namespace`` lacks; return their names (empty: nothing to do)."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    for name, kind in wanted().items():
        if name not in have:
            missing[name] = kind
        elif have[name] != kind:
            raise SearchAttributeConflict(
                f"search attribute {name} is registered as "
                f"{IndexedValueType.Name(have[name])}, MSET needs {IndexedValueType.Name(kind)}"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def run(settings: SearchAttributeSettings) -> None:
    client = await connect(settings)
    added = await register(client, settings.temporal_namespace)
    log.info(
        "search attributes on namespace %s: added %s",
        settings.temporal_namespace,
        ", ".join(added) or "none (all present)",
    )


def main() -> None:
    with refusing_to_start("search attributes"):
        settings = SearchAttributeSettings()
    configure_logging(settings.environment, service_name("search attributes"))
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
