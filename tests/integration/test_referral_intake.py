"""Referral intake over HTTP against the real Temporal dev server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from mset_contract.referral import referral_example
from mset_contract.types import today_uk
from mset_contract.vocab import AgencyType, Role
from services.referral.store import Referral, Store
from tests.integration.conftest import Intake, fresh_authority
from tests.support.net import HoldingProxy
from tests.support.wait import poll

# The authority of this module's cases: the staff who work them serve it.
LA = fresh_authority()
OURS = (LA,)


def tool(**overrides: Any) -> dict[str, Any]:
    """The documented example with a fresh partner reference and its own local authority,
    so each test can count its own workflows."""
    t = referral_example()
    t["partner_reference"] = f"REF-{uuid.uuid4().hex[:10]}"
    t["child"]["local_authority"] = fresh_authority()
    for path, value in overrides.items():
        target = t
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        target[keys[-1]] = value
    return t


async def wait_for_stage(http: httpx.AsyncClient, referral_id: str, stage: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        resp = await http.get(f"/v1/referrals/{referral_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    return await poll(read, lambda body: body["stage"] == stage, what=f"stage {stage}")


async def workflows_in(intake: Intake, local_authority: str) -> list[str]:
    # Visibility is eventually consistent: wait for it to catch up.
    async def listed() -> list[str]:
        query = f"MsetLocalAuthority='{local_authority}'"
        return [w.id async for w in intake.client.list_workflows(query)]

    return await poll(listed, bool, what=f"workflows of {local_authority} listed")


async def assert_no_workflow_started(intake: Intake, key: str, local_authority: str) -> None:
    """Proves a negative without waiting out a timeout: a valid sentinel referral in the same
    authority is submitted after the refused one; once it is visible it must be alone."""
    async with intake.http(key) as http:
        sentinel = await http.post(
            "/v1/referrals", json=tool(child__local_authority=local_authority)
        )
    assert sentinel.status_code == 202
    assert await workflows_in(intake, local_authority) == [sentinel.json()["workflow_id"]]


def referral_rows(intake: Intake) -> int:
    with intake.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Referral)) or 0)


async def test_submission_is_accepted_and_its_workflow_runs(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    body = tool()
    async with intake.http(key) as http:
        resp = await http.post("/v1/referrals", json=body)
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        assert accepted["stage"] == "submitted" and accepted["duplicate"] is False
        assert accepted["kind"] == "new_case" and accepted["case_id"] == accepted["referral_id"]

        handle = intake.client.get_workflow_handle(accepted["workflow_id"])
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING

        got = await wait_for_stage(http, accepted["referral_id"], "awaiting_pre_mset")
        assert got["partner_reference"] == body["partner_reference"]
        assert got["referrer_level"] == "medium"
        assert got["suggested_level"] in {"low", "medium", "high"}
        # Read from the record the case made of itself, and saying how fresh it is.
        assert got["sequence"] > 0
        assert datetime.fromisoformat(got["as_of"]) >= datetime.fromisoformat(got["submitted_at"])
    assert await workflows_in(intake, body["child"]["local_authority"]) == [accepted["workflow_id"]]


async def test_retries_return_the_first_answer_and_start_no_second_workflow(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    body = tool()
    async with intake.http(key) as http:
        first = await http.post("/v1/referrals", json=body, headers={"Idempotency-Key": "k-1"})
        again_same_key = await http.post(
            "/v1/referrals", json=body, headers={"Idempotency-Key": "k-1"}
        )
        again_same_ref = await http.post("/v1/referrals", json=body)
    assert first.status_code == again_same_key.status_code == again_same_ref.status_code == 202
    ids = {r.json()["referral_id"] for r in (first, again_same_key, again_same_ref)}
    assert len(ids) == 1
    assert again_same_key.json()["duplicate"] and again_same_ref.json()["duplicate"]
    assert referral_rows(intake) == 1
    assert len(await workflows_in(intake, body["child"]["local_authority"])) == 1


async def test_concurrent_identical_submissions_make_one_referral(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    body = tool()
    async with intake.http(key) as http:
        answers = await asyncio.gather(*(http.post("/v1/referrals", json=body) for _ in range(8)))
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert len({a.json()["referral_id"] for a in answers}) == 1
    assert referral_rows(intake) == 1
    assert len(await workflows_in(intake, body["child"]["local_authority"])) == 1


async def test_idempotency_key_reused_for_another_submission_is_refused(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    async with intake.http(key) as http:
        ok = await http.post("/v1/referrals", json=tool(), headers={"Idempotency-Key": "dup"})
        clash = await http.post("/v1/referrals", json=tool(), headers={"Idempotency-Key": "dup"})
    assert ok.status_code == 202
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "header.idempotency-key"
    assert referral_rows(intake) == 1


async def test_another_agency_gets_404_and_no_key_gets_401(intake: Intake) -> None:
    mine = intake.new_agency("Northshire CSC")
    theirs = intake.new_agency("Northshire Police")
    async with intake.http(mine) as http:
        rid = (await http.post("/v1/referrals", json=tool())).json()["referral_id"]
    async with intake.http(theirs) as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404
        # An id that does not exist answers exactly the same: existence does not leak.
        unknown = await http.get(f"/v1/referrals/{uuid.uuid4()}")
        assert unknown.status_code == 404
    async with intake.http() as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 401
        assert (await http.post("/v1/referrals", json=tool())).status_code == 401
    async with intake.http("msetk_not-a-real-key") as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 401


async def test_staff_roles_see_what_their_role_allows(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    intake.new_agency("MSET Partnership")
    coordinator = intake.new_user("Sam", Role.coordinator, "MSET Partnership", OURS)
    analyst = intake.new_user("Ana", Role.analyst, "MSET Partnership")
    async with intake.http(key) as http:
        body = tool(child__local_authority=LA)
        rid = (await http.post("/v1/referrals", json=body)).json()["referral_id"]
    async with intake.http(coordinator) as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 200
        # Staff do not submit tools: partner systems do, with their agency key.
        assert (await http.post("/v1/referrals", json=tool())).status_code == 403
    async with intake.http(analyst) as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404


def _dob(years: int, days: int = 0) -> str:
    today = today_uk()
    try:
        d = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        d = date(today.year - years, 3, 1)
    return (d + timedelta(days=days)).isoformat()


def _without(path: str) -> dict[str, Any]:
    t = tool()
    target: Any = t
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[k]
    del target[keys[-1]]
    return t


BAD_INPUTS = [
    ("unknown indicator", tool(indicators__1__code="ZZZ-99"), "indicators.1.code"),
    ("dob in future", tool(child__date_of_birth=_dob(-1)), "child.date_of_birth"),
    ("eighteen today", tool(child__date_of_birth=_dob(18)), "child.date_of_birth"),
    (
        "missing consent answer",
        _without("consent.young_person_aware"),
        "consent.young_person_aware",
    ),
    ("no indicators", tool(indicators=[]), "indicators"),
    ("unknown field", tool(child__name="should not be here"), "child.name"),
    ("bad level", tool(referrer_judgement__level="severe"), "referrer_judgement.level"),
]


# Each table below is walked in one test per store, against one service: a case is one
# request, and setting the service up for each case took longer than the cases themselves.
# A failure names its case.


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    for case, table_body, field in BAD_INPUTS:
        body = copy.deepcopy(table_body)  # the table is shared by both databases' runs
        body["child"]["local_authority"] = fresh_authority()
        before = referral_rows(intake)
        async with intake.http(key) as http:
            resp = await http.post("/v1/referrals", json=body)
        assert resp.status_code == 422, f"{case}: {resp.text}"
        fields = [e["field"] for e in resp.json()["errors"]]
        assert field in fields, f"{case}: {fields}"
        assert all(e["reason"] for e in resp.json()["errors"]), case
        assert referral_rows(intake) == before, case
        # (The sentinel this submits is written: the next case counts from after it.)
        await assert_no_workflow_started(intake, key, body["child"]["local_authority"])


async def test_an_authority_outside_the_partnership_is_refused_naming_the_field(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    async with intake.http(key) as http:
        resp = await http.post("/v1/referrals", json=tool(child__local_authority="atlantis"))
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert [e["field"] for e in errors] == ["child.local_authority"]
    assert "atlantis" in errors[0]["reason"] and "northshire" in errors[0]["reason"]
    assert referral_rows(intake) == 0


async def test_every_wrong_field_is_named_at_once(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    body = tool(child__date_of_birth=_dob(-2), indicators__0__code="NOPE")
    del body["consent"]["lawful_basis"]
    async with intake.http(key) as http:
        resp = await http.post("/v1/referrals", json=body)
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json()["errors"]} >= {
        "child.date_of_birth",
        "indicators.0.code",
        "consent.lawful_basis",
    }


MALFORMED = [
    ("empty body", b"", {"Content-Type": "application/json"}, "body"),
    (
        "wrong content type",
        b"partner_reference=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        "header.content-type",
    ),
    ("malformed json", b"{not json", {"Content-Type": "application/json"}, "body"),
    (
        "over the size limit",
        b'{"a": "' + b"x" * 300_000 + b'"}',
        {"Content-Type": "application/json"},
        "body",
    ),
]


async def test_malformed_requests_get_422(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    async with intake.http(key) as http:
        for case, content, headers, field in MALFORMED:
            resp = await http.post("/v1/referrals", content=content, headers=headers)
            assert resp.status_code == 422, f"{case}: {resp.text}"
            assert field in [e["field"] for e in resp.json()["errors"]], case
    assert referral_rows(intake) == 0


async def test_the_documented_example_is_a_valid_submission(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    async with intake.http(key) as http:
        spec = (await http.get("/openapi.json")).json()
        body = spec["paths"]["/v1/referrals"]["post"]["requestBody"]["content"]["application/json"][
            "examples"
        ]
        example = next(iter(body.values()))["value"]
        resp = await http.post("/v1/referrals", json=example)
    assert resp.status_code == 202, resp.text


async def test_when_temporal_is_unreachable_nothing_is_accepted_and_the_tool_waits_for_the_retry(
    database_url: str,
) -> None:
    from mset_platform.db import make_engine
    from services.referral.api import create_app
    from services.referral.identity import Identity
    from services.referral.migrate import upgrade
    from services.referral.store import Store
    from tests.integration.conftest import referral_settings
    from tests.support.net import free_port
    from tests.support.servers import serve

    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    key = Identity(store).create_agency("Northshire CSC", AgencyType.childrens_social_care).secret
    settings = referral_settings(database_url, f"127.0.0.1:{free_port()}")  # nothing listens
    body = tool()
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
            resp = await c.post("/v1/referrals", json=body)
            assert resp.status_code == 503
            assert resp.headers["Retry-After"]
            assert "same Idempotency-Key or partner_reference" in resp.json()["detail"]
    # Held for the partner's retry, delivered to no one: no case opened, nothing to read.
    with store.session() as s:
        rows = list(s.scalars(select(Referral)))
    assert [(r.partner_reference, r.workflow_started) for r in rows] == [
        (body["partner_reference"], False)
    ]
    engine.dispose()


@dataclass
class HeldIntake(Intake):
    """The referral API talking to Temporal through a proxy that can hold its traffic; the
    workers talk to Temporal directly, so only the API sees Temporal stop answering."""

    proxy: HoldingProxy


START_TIMEOUT = 2.0


@pytest.fixture
def held_intake(
    database_url: str, temporal_dev: WorkflowEnvironment, referral_store: Store, case_workers: None
) -> Iterator[HeldIntake]:
    from services.referral.api import create_app
    from services.referral.identity import Identity
    from tests.integration.conftest import referral_settings
    from tests.support.servers import serve

    target = temporal_dev.client.service_client.config.target_host
    with HoldingProxy(target) as proxy:
        settings = referral_settings(
            database_url, proxy.address, start_timeout_seconds=START_TIMEOUT
        )
        with serve(create_app(settings)) as url:
            yield HeldIntake(
                url, referral_store, Identity(referral_store), temporal_dev.client, settings, proxy
            )


async def test_when_temporal_stops_answering_intake_says_503_at_once_and_the_retry_completes(
    held_intake: HeldIntake,
) -> None:
    intake = held_intake
    key = intake.new_agency("Northshire CSC")
    body = tool()
    # Temporal stops answering the API (paused, or swamped by a burst) before its first call:
    # the client's own connection wait is 30 s, and the partner must not wait for it.
    intake.proxy.hold()
    async with intake.http(key, **{"Idempotency-Key": "burst-1"}) as http:
        began = time.monotonic()
        refused = await http.post("/v1/referrals", json=body)
        took = time.monotonic() - began
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert took < START_TIMEOUT + 8, f"answered after {took:.1f} s"

        intake.proxy.release()
        accepted = await http.post("/v1/referrals", json=body)
        assert accepted.status_code == 202, accepted.text
        got = accepted.json()
        assert got["duplicate"] is True  # the submission held at the 503, now delivered
        await wait_for_stage(http, got["referral_id"], "awaiting_pre_mset")
    assert await workflows_in(intake, body["child"]["local_authority"]) == [got["workflow_id"]]
    assert referral_rows(intake) == 1


async def test_a_start_that_reached_temporal_but_answered_late_opens_one_case_retry_or_not(
    held_intake: HeldIntake,
) -> None:
    intake = held_intake
    key = intake.new_agency("Northshire CSC")
    body = tool()
    la = body["child"]["local_authority"]
    same_key = {"Idempotency-Key": "late-1"}
    async with intake.http(key) as http:
        warm = await http.post("/v1/referrals", json=tool())  # the API's client connects
        assert warm.status_code == 202, warm.text
        intake.proxy.hold(replies_only=True)  # the start reaches Temporal; its answer is late
        late = await http.post("/v1/referrals", json=body, headers=same_key)
        assert late.status_code == 503, late.text
        assert late.headers["Retry-After"]

        # The case goes ahead without any retry, and its tool is delivered, not hidden.
        [workflow_id] = await workflows_in(intake, la)

        def delivered() -> bool:
            with intake.store.session() as s:
                row = s.scalar(
                    select(Referral).where(Referral.partner_reference == body["partner_reference"])
                )
                return row is not None and row.workflow_started

        await poll(
            lambda: asyncio.to_thread(delivered), bool, what="the case marks its tool delivered"
        )

        intake.proxy.release()
        again = await http.post("/v1/referrals", json=body, headers=same_key)
        assert again.status_code == 202, again.text
        assert again.json()["workflow_id"] == workflow_id
        await wait_for_stage(http, again.json()["referral_id"], "awaiting_pre_mset")
    assert await workflows_in(intake, la) == [workflow_id]
