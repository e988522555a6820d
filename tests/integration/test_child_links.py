"""The same child across agencies and authorities (issue 15 items 1-2, ADR 0028), over HTTP
against the real services, on SQLite and PostgreSQL.

Health refers a child under its own reference, Health again under social care's reference,
and the police in another authority under theirs (the date of birth with day and month
swapped, no NHS number). Before, that was three children. Now the second is linked to the
first at intake (the same NHS number); the third waits in the coordinator's review queue and
is confirmed, with a reason; the three are one history, whichever referral it is read from.
A twin is a candidate the coordinator rejects, never a link. A link undone is recorded with
who and why. The name, NHS number and postcode are nowhere in clear in the database, the
workflow histories or the logs."""

from __future__ import annotations

import base64
import json
import logging
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.api.common.v1 import Payload

from mset_contract.types import today_uk
from mset_contract.vocab import AgencyType, Role
from mset_platform.codec import ENCODING, ENCRYPTED_ENCODING, EncryptionCodec
from services.referral.child_identity import ChildIdentity, ChildLinkEvent
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.integration.test_retention import rows_holding
from tests.support.codec import TEST_KEYRING

# Distinctive identity planted in the tools: none of it may be readable at rest or in history.
GIVEN, KNOWN_AS, FAMILY, TWIN = "Jessamyn", "Jess", "Quarrington", "Ottilie"
NHS = "9434765919"
POSTCODE = "NT7 4QZ"
PLANTED = (GIVEN, FAMILY, TWIN, NHS, "943 476 5919", POSTCODE)


def dob() -> date:
    """A 14-year-old's date of birth whose day and month can be swapped (day <= 12)."""
    return date(today_uk().year - 14, 3, 9)


def child_tool(la: str, ref: str, **child: Any) -> dict[str, Any]:
    t = tool(child__local_authority=la, child__agency_child_ref=ref)
    t["child"]["date_of_birth"] = dob().isoformat()
    t["child"]["gender"] = "female"
    t["child"].update(child)
    return t


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post("/v1/referrals", json=body)
    assert resp.status_code == 202, resp.text
    accepted: dict[str, Any] = resp.json()
    await wait_for_stage(http, accepted["referral_id"], "awaiting_pre_mset")
    return accepted


async def history(http: httpx.AsyncClient, referral_id: str) -> list[dict[str, Any]]:
    resp = await http.get(f"/v1/referrals/{referral_id}/child-history")
    assert resp.status_code == 200, resp.text
    entries: list[dict[str, Any]] = resp.json()["entries"]
    return entries


def visible_ids(entries: list[dict[str, Any]]) -> set[str]:
    return {e["referral_id"] for e in entries if e["visible"]}


async def decoded_history(intake: Intake, workflow_id: str) -> str:
    """The workflow's whole history with every payload decrypted, as text: what an operator
    with the codec server reads."""
    hist = await intake.client.get_workflow_handle(workflow_id).fetch_history()
    codec = EncryptionCodec(TEST_KEYRING)
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "data" in node and isinstance(node.get("metadata"), dict):
                meta = {k: base64.b64decode(v) for k, v in node["metadata"].items()}
                payload = Payload(metadata=meta, data=base64.b64decode(node.pop("data")))
                if meta.get(ENCODING) == ENCRYPTED_ENCODING:
                    payload = codec.decrypt(payload)
                found.append(payload.data.decode("utf-8", "replace"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    # Every payload is read decoded (above), and left out of the history's own text: as
    # base64 ciphertext it is random letters and digits, which once held a planted
    # four-character fragment ("QF19", test_entities) by chance: a failure with nothing in
    # clear. Every other field of the history is still read as it is.
    history = json.loads(hist.to_json())
    walk(history)
    return "\n".join([json.dumps(history), *found])


async def test_three_referrals_of_one_child_by_three_senders_become_one_history(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    la, la_police = fresh_authority(), fresh_authority()
    health = intake.new_agency("Northshire Health", AgencyType.health)
    police = intake.new_agency("Eastmoor Police", AgencyType.police)
    intake.identity.create_agency("MSET Partnership", AgencyType.local_authority)
    both = intake.new_user("Coord Both", Role.coordinator, "MSET Partnership", (la, la_police))
    home_only = intake.new_user("Coord Home", Role.coordinator, "MSET Partnership", (la,))
    chair = intake.new_user("Chair", Role.chair, "MSET Partnership", (la, la_police))
    name = {"given": GIVEN, "family": FAMILY, "known_as": KNOWN_AS, "aliases": []}

    async with intake.http(health) as h, intake.http(police) as p:
        first = await submit(
            h, child_tool(la, "H-100", name=name, nhs_number="943 476 5919", postcode=POSTCODE)
        )
        # Health again, under social care's reference: the same NHS number.
        second = await submit(
            h,
            child_tool(la, "CSC-88213", name={"given": KNOWN_AS, "family": FAMILY}, nhs_number=NHS),
        )
        # The police, in the authority where she was found: no NHS number, the day and the
        # month of her birth swapped, her name with a typo.
        swapped = dob().replace(day=dob().month, month=dob().day)
        third = await submit(
            p,
            child_tool(
                la_police,
                "P-5521",
                name={"given": "Jessamyn", "family": "Quarringdon"},
                date_of_birth=swapped.isoformat(),
            ),
        )
        # Her twin sister, referred by Health: same family, birthday and postcode.
        twin = await submit(
            h,
            child_tool(la, "H-101", name={"given": TWIN, "family": FAMILY}, postcode=POSTCODE),
        )
        # The partner sees its own tool's identity, and never the linked history.
        own = await h.get(f"/v1/referrals/{first['referral_id']}/child")
        assert own.status_code == 200, own.text
        assert own.json()["nhs_number"] == NHS and own.json()["name"]["family"] == FAMILY
        assert (await p.get(f"/v1/referrals/{first['referral_id']}/child")).status_code == 404
        refused = await h.get(f"/v1/referrals/{first['referral_id']}/child-history")
        assert refused.status_code == 403, refused.text

    # Four cases, as ADR 0003 still says (different agencies' references)...
    assert {a["kind"] for a in (first, second, third, twin)} == {"new_case"}
    ids = [a["referral_id"] for a in (first, second, third)]

    async with intake.http(both) as coord, intake.http(chair) as chair_http:
        # ...but the NHS number linked the first two at once.
        assert visible_ids(await history(coord, first["referral_id"])) == set(ids[:2])
        queue = await coord.get("/v1/child-links/candidates")
        assert queue.status_code == 200, queue.text
        items = queue.json()["items"]
        by_new = {i["a"]["referral_id"]: i for i in items}
        assert set(by_new) == {third["referral_id"], twin["referral_id"]}, items
        police_match = by_new[third["referral_id"]]
        assert police_match["agreement"]["date_of_birth"] == "swapped"
        assert police_match["b"]["identity"]["name"]["family"] == FAMILY  # shown to decide
        twin_match = by_new[twin["referral_id"]]
        assert twin_match["agreement"]["given_name"] == "differs"
        assert twin_match["status"] == "candidate"  # never linked without a person

        # The chair may not decide links: the coordinator's queue.
        link_id = police_match["link_id"]
        why = {"reason": "Same school and social worker; police confirmed the date of birth."}
        assert (
            await chair_http.post(f"/v1/child-links/{link_id}/confirm", json=why)
        ).status_code == 404
        confirmed = await coord.post(f"/v1/child-links/{link_id}/confirm", json=why)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "linked"
        rejected = await coord.post(
            f"/v1/child-links/{twin_match['link_id']}/reject",
            json={"reason": "Her twin sister: different given name, own NHS number."},
        )
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        again = await coord.post(f"/v1/child-links/{twin_match['link_id']}/reject", json=why)
        assert again.status_code == 409, again.text
        assert (await coord.get("/v1/child-links/candidates")).json()["items"] == []

        # One history, whichever agency's referral it is read from.
        for rid in ids:
            entries = await history(coord, rid)
            assert visible_ids(entries) == set(ids), entries
            assert twin["referral_id"] not in visible_ids(entries)
        linked_by = {e["referral_id"]: e["linked_by"] for e in await history(coord, ids[0])}
        assert linked_by == {ids[0]: "case", ids[1]: "nhs_number", ids[2]: "confirmed"}

    # A coordinator serving only Health's authority sees that the police referral exists,
    # not what it is.
    async with intake.http(home_only) as home:
        entries = await history(home, first["referral_id"])
        assert visible_ids(entries) == set(ids[:2])
        hidden = [e for e in entries if not e["visible"]]
        assert hidden == [
            {
                "visible": False,
                "local_authority": la_police,
                "submitted_month": hidden[0]["submitted_month"],
                "referral_id": None,
                "case_id": None,
                "agency_id": None,
                "stage": None,
                "submitted_at": None,
                "kind": None,
                "linked_by": None,
            }
        ]

    # Undone: the police referral leaves the history; who and why are kept, in order.
    async with intake.http(both) as coord:
        undo = await coord.post(
            f"/v1/child-links/{link_id}/unlink",
            json={"reason": "Police re-checked: a different girl of the same name."},
        )
        assert undo.status_code == 200, undo.text
        record = [(e["action"], e["by_user_id"] is not None) for e in undo.json()["events"]]
        assert record == [("proposed", False), ("confirmed", True), ("unlinked", True)]
        assert "different girl" in undo.json()["events"][-1]["reason"]
        assert visible_ids(await history(coord, first["referral_id"])) == set(ids[:2])
    with intake.store.session() as s:
        assert len(s.scalars(select(ChildLinkEvent)).all()) == 6  # 2 at intake, 4 decisions
        sealed = s.scalars(select(ChildIdentity)).all()
        assert len(sealed) == 4 and {r.key_id for r in sealed} == {
            intake.settings.identity_cipher().current
        }

    # Nowhere in clear: every row of every table, every workflow's history decrypted, the
    # logs of every service and worker in this process.
    assert rows_holding(intake.store.engine, list(PLANTED)) == []
    for a in (first, second, third, twin):
        text = await decoded_history(intake, a["workflow_id"])
        assert [m for m in PLANTED if m in text] == [], a["workflow_id"]
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records)
    assert [m for m in PLANTED if m in logged] == []
