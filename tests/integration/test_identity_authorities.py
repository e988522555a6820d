"""Identity records the local authorities staff serve (and which agency is an authority's RHI
provider), set with the ``mset`` command as an administrator runs it, and answered by the
referral service's introspection endpoint to the other services (issue 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from services.referral.api import create_app
from tests.integration.conftest import referral_settings
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.servers import serve


def mset(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MSET_REFERRAL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "services.referral.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(database_url: str, *args: str) -> dict[str, Any]:
    done = mset(database_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


async def introspect(url: str, credential: str) -> dict[str, Any]:
    """What the referral service tells an MSET service (its token) about ``credential``."""
    service = {"Authorization": f"Bearer {TEST_SERVICE_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=service) as http:
        resp = await http.post("/v1/auth/introspect", json={"credential": credential})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["active"] is True
    principal: dict[str, Any] = body["principal"]
    return principal


async def test_the_mset_command_records_authorities_and_introspection_answers_them(
    database_url: str, temporal_dev: WorkflowEnvironment
) -> None:
    tag = uuid.uuid4().hex[:6]
    csc, rhi = f"Northshire CSC {tag}", f"Return Home Service {tag}"
    ok(
        database_url,
        "agency",
        "create",
        "--name",
        csc,
        "--type",
        "childrens_social_care",
        "--authority",
        "northshire",
    )
    ok(
        database_url,
        "agency",
        "create",
        "--name",
        rhi,
        "--type",
        "voluntary_provider",
        "--rhi-provider-for",
        "northshire",
    )
    chair = ok(
        database_url,
        "user",
        "create",
        "--name",
        "Sam Patel",
        "--role",
        "chair",
        "--agency",
        csc,
        "--authority",
        "northshire",
        "--authority",
        "eastmoor",
    )
    assert chair["authorities"] == ["northshire", "eastmoor"]
    legacy = ok(
        database_url, "user", "create", "--name", "Jo", "--role", "coordinator", "--agency", csc
    )
    manager = ok(
        database_url, "user", "create", "--name", "Ali", "--role", "manager", "--agency", rhi
    )

    # Later: a user starts serving another authority; the provider is commissioned again.
    served = ok(database_url, "user", "serve", "--id", legacy["id"], "--authority", "westdale")
    assert served["authorities"] == ["westdale"]
    commissioned = ok(
        database_url, "agency", "commission", "--name", rhi, "--rhi-provider-for", "eastmoor"
    )
    assert commissioned["rhi_provider_for"] == ["eastmoor", "northshire"]

    # A code that is not one is refused, naming it; nothing is created.
    bad = mset(
        database_url,
        "user",
        "create",
        "--name",
        "X",
        "--role",
        "chair",
        "--agency",
        csc,
        "--authority",
        "North Shire",
    )
    assert bad.returncode == 1 and "'North Shire' is not a local authority code" in bad.stderr

    address = temporal_dev.client.service_client.config.target_host
    with serve(create_app(referral_settings(database_url, address))) as url:
        p = await introspect(url, chair["token"])
        assert p["authorities"] == ["eastmoor", "northshire"]
        assert p["agency_authority"] == "northshire" and p["rhi_provider_for"] == []
        p = await introspect(url, legacy["token"])
        assert p["authorities"] == ["westdale"]
        p = await introspect(url, manager["token"])
        assert p["authorities"] == [] and p["agency_type"] == "voluntary_provider"
        assert p["rhi_provider_for"] == ["eastmoor", "northshire"]
