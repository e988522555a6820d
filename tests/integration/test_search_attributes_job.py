"""The search-attribute Job (deploy/k8s/base/jobs.yaml) registers what the workflows set, once:
a second run adds nothing, and an attribute registered with another type is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.testing import WorkflowEnvironment

from mset_contract.temporal import SEARCH_ATTRIBUTES, STAGE_SEARCH_ATTRIBUTE
from mset_platform.search_attributes import SearchAttributeConflict, register
from tests.conftest import _binary
from tests.support.codec import DATA_CONVERTER
from tests.support.net import free_port


@pytest.fixture(scope="module")
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server with none of MSET's search attributes (unlike ``temporal_dev``); the
    time-skipping test server does not implement ListSearchAttributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=DATA_CONVERTER,
        ip="127.0.0.1",
        port=free_port(),
        dev_server_extra_args=["--http-port", str(free_port()), "--metrics-port", str(free_port())],
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_registers_every_attribute_once(bare_server: WorkflowEnvironment) -> None:
    client = bare_server.client
    assert await register(client, client.namespace) == sorted(SEARCH_ATTRIBUTES)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)
    assert await register(client, client.namespace) == []


async def test_an_attribute_of_another_type_is_refused(bare_server: WorkflowEnvironment) -> None:
    client = bare_server.client
    await client.operator_service.remove_search_attributes(
        RemoveSearchAttributesRequest(
            namespace=client.namespace, search_attributes=[STAGE_SEARCH_ATTRIBUTE.name]
        )
    )
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                STAGE_SEARCH_ATTRIBUTE.name: IndexedValueType.INDEXED_VALUE_TYPE_INT
            },
        )
    )
    with pytest.raises(SearchAttributeConflict, match=STAGE_SEARCH_ATTRIBUTE.name):
        await register(client, client.namespace)
