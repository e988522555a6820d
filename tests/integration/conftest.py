"""Integration fixtures: the referral API served over HTTP against the real Temporal dev
server and a real database (SQLite and PostgreSQL), with the real workflow worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from mset_contract.types import DEFAULT_AUTHORITIES
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store as NotificationsStore
from services.notifications.worker import NotificationsWorker
from services.referral.api import create_app
from services.referral.identity import Identity
from services.referral.migrate import upgrade
from services.referral.settings import ReferralSettings
from services.referral.store import Store
from services.referral.worker import build_worker as build_referral_worker
from services.triage.worker import build_worker as build_triage_worker
from tests.support.case_world import triage_engine
from tests.support.servers import serve
from workflows.worker import build_worker


@dataclass
class Intake:
    url: str
    store: Store
    identity: Identity
    client: Client
    settings: ReferralSettings

    def http(self, credential: str | None = None, **headers: str) -> httpx.AsyncClient:
        h = dict(headers)
        if credential and credential.startswith("msetk_"):
            h["X-API-Key"] = credential
        elif credential:
            h["Authorization"] = f"Bearer {credential}"
        return httpx.AsyncClient(base_url=self.url, headers=h, timeout=30)

    def new_agency(self, name: str, type_: AgencyType = AgencyType.childrens_social_care) -> str:
        return self.identity.create_agency(name, type_).secret

    def new_user(
        self, name: str, role: Role, agency: str, authorities: tuple[str, ...] = ()
    ) -> str:
        return self.identity.create_user(name, role, agency, authorities).secret


# Each test works in authorities of its own, so it can count its own workflows on the shared
# dev server's visibility; the referral service knows them all, as a partnership's would.
TEST_AUTHORITIES = [f"la-{uuid.uuid4().hex[:8]}" for _ in range(3000)]
_unused_authorities = iter(TEST_AUTHORITIES)


def fresh_authority() -> str:
    """A configured local authority no other test in this session has used."""
    return next(_unused_authorities)


def referral_settings(database_url: str, temporal_address: str, **kw: object) -> ReferralSettings:
    return ReferralSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "temporal_address": temporal_address,
            "authorities": [*DEFAULT_AUTHORITIES, *TEST_AUTHORITIES],
            **kw,
        }
    )


@pytest.fixture
def referral_store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
async def case_workers(
    temporal_dev: WorkflowEnvironment, referral_store: Store, broker: str, database_url: str
) -> AsyncIterator[None]:
    """Every worker a case needs, real: the workflow worker, the referral service's record
    keeping, the triage rules, and the notifications publisher on the real broker."""
    client = temporal_dev.client
    n_settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "broker": broker}
    )
    n_engine = make_engine(database_url)
    notifications_upgrade(n_engine)
    executor = ThreadPoolExecutor(max_workers=4)
    try:
        async with (
            build_worker(client),
            build_referral_worker(client, referral_store, executor),
            build_triage_worker(client, triage_engine()),
            NotificationsWorker(n_settings, NotificationsStore(n_engine), client, consumers=()),
        ):
            yield
            # The dev server outlives this test, the cases it started would not: end them,
            # so the next test's workers on these task queues are not fed this test's work
            # (against a database that is about to be dropped).
            await terminate_running(client)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        n_engine.dispose()


async def terminate_running(client: Client) -> None:
    async for wf in client.list_workflows("ExecutionStatus='Running'"):
        try:
            await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("test over")
        except RPCError:
            pass  # it finished meanwhile


@pytest.fixture
def intake(
    database_url: str, temporal_dev: WorkflowEnvironment, referral_store: Store, case_workers: None
) -> Iterator[Intake]:
    address = temporal_dev.client.service_client.config.target_host
    settings = referral_settings(database_url, address)
    with serve(create_app(settings)) as url:
        yield Intake(url, referral_store, Identity(referral_store), temporal_dev.client, settings)
