"""What the services refuse at their edge, against the real services (issue 11, #6-#8): a
reused Idempotency-Key or partner reference with a different body (409, naming what differs),
numbers sent as dates or booleans, control characters in free text, JSON that is not UTF-8
or nests too deeply, and dates outside any sane span."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from mset_contract.vocab import AgencyType
from services.referral.store import MissingEpisode, Referral
from tests.integration.conftest import Intake
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_referral_intake import tool


def rows(intake: Intake, model: type[Referral] | type[MissingEpisode]) -> int:
    with intake.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def fields(resp: Any) -> set[str]:
    return {e["field"] for e in resp.json()["errors"]}


async def test_a_reused_key_or_reference_with_another_body_is_refused_naming_what_differs(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    first = tool()
    other_dob = copy.deepcopy(first)
    other_dob["child"]["date_of_birth"] = "2013-01-02"
    other_child = copy.deepcopy(first)
    other_child["child"]["agency_child_ref"] = "NS-CHILD-OTHER"
    # The same tool with other spacing and a default spelled out is the same submission.
    same_again = copy.deepcopy(first)
    same_again["referrer"]["role"] = "  Social worker  "
    same_again["tool_version"] = "1"
    async with intake.http(key) as http:
        ok = await http.post("/v1/referrals", json=first, headers={"Idempotency-Key": "k-1"})
        by_key = await http.post(
            "/v1/referrals", json=other_dob, headers={"Idempotency-Key": "k-1"}
        )
        by_reference = await http.post("/v1/referrals", json=other_child)
        retry = await http.post(
            "/v1/referrals", json=same_again, headers={"Idempotency-Key": "k-1"}
        )
    assert ok.status_code == 202, ok.text
    assert by_key.status_code == 409, by_key.text
    assert fields(by_key) == {"child.date_of_birth"}
    assert "Idempotency-Key" in by_key.json()["detail"]
    assert by_reference.status_code == 409, by_reference.text
    assert fields(by_reference) == {"child.agency_child_ref"}
    assert "partner_reference" in by_reference.json()["detail"]
    # Neither answer gives away the first body's values.
    assert "NS-CHILD-88213" not in by_reference.text and first["child"]["date_of_birth"] not in (
        by_key.text
    )
    assert retry.status_code == 202 and retry.json()["duplicate"] is True
    assert retry.json()["referral_id"] == ok.json()["referral_id"]
    assert rows(intake, Referral) == 1


async def test_a_missing_report_retried_with_another_body_is_refused(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    body = missing_report()
    changed = {**body, "circumstances": "Seen getting into a car outside school."}
    async with intake.http(police) as http:
        ok = await http.post("/v1/missing-episodes", json=body, headers={"Idempotency-Key": "m"})
        by_key = await http.post(
            "/v1/missing-episodes", json=changed, headers={"Idempotency-Key": "m"}
        )
        by_reference = await http.post("/v1/missing-episodes", json=changed)
        same = await http.post("/v1/missing-episodes", json=body)
    assert ok.status_code == 202, ok.text
    assert by_key.status_code == by_reference.status_code == 409, by_key.text
    assert fields(by_key) == fields(by_reference) == {"circumstances"}
    assert same.status_code == 202 and same.json()["episode_id"] == ok.json()["episode_id"]
    assert rows(intake, MissingEpisode) == 1


async def test_lax_input_is_refused_naming_the_field(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    csc = intake.new_agency("Northshire CSC")
    async with intake.http(police) as http:
        epoch = await http.post("/v1/missing-episodes", json=missing_report(reported_at=0))
        before_birth = await http.post(
            "/v1/missing-episodes", json=missing_report(reported_at="2001-01-01T00:00:00Z")
        )
        year_one = await http.post(
            "/v1/missing-episodes", json=missing_report(reported_at="0001-01-01T00:00:00Z")
        )
        nul = await http.post(
            "/v1/missing-episodes", json=missing_report(circumstances="Left\u0000 home")
        )
        ansi = await http.post(
            "/v1/missing-episodes",
            json=missing_report(circumstances="\u001b[2J\u001b[31mLeft home"),
        )
        lines = await http.post(
            "/v1/missing-episodes", json=missing_report(circumstances="Left home.\r\n\tPhone off.")
        )
        latin1 = await http.post(
            "/v1/missing-episodes",
            content='{"partner_reference": "Caf\u00e9"}'.encode("latin-1"),
            headers={"content-type": "application/json"},
        )
        deep = await http.post(
            "/v1/missing-episodes",
            content=b'{"a":' * 3000 + b"1" + b"}" * 3000,
            headers={"content-type": "application/json"},
        )
    async with intake.http(csc) as http:
        zero = await http.post("/v1/referrals", json=tool(child__disability_or_sen=0))
    assert epoch.status_code == 422 and fields(epoch) == {"reported_at"}
    assert "not a number" in epoch.json()["detail"]
    assert before_birth.status_code == 422 and "date of birth" in before_birth.json()["detail"]
    assert year_one.status_code == 422 and fields(year_one) == {"reported_at"}
    assert nul.status_code == 422 and fields(nul) == {"circumstances"}
    assert "U+0000" in nul.json()["detail"]
    assert ansi.status_code == 422 and "U+001B" in ansi.json()["detail"]
    assert lines.status_code == 202, lines.text
    assert latin1.status_code == 422 and fields(latin1) == {"body"}
    assert "UTF-8" in latin1.json()["detail"]
    assert deep.status_code == 422 and "nested" in deep.json()["detail"]
    assert zero.status_code == 422 and fields(zero) == {"child.disability_or_sen"}
    assert rows(intake, Referral) == 0


async def test_a_report_over_dates_out_of_any_span_is_refused_not_a_server_error(
    panel: Panel,
) -> None:
    async with panel.http("coordinator") as http:
        params = {"local_authority": panel.local_authority}
        year_one = await http.get(
            "/v1/reports/attendance", params={**params, "until": "0001-01-01T00:00:00Z"}
        )
        far = await http.get(
            "/v1/reports/attendance", params={**params, "since": "9999-12-31T23:59:59Z"}
        )
        fine = await http.get(
            "/v1/reports/attendance", params={**params, "until": "2026-01-01T00:00:00"}
        )
        lmaps = await http.post(
            "/v1/meetings",
            json={
                "kind": "lmaps",
                "local_authority": panel.local_authority,
                "held_at": "0001-01-01T00:00:00Z",
            },
        )
    assert year_one.status_code == 422, year_one.text
    assert fields(year_one) == {"query.until"}
    assert far.status_code == 422 and fields(far) == {"query.since"}
    assert fine.status_code == 200, fine.text
    assert lmaps.status_code == 422 and fields(lmaps) == {"held_at"}


async def test_a_reused_key_with_another_childs_name_is_refused_naming_the_sealed_part(
    intake: Intake,
) -> None:
    """The child's identity is stored apart from the tool, sealed (ADR 0028): a retry that
    differs only there is still another submission, refused naming the part (never its
    value), and one that differs elsewhere names only what differs."""
    key = intake.new_agency("Northshire CSC")
    first = tool()
    first["child"]["name"] = {"given": "Ada", "family": "Lovelace"}
    renamed = copy.deepcopy(first)
    renamed["child"]["name"] = {"given": "Grace", "family": "Hopper"}
    redated = copy.deepcopy(first)
    redated["child"]["date_of_birth"] = "2013-01-02"
    unnamed = copy.deepcopy(first)
    del unnamed["child"]["name"]
    async with intake.http(key) as http:
        ok = await http.post("/v1/referrals", json=first, headers={"Idempotency-Key": "k-n"})
        # Leaving the name out is another submission too, not the first one again.
        without = await http.post("/v1/referrals", json=unnamed, headers={"Idempotency-Key": "k-n"})
        assert without.status_code == 409, without.text
        assert "child.name" in fields(without) and "Ada" not in without.text
        by_name = await http.post("/v1/referrals", json=renamed, headers={"Idempotency-Key": "k-n"})
        by_dob = await http.post("/v1/referrals", json=redated, headers={"Idempotency-Key": "k-n"})
    assert ok.status_code == 202, ok.text
    assert by_name.status_code == 409, by_name.text
    assert fields(by_name) == {"child.name"}
    assert "Ada" not in by_name.text and "Grace" not in by_name.text
    assert by_dob.status_code == 409, by_dob.text
    assert fields(by_dob) == {"child.date_of_birth"}
    assert rows(intake, Referral) == 1
