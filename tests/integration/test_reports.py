"""Board reports from records pushed through the public APIs (referral and meeting services,
real workflows on the Temporal dev server, SQLite and PostgreSQL): the counts and
percentages are exactly those of the records; CSV says what JSON says; an analyst gets counts
and no record; roles outside the reports are refused."""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pypdf import PdfReader

from mset_contract.referral import referral_examples
from mset_contract.types import UK, age_on, today_uk
from mset_contract.vocab import AgencyType, MeetingKind, Role
from services.referral.store import Agency
from tests.integration.conftest import Intake
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)
from tests.integration.test_referral_intake import wait_for_stage
from tests.support.wait import poll


def client(url: str, credential: str) -> httpx.AsyncClient:
    header = (
        {"X-API-Key": credential}
        if credential.startswith("msetk_")
        else {"Authorization": f"Bearer {credential}"}
    )
    return httpx.AsyncClient(base_url=url, headers=header, timeout=60)


def a_tool(kind: str, la: str, **child: Any) -> dict[str, Any]:
    t = referral_examples()[f"{kind} risk"]
    t["partner_reference"] = f"REF-{uuid.uuid4().hex[:10]}"
    t["child"]["agency_child_ref"] = f"CH-{uuid.uuid4().hex[:10]}"
    t["child"]["local_authority"] = la
    for k, v in child.items():
        if v is None:
            t["child"].pop(k, None)
        else:
            t["child"][k] = v
    return t


def rows(table: dict[str, Any], column: str) -> dict[str, int]:
    return {r["label"]: r["counts"][column] for r in [*table["rows"], table["total"]]}


def table(report: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in report["tables"] if t["key"] == key)
    return found


def month(at: datetime) -> str:
    return at.astimezone(UK).strftime("%Y-%m")


def csv_figures(text: str) -> dict[tuple[str, str, str], str]:
    return {
        (r["table"], r["row"], r["measure"]): r["value"] for r in csv.DictReader(io.StringIO(text))
    }


def json_figures(report: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for t in report["tables"]:
        for r in [*t["rows"], *([t["total"]] if t["total"] else [])]:
            for k, n in r["counts"].items():
                out[(t["key"], r["label"], k)] = str(n)
            for k, p in t["percentages"][r["label"]].items():
                out[(t["key"], r["label"], f"{k}_percent")] = "" if p is None else str(p)
    return out


async def test_reports_count_the_records_pushed_through_the_apis(
    panel: Panel, intake: Intake
) -> None:
    la = panel.local_authority
    now = datetime.now(UTC)
    police = intake.identity.create_agency("Reports Police", AgencyType.police)
    intake.identity.create_agency(
        "Reports RHI Service", AgencyType.voluntary_provider, rhi_provider_for=[la]
    )
    provider = intake.new_user("Reports Provider", Role.provider, "Reports RHI Service")
    analyst = panel.tokens["analyst"]
    with intake.store.session() as s:
        csc = intake.store.agency_by_name(s, "Northshire CSC")
        assert isinstance(csc, Agency)
        csc_id = csc.id
    api = panel.referral_url

    # Five referrals: A, B, C, D from children's social care, E from the police.
    tools = {
        "A": (panel.partner_key, a_tool("medium", la)),
        "B": (panel.partner_key, a_tool("high", la)),
        "C": (panel.partner_key, a_tool("low", la, gender="male", ethnicity=None)),
        "D": (panel.partner_key, a_tool("medium", la, gender="male",
                                         legal_status="child_in_need_s17")),
        "E": (police.secret, a_tool("medium", la)),
    }  # fmt: skip
    ids: dict[str, str] = {}
    for name, (key, body) in tools.items():
        async with client(api, key) as http:
            resp = await http.post("/v1/referrals", json=body)
            assert resp.status_code == 202, resp.text
            ids[name] = resp.json()["referral_id"]
            await wait_for_stage(http, ids[name], "awaiting_pre_mset")

    async with client(api, panel.tokens["chair"]) as chair:

        async def decide(name: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = await chair.post(f"/v1/referrals/{ids[name]}/{body.pop('path')}", json=body)
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        await decide(
            "A", {"path": "pre-mset-decision", "outcome": "meets_criteria", "level": "medium"}
        )
        await decide(
            "B", {"path": "pre-mset-decision", "outcome": "meets_criteria", "level": "high"}
        )
        await decide(
            "C",
            {
                "path": "pre-mset-decision",
                "outcome": "not_met",
                "level": "low",
                "rationale": "Safety net advice to the social worker.",
            },
        )
        await decide(
            "D", {"path": "pre-mset-decision", "outcome": "more_information", "level": "medium"}
        )
        due = lambda days: (now + timedelta(days=days)).isoformat()  # noqa: E731
        plan_a = await decide(
            "A",
            {
                "path": "mset-review",
                "level": "medium",
                "review_id": "r-a",
                "actions": [
                    {
                        "owner_agency_id": str(police.id),
                        "due_at": due(14),
                        "aim": "reduce",
                        "target": "perpetrator",
                        "description": "Serve a warning notice.",
                    }
                ],
            },
        )
        await decide(
            "B",
            {
                "path": "mset-review",
                "level": "high",
                "review_id": "r-b",
                "actions": [
                    {
                        "owner_agency_id": str(csc_id),
                        "due_at": due(7),
                        "aim": "avoid",
                        "target": "victim",
                        "description": "Safety plan with the carers.",
                    }
                ],
            },
        )
    async with client(api, police.secret) as http:
        done = await http.post(
            f"/v1/referrals/{ids['A']}/actions/{plan_a['action_ids'][0]}/progress",
            json={"note": "Served.", "completed": True},
        )
        assert done.status_code == 200, done.text
    async with client(api, panel.tokens["chair"]) as chair:
        await decide("A", {"path": "exit", "reason": "sufficiently_safe"})  # fmt: skip

    # Missing episodes: child X twice (the second a repeat), child Y once.
    x, y = f"X-{uuid.uuid4().hex[:6]}", f"Y-{uuid.uuid4().hex[:6]}"
    dob = today_uk().replace(year=today_uk().year - 14, day=1).isoformat()
    episodes = [
        # (child, reported, returned, outcome, offered)
        (x, now - timedelta(days=5), now - timedelta(days=4), "refused_by_young_person",
         now - timedelta(hours=1)),
        (x, now - timedelta(hours=3), now - timedelta(hours=2), "completed",
         now - timedelta(hours=1)),
        (y, now - timedelta(hours=2), now - timedelta(hours=1), "not_offered", None),
    ]  # fmt: skip
    async with client(api, police.secret) as http, client(api, provider) as rhi_http:
        for child, reported, returned, outcome, offered in episodes:
            resp = await http.post(
                "/v1/missing-episodes",
                json={
                    "partner_reference": f"MFH-{uuid.uuid4().hex[:8]}",
                    "child": {"agency_child_ref": child, "date_of_birth": dob,
                              "local_authority": la},
                    "reported_at": reported.isoformat(),
                },
            )  # fmt: skip
            assert resp.status_code == 202, resp.text
            eid = resp.json()["episode_id"]
            back = await http.post(
                f"/v1/missing-episodes/{eid}/return", json={"returned_at": returned.isoformat()}
            )
            assert back.status_code == 200, back.text
            outcome_body: dict[str, Any] = {"outcome": outcome}
            if offered is None:
                outcome_body["reason_not_offered"] = "No worker free that week."
            else:
                outcome_body["offered_at"] = offered.isoformat()
            done = await rhi_http.post(f"/v1/missing-episodes/{eid}/rhi", json=outcome_body)
            assert done.status_code == 200, done.text

    # Attendance at a Pre-MSET panel, recorded in the meeting service.
    meeting = await panel.call(MeetingKind.pre_mset)
    async with panel.http("coordinator") as http:
        resp = await http.put(
            f"/v1/meetings/{meeting['meeting_id']}/attendance",
            json={"attendees": [
                {"person_name": "DI Okafor", "agency_name": "Reports Police", "capacity": "chair"},
                {"person_name": "Nurse Lee", "agency_name": "Reports Health", "present": False},
            ]},
        )  # fmt: skip
        assert resp.status_code == 200, resp.text

    period = {
        "authority": la,
        "since": (now - timedelta(days=30)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }
    async with client(api, analyst) as http:

        async def report(name: str, **params: str) -> dict[str, Any]:
            resp = await http.get(f"/v1/reports/{name}", params={**period, **params})
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        referrals = await report("referrals")
        assert rows(table(referrals, "by_agency_type"), "referrals") == {
            **{t.value: 0 for t in AgencyType},
            "childrens_social_care": 4,
            "police": 1,
            "total": 5,
        }
        shares = table(referrals, "by_agency_type")["percentages"]
        assert shares["childrens_social_care"]["referrals_share"] == 80.0
        assert shares["police"]["referrals_share"] == 20.0
        risk = table(referrals, "risk_at_referral")
        levels = {"low": 1, "medium": 3, "high": 1, "total": 5}
        assert rows(risk, "suggested") == levels and rows(risk, "referrer") == levels

        pre = await report("pre-mset")
        assert rows(table(pre, "outcomes"), "referrals") == {
            "meets_criteria": 2, "not_met": 1, "more_information": 1, "awaiting decision": 1,
            "total": 5,
        }  # fmt: skip
        conversion = table(pre, "conversion")
        assert rows(conversion, "referrals") == {"low": 1, "medium": 3, "high": 1, "total": 5}
        assert rows(conversion, "decided") == {"low": 1, "medium": 1, "high": 1, "total": 3}
        assert rows(conversion, "met_criteria") == {"low": 0, "medium": 1, "high": 1, "total": 2}
        assert conversion["percentages"]["total"] == {
            "conversion": 40.0,
            "conversion_of_decided": 66.7,
        }
        assert rows(table(pre, "met_by_level"), "met_criteria") == {
            "low": 0, "medium": 1, "high": 1, "total": 2,
        }  # fmt: skip
        timing = rows(table(pre, "time_to_decision"), "referrals")
        assert timing["0 to 7 days"] == 3 and timing["awaiting decision"] == 2
        assert timing["total"] == 5

        profile = await report("profile")
        gender = table(profile, "gender")
        assert rows(gender, "pre_mset")["female"] == 3 and rows(gender, "pre_mset")["male"] == 2
        assert rows(gender, "mset")["female"] == 2 and rows(gender, "mset")["total"] == 2
        legal = table(profile, "legal_status")
        assert rows(legal, "pre_mset")["looked_after_s20"] == 4
        assert rows(legal, "pre_mset")["child_in_need_s17"] == 1
        ethnicity = table(profile, "ethnicity")
        assert rows(ethnicity, "pre_mset") == {"White British": 4, "not recorded": 1, "total": 5}
        age = today_uk().year - 14  # every example child was born on 14 March of that year
        group = "12 to 13" if age_on(datetime(age, 3, 14).date(), today_uk()) == 13 else "14 to 15"
        assert rows(table(profile, "age_group"), "pre_mset")[group] == 5
        types = table(profile, "exploitation_types")
        assert types["additive"] is False
        assert rows(types, "pre_mset")["boyfriend_model"] == 4
        assert rows(types, "pre_mset")["none recorded"] == 1
        assert rows(types, "mset")["boyfriend_model"] == 2

        exits = await report("exits")
        assert rows(table(exits, "by_reason"), "exits")["sufficiently_safe"] == 1
        assert rows(table(exits, "time_in_mset"), "exits") == {
            "under 3 months": 1, "3 to 6 months": 0, "6 to 12 months": 0,
            "12 months and over": 0, "total": 1,
        }  # fmt: skip

        actions = await report("actions")
        by_aim = table(actions, "by_aim")
        assert rows(by_aim, "actions") == {"remove": 0, "avoid": 1, "reduce": 1, "total": 2}
        assert rows(by_aim, "completed_on_time")["reduce"] == 1
        assert rows(by_aim, "open_not_due")["avoid"] == 1
        assert by_aim["percentages"]["total"] == {"on_time": 50.0, "overdue": 0.0}
        assert rows(table(actions, "by_owner"), "actions") == {
            "Reports Police": 1, "Northshire CSC": 1, "total": 2,
        }  # fmt: skip

        # The episodes' records are written by their workflows as they close.
        missing = await poll(
            lambda: report("missing"),
            lambda r: (
                rows(table(r, "rhi_by_month"), "awaiting_outcome")["total"] == 0
                and rows(table(r, "rhi_by_month"), "referred")["total"] == 3
            ),
            what="the three interviews recorded",
        )
        rhi = table(missing, "rhi_by_month")
        total = rhi["total"]["counts"]
        assert total == {
            "referred": 3, "offered": 2, "offered_72h": 1, "completed": 1,
            "refused_young_person": 1, "refused_parent_carer": 0, "not_offered": 1,
            "awaiting_outcome": 0,
        }  # fmt: skip
        assert rhi["percentages"]["total"] == {
            "offered": 66.7,
            "offered_72h": 33.3,
            "completion": 33.3,
        }
        assert [r["target_percent"] for r in rhi["ratios"] if r["key"] == "completion"] == [70.0]
        by_month = Counter(month(returned) for _, _, returned, _, _ in episodes)
        referred = {r["label"]: r["counts"]["referred"] for r in rhi["rows"]}
        assert {m: n for m, n in referred.items() if n} == dict(by_month)
        eps = table(missing, "episodes_by_month")["total"]["counts"]
        assert eps == {"episodes": 3, "returned": 3, "repeat": 1}

        quality = await report("data-quality")
        dq = {r["label"]: r["counts"] for r in table(quality, "missing_or_unknown")["rows"]}
        assert dq["referrals: ethnicity not recorded"] == {"records": 5, "missing": 1}
        assert dq["returns: interview not offered (why: free text only)"] == {
            "records": 3,
            "missing": 1,
        }

        attendance = await report("attendance", until=(now + timedelta(days=400)).isoformat())
        assert rows(table(attendance, "meetings_held"), "meetings") == {la: 1, "total": 1}
        by_agency = {r["label"]: r["counts"] for r in table(attendance, "by_agency")["rows"]}
        assert by_agency == {
            "Reports Health": {"meetings": 1, "attended": 0, "sent_apologies": 1, "absent": 0},
            "Reports Police": {"meetings": 1, "attended": 1, "sent_apologies": 0, "absent": 0},
        }

        # The region (every authority of the partnership) holds only this test's records.
        region_params = {k: v for k, v in period.items() if k != "authority"}
        resp = await http.get("/v1/reports/referrals", params={**region_params, "region": "all"})
        assert resp.status_code == 200, resp.text
        region = resp.json()
        assert region["scope"]["region"] is True
        assert (
            table(region, "by_agency_type")["total"] == table(referrals, "by_agency_type")["total"]
        )

        # CSV says what JSON says, figure for figure, for every report.
        for name, shown in [("referrals", referrals), ("pre-mset", pre), ("profile", profile),
                            ("exits", exits), ("actions", actions), ("missing", missing),
                            ("data-quality", quality)]:  # fmt: skip
            as_csv = await http.get(
                f"/v1/reports/{name}", params=period, headers={"Accept": "text/csv"}
            )
            assert as_csv.status_code == 200
            assert as_csv.headers["content-type"].startswith("text/csv")
            figures = csv_figures(as_csv.text)
            expected = json_figures(shown)
            if name == "missing":  # the only report read again: compare what both show
                expected = json_figures(await report(name))
            assert figures == expected, name
        by_format = await http.get("/v1/reports/referrals", params={**period, "format": "csv"})
        assert csv_figures(by_format.text) == json_figures(referrals)

        # The board pack for the fixture's period: every report, OFFICIAL-SENSITIVE on every
        # page, the figures above in it (docs/board-pack.md).
        pack = await http.get("/v1/reports/board-pack.pdf", params=period)
        assert pack.status_code == 200, pack.text
        assert pack.headers["content-type"] == "application/pdf"
        pdf_pages = [p.extract_text() for p in PdfReader(io.BytesIO(pack.content)).pages]
        for page in pdf_pages:
            lines = [line.strip() for line in page.splitlines()]
            assert lines[0] == "OFFICIAL-SENSITIVE" and lines[-2] == "OFFICIAL-SENSITIVE"
        text = " ".join(" ".join(p.split()) for p in pdf_pages)
        assert f"Local authority: {la}" in text
        assert "Risk Assessment Tools referred 5" in text
        assert "childrens social care 4 80.0%" in text
        assert "total 3 2 1 1 1 0 1 0 66.7% 33.3% 33.3%" in text  # the RHI table's total
        for shown in (referrals, pre, profile, exits, actions, missing, quality):
            for t in shown["tables"]:
                assert t["title"] in text, t["title"]
        # Published: every count here is below 5, so each is [c] (zeros stay).
        published = await report("referrals", suppress="true")
        by_type = table(published, "by_agency_type")
        assert rows(by_type, "referrals")["police"] == "[c]"
        assert rows(by_type, "referrals")["childrens_social_care"] == "[c]"
        assert rows(by_type, "referrals")["total"] == 5
        assert published["suppression"]["threshold"] == 5
        as_svg = await http.get("/v1/reports/missing", params={**period, "format": "svg"})
        assert as_svg.headers["content-type"].startswith("image/svg+xml")
        svg = ET.fromstring(as_svg.text)  # noqa: S314 - our own service's SVG
        assert [e.get("role") for e in svg.iter("{http://www.w3.org/2000/svg}svg")][1:] == [
            "img",
            "img",
        ]
        assert "33.3% (1 of 3) below target" in as_svg.text

        # An analyst sees counts, never a child's record.
        assert (await http.get(f"/v1/referrals/{ids['A']}")).status_code in (403, 404)
        everything = str([referrals, pre, profile, exits, actions, missing, quality])
        for name, (_, body) in tools.items():
            assert ids[name] not in everything
            assert body["child"]["agency_child_ref"] not in everything
            assert body["partner_reference"] not in everything
        assert x not in everything and y not in everything

        # Bad parameters are refused naming the field.
        both = await http.get("/v1/reports/referrals", params={**period, "region": "all"})
        assert both.status_code == 422 and both.json()["errors"][0]["field"] == "query.authority"
        unknown = await http.get("/v1/reports/referrals", params={**period, "authority": "nowhere"})
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "query.authority"
        backwards = await http.get(
            "/v1/reports/referrals", params={**period, "since": period["until"]}
        )
        assert backwards.status_code == 422
        assert backwards.json()["errors"][0]["field"] == "query.since"
        no_such = await http.get("/v1/reports/everything", params=period)
        assert no_such.status_code == 422

    # The coordinator and managers may read reports; partner systems, panel members,
    # providers and chairs may not (403 whatever the report).
    manager = intake.new_user("Reports Manager", Role.manager, "Northshire CSC")
    for credential in (panel.tokens["coordinator"], manager):
        async with client(api, credential) as http:
            resp = await http.get("/v1/reports/referrals", params=period)
            assert resp.status_code == 200, resp.text
    for credential in (
        panel.partner_key,
        police.secret,
        panel.tokens["member"],
        panel.tokens["chair"],
        provider,
    ):
        async with client(api, credential) as http:
            resp = await http.get("/v1/reports/referrals", params=period)
            assert resp.status_code == 403, resp.text
            assert "board reports are for" in resp.json()["detail"]

    # The meeting service's aggregates are for the MSET services only.
    async with panel.http("analyst") as http:
        params = {k: v for k, v in period.items() if k != "authority"}
        resp = await http.get("/v1/aggregates/attendance", params={**params, "local_authority": la})
        assert resp.status_code == 403
