"""Helpers for tests on the time-skipping server."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client

from mset_contract.temporal import SEARCH_ATTRIBUTES


async def register_search_attributes(client: Client) -> None:
    """The dev server registers MSET's search attributes at start; the test server needs
    asking."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
                for name, kind in SEARCH_ATTRIBUTES.items()
            },
        )
    )
