"""Credentials end to end (issue 11, finding 9): keys and tokens revoked with the ``mset``
command as an administrator runs it, users disabled, staff tokens that expire, introspection
for the MSET services only, and failed attempts throttled per address across replicas and
across services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from services.referral.api import create_app
from services.triage.api import create_app as triage_app
from services.triage.settings import TriageSettings
from tests.integration.conftest import referral_settings
from tests.support.case_world import triage_engine
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.servers import serve
from tests.support.wait import poll

SERVICE = {"Authorization": f"Bearer {TEST_SERVICE_TOKEN}"}


def mset(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.referral.cli", *args],
        env={**os.environ, "MSET_REFERRAL_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(database_url: str, *args: str, **env: str) -> Any:
    done = mset(database_url, *args, "--json", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def headers(credential: str) -> dict[str, str]:
    if credential.startswith("msetk_"):
        return {"X-API-Key": credential}
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture
def referral_url(database_url: str, temporal_dev: WorkflowEnvironment) -> Iterator[str]:
    address = temporal_dev.client.service_client.config.target_host
    with serve(create_app(referral_settings(database_url, address))) as url:
        yield url


async def introspect(url: str, credential: str, source: str | None = None) -> dict[str, Any]:
    """What the referral service tells an MSET service about ``credential``."""
    body = {"credential": credential, **({"source": source} if source else {})}
    async with httpx.AsyncClient(base_url=url, headers=SERVICE, timeout=30) as http:
        resp = await http.post("/v1/auth/introspect", json=body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


async def status_as(url: str, credential: str) -> int:
    """What a partner's or a person's request answers with this credential: 404 (a referral
    that does not exist: the credential was accepted) or 401."""
    async with httpx.AsyncClient(base_url=url, headers=headers(credential), timeout=30) as http:
        return (await http.get(f"/v1/referrals/{uuid.uuid4()}")).status_code


async def test_introspection_answers_the_mset_services_only(
    database_url: str, referral_url: str
) -> None:
    csc = f"Northshire CSC {uuid.uuid4().hex[:6]}"
    key = ok(database_url, "agency", "create", "--name", csc, "--type", "childrens_social_care")
    chair = ok(database_url, "user", "create", "--name", "Sam Patel", "--role", "chair",
               "--agency", csc)  # fmt: skip
    ask = {"credential": chair["token"]}
    async with httpx.AsyncClient(base_url=referral_url, timeout=30) as http:
        # Anyone who is not an MSET service learns nothing: not the name, role or agency.
        anonymous = await http.post("/v1/auth/introspect", json=ask)
        assert anonymous.status_code == 401
        for credential in (key["api_key"], chair["token"]):
            refused = await http.post("/v1/auth/introspect", json=ask, headers=headers(credential))
            assert refused.status_code == 403
            assert "Sam Patel" not in refused.text and csc not in refused.text
    told = await introspect(referral_url, chair["token"])
    assert told["active"] is True and told["principal"]["user_name"] == "Sam Patel"


async def test_a_revoked_key_is_refused_and_a_rotation_can_retire_the_old_keys(
    database_url: str, referral_url: str
) -> None:
    csc = f"Eastmoor CSC {uuid.uuid4().hex[:6]}"
    first = ok(database_url, "agency", "create", "--name", csc, "--type", "childrens_social_care")
    second = ok(database_url, "agency", "key", "--name", csc)
    assert await status_as(referral_url, first["api_key"]) == 404
    assert await status_as(referral_url, second["api_key"]) == 404

    # A leaked key: found by its id (the secret is never listed), revoked, refused.
    listed = ok(database_url, "key", "list", "--agency", csc)
    assert [k["id"] for k in listed] == [first["api_key_id"], second["api_key_id"]]
    assert all(k["live"] for k in listed) and first["api_key"] not in json.dumps(listed)
    revoked = ok(database_url, "key", "revoke", "--id", first["api_key_id"])
    assert revoked["kind"] == "api_key" and revoked["revoked_at"]
    assert await status_as(referral_url, first["api_key"]) == 401
    assert (await introspect(referral_url, first["api_key"]))["active"] is False
    assert await status_as(referral_url, second["api_key"]) == 404

    # Rotation that retires every earlier key at once.
    third = ok(database_url, "agency", "key", "--name", csc, "--retire-others")
    assert await status_as(referral_url, second["api_key"]) == 401
    assert await status_as(referral_url, third["api_key"]) == 404

    # The agency cut off entirely; a key that does not exist is named as such.
    assert ok(database_url, "key", "revoke", "--agency", csc)["revoked"] == 1
    assert await status_as(referral_url, third["api_key"]) == 401
    missing = mset(database_url, "key", "revoke", "--id", str(uuid.uuid4()))
    assert missing.returncode == 1 and "no API key or staff token" in missing.stderr


async def test_a_disabled_user_is_refused_and_is_issued_no_new_token(
    database_url: str, referral_url: str
) -> None:
    csc = f"Westdale CSC {uuid.uuid4().hex[:6]}"
    ok(database_url, "agency", "create", "--name", csc, "--type", "childrens_social_care")
    user = ok(database_url, "user", "create", "--name", "Jo", "--role", "coordinator",
              "--agency", csc)  # fmt: skip
    assert await status_as(referral_url, user["token"]) == 404

    disabled = ok(database_url, "user", "disable", "--id", user["id"])
    assert disabled == {"id": user["id"], "disabled": True, "tokens_revoked": 1}
    assert await status_as(referral_url, user["token"]) == 401
    assert (await introspect(referral_url, user["token"]))["active"] is False
    again = mset(database_url, "user", "token", "--id", user["id"])
    assert again.returncode == 1 and "disabled" in again.stderr


async def test_staff_tokens_expire_and_the_next_one_replaces_the_last(
    database_url: str, referral_url: str
) -> None:
    csc = f"Southvale CSC {uuid.uuid4().hex[:6]}"
    ok(database_url, "agency", "create", "--name", csc, "--type", "childrens_social_care")
    # By default a token lives 12 hours, and says so when it is issued.
    before = datetime.now(UTC)
    chair = ok(database_url, "user", "create", "--name", "Sam", "--role", "chair",
               "--agency", csc)  # fmt: skip
    expires = datetime.fromisoformat(chair["expires_at"])
    assert before + timedelta(hours=12) <= expires <= datetime.now(UTC) + timedelta(hours=12)

    # A partnership that sets a short life sees the token refused once it is over.
    # Long enough to be seen working first on a loaded machine (the command takes seconds).
    short = {"MSET_REFERRAL_STAFF_TOKEN_TTL_HOURS": str(15 / 3600)}  # fifteen seconds
    jo = ok(database_url, "user", "create", "--name", "Jo", "--role", "coordinator",
            "--agency", csc, **short)  # fmt: skip
    assert (await introspect(referral_url, jo["token"]))["active"] is True

    # While Jo's token runs out (the commands here take part of its life, so the test waits
    # less): the administrator issues the chair the next one; the earlier one is revoked.
    nxt = ok(database_url, "user", "token", "--id", chair["id"])
    assert await status_as(referral_url, nxt["token"]) == 404
    assert await status_as(referral_url, chair["token"]) == 401
    tokens = ok(database_url, "key", "list", "--user", chair["id"])
    assert [t["live"] for t in tokens] == [False, True]

    await poll(
        lambda: introspect(referral_url, jo["token"]),
        lambda answer: answer["active"] is False,
        within=60,
        what="the expired token inactive",
    )
    assert datetime.now(UTC) >= datetime.fromisoformat(jo["expires_at"])
    assert await status_as(referral_url, jo["token"]) == 401


async def test_failed_attempts_are_throttled_per_address_across_replicas_and_services(
    database_url: str, temporal_dev: WorkflowEnvironment
) -> None:
    csc = f"Northvale CSC {uuid.uuid4().hex[:6]}"
    key = ok(database_url, "agency", "create", "--name", csc, "--type", "childrens_social_care")
    address = temporal_dev.client.service_client.config.target_host
    settings = referral_settings(
        database_url, address, auth_failure_limit=3, auth_failure_window_seconds=300
    )
    with serve(create_app(settings)) as one, serve(create_app(settings)) as two:
        # Three wrong guesses from this address (127.0.0.1) at the first replica ...
        for _ in range(3):
            assert await status_as(one, f"msetk_guess{uuid.uuid4().hex}") == 401
        # ... and the second replica refuses the fourth, valid key or not: the address
        # learns nothing more until the window lets its oldest failure go.
        async with httpx.AsyncClient(base_url=two, timeout=30) as http:
            for credential in (f"msetk_guess{uuid.uuid4().hex}", key["api_key"]):
                resp = await http.get(f"/v1/referrals/{uuid.uuid4()}", headers=headers(credential))
                assert resp.status_code == 429, resp.text
                assert 0 < int(resp.headers["Retry-After"]) <= 300
                assert "too many failed authentication attempts" in resp.json()["detail"]

        # The same partner's system at another address is not locked out by them.
        elsewhere = await introspect(one, key["api_key"], source="198.51.100.7")
        assert elsewhere["active"] is True
        here = await introspect(one, key["api_key"], source="127.0.0.1")
        assert here["active"] is False and 0 < here["retry_after"] <= 300

        # Another service asks the referral service (its introspection, with the address the
        # request came from), so the throttle holds there too.
        rules = triage_app(
            TriageSettings(environment="test", referral_url=one), triage=triage_engine()
        )
        with serve(rules) as triage_url:
            async with httpx.AsyncClient(base_url=triage_url, timeout=30) as http:
                resp = await http.get("/v1/rulesets", headers=headers("msetu_guess"))
                assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
                # The MSET services' own calls are unaffected.
                assert (await http.get("/v1/rulesets", headers=SERVICE)).status_code == 200
