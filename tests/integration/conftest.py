"""Integration fixtures: the referral API served over HTTP against the real Temporal dev
server and a real database (SQLite and PostgreSQL), with the real workflow worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from mset_contract.vocab import AgencyType, Role
from services.referral.api import create_app
from services.referral.identity import Identity
from services.referral.migrate import upgrade
from services.referral.settings import ReferralSettings
from services.referral.store import Store, make_engine
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

    def new_user(self, name: str, role: Role, agency: str) -> str:
        return self.identity.create_user(name, role, agency).secret


def referral_settings(database_url: str, temporal_address: str, **kw: object) -> ReferralSettings:
    return ReferralSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "temporal_address": temporal_address,
            **kw,
        }
    )


@pytest.fixture
async def workflow_worker(temporal_dev: WorkflowEnvironment) -> AsyncIterator[None]:
    """The real workflow worker on the real task queue, for the duration of a test."""
    async with build_worker(temporal_dev.client):
        yield


@pytest.fixture
def intake(
    database_url: str, temporal_dev: WorkflowEnvironment, workflow_worker: None
) -> Iterator[Intake]:
    settings = referral_settings(
        database_url, temporal_dev.client.service_client.config.target_host
    )
    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    with serve(create_app(settings)) as url:
        yield Intake(url, store, Identity(store), temporal_dev.client, settings)
    engine.dispose()
