"""Issue 12's must-show for encrypted payloads, on the real dev server with every worker real:
a case with a panel rationale, an action description and a progress note; its history as
``temporal workflow show -o json`` gives it without the codec holds none of that text, and
the same command through the codec server with an ops token shows all of it; without the
token the codec server decodes nothing, and browsers may call it from the Temporal UI only.
The same history holds the month the child turns 18, never the day."""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from mset_contract.types import birthday, today_uk
from mset_contract.vocab import AgencyType, Role
from mset_platform.codec_server import CodecServerSettings, create_app
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.servers import serve

UI = "http://127.0.0.1:18233"
OPS_TOKEN = f"ops-{uuid.uuid4().hex}{uuid.uuid4().hex}"
# Distinctive text planted in what the panels write: none of it may be readable at rest.
RATIONALE = "Rationale-Quokka-5521 seen with older males at Mill Lane"
ACTION = "Action-Narwhal-3307 disrupt the flat on Canal Street"
NOTE = "Note-Axolotl-9184 notice served on the named adult"
PLANTED = (RATIONALE, ACTION, NOTE)

# The authority of this module's cases: the staff who work them serve it.
LA = fresh_authority()
OURS = (LA,)


def readable(text: str) -> str:
    """Everything a reader of the JSON can read: the text itself, and every base64 string
    in it decoded (a payload's data is base64 in protobuf JSON)."""
    found = [text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8:
            try:
                found.append(base64.b64decode(node, validate=True).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                pass

    walk(json.loads(text))
    return "\n".join(found)


def show(cli: str, address: str, workflow_id: str, *codec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli, "workflow", "show", "-w", workflow_id, "-o", "json", "--address", address, *codec],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def codec_server() -> Iterator[str]:
    # The keys are the test tier's, from MSET_CODEC_KEY_FILE (tests/conftest.py): the same
    # every worker of this test encrypts with.
    settings = CodecServerSettings.model_validate(
        {"environment": "test", "ui_origin": UI, "ops_tokens": {"ops-test": OPS_TOKEN}}
    )
    with serve(create_app(settings)) as url:
        yield url


def turning_18_in_about_100_days() -> date:
    """A date of birth whose 18th birthday is about 100 days away, not on a 1st (so the day
    of the month is something only the date of birth could give)."""
    eighteenth = today_uk() + timedelta(days=100)
    if eighteenth.day == 1:
        eighteenth += timedelta(days=1)
    return eighteenth.replace(year=eighteenth.year - 18)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_history_is_ciphertext_at_rest_and_readable_through_the_codec_server(
    intake: Intake, temporal_dev: WorkflowEnvironment, temporal_cli: str, codec_server: str
) -> None:
    key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    officer = intake.new_user("PC Hale", Role.panel_member, "Northshire Police", OURS)
    dob = turning_18_in_about_100_days()

    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        accepted = await partner.post(
            "/v1/referrals", json=tool(child__date_of_birth=str(dob), child__local_authority=LA)
        )
        assert accepted.status_code == 202, accepted.text
        rid, wid = accepted.json()["referral_id"], accepted.json()["workflow_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium", "rationale": RATIONALE},
        )
        assert met.status_code == 200, met.text
        due = datetime.now(UTC) + timedelta(days=14)
        plan = await chair_http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={
                "level": "medium",
                "review_id": "mset-1",
                "actions": [
                    {
                        "owner_agency_id": str(police.id),
                        "due_at": due.isoformat(),
                        "aim": "reduce",
                        "target": "location",
                        "description": ACTION,
                    }
                ],
            },
        )
        assert plan.status_code == 200, plan.text
        action_id = plan.json()["action_ids"][0]
    async with intake.http(officer) as officer_http:
        done = await officer_http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": NOTE, "completed": True},
        )
        assert done.status_code == 200, done.text
    # Closed, so its history is whole (and nothing of it is still being published when the
    # test's workers stop).
    async with intake.http(chair) as chair_http, intake.http(key) as partner:
        exited = await chair_http.post(
            f"/v1/referrals/{rid}/exit", json={"reason": "sufficiently_safe"}
        )
        assert exited.status_code == 200, exited.text
        await wait_for_stage(partner, rid, "exited")

    address = temporal_dev.client.service_client.config.target_host

    # Without the codec: ciphertext. Not a word of what the panel wrote can be read.
    raw = show(temporal_cli, address, wid)
    assert raw.returncode == 0, raw.stderr
    at_rest = readable(raw.stdout)
    assert "binary/encrypted" in at_rest
    for text in PLANTED:
        assert text not in at_rest

    # Through the codec server with an ops token: all of it.
    decoded = show(
        temporal_cli,
        address,
        wid,
        "--codec-endpoint",
        codec_server,
        "--codec-auth",
        f"Bearer {OPS_TOKEN}",
    )
    assert decoded.returncode == 0, decoded.stderr
    history = readable(decoded.stdout)
    for text in PLANTED:
        assert text in history, f"{text!r} not readable through the codec server"

    # The triage facts and results in that history: the month the child turns 18, never
    # a count of days beside the evaluation's moment, and no date only the birth date gives.
    assert re.search(r'"turns_18_month":\s*"\d{4}-\d{2}-01"', history)
    assert "days_until_18" not in history
    assert str(dob) not in history
    assert str(birthday(dob, 18)) not in history
    assert "transition_to_adult_services" in history  # the rule did see the month

    # Without the token (or with another) the codec server decodes nothing.
    no_token = show(temporal_cli, address, wid, "--codec-endpoint", codec_server)
    for text in PLANTED:
        assert text not in readable(no_token.stdout or "{}")
    payloads = _encrypted_payloads(raw.stdout)
    async with httpx.AsyncClient(base_url=codec_server, timeout=30) as http:
        body = json.dumps({"payloads": payloads})
        json_type = {"Content-Type": "application/json"}
        for headers in (json_type, {**json_type, "Authorization": "Bearer not-an-ops-token"}):
            refused = await http.post("/decode", content=body, headers=headers)
            assert refused.status_code == 401
        ok = await http.post(
            "/decode", content=body, headers={**json_type, "Authorization": f"Bearer {OPS_TOKEN}"}
        )
        assert ok.status_code == 200
        assert any(text in readable(ok.text) for text in PLANTED)

        # CORS: the Temporal UI's origin may call it from a browser; no other origin may.
        from_ui = await http.options(
            "/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert from_ui.headers.get("access-control-allow-origin") == UI
        elsewhere = await http.post(
            "/decode",
            content=body,
            headers={
                **json_type,
                "Authorization": f"Bearer {OPS_TOKEN}",
                "Origin": "http://127.0.0.1:9999",
            },
        )
        assert "access-control-allow-origin" not in elsewhere.headers


def _encrypted_payloads(history_json: str) -> list[dict[str, Any]]:
    """The encrypted payloads of a history, as protobuf JSON (what the UI sends to decode)."""
    found: list[dict[str, Any]] = []
    encrypted = base64.b64encode(b"binary/encrypted").decode()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("metadata", {}).get("encoding") == encrypted and "data" in node:
                found.append({"metadata": node["metadata"], "data": node["data"]})
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    assert found, "the history has no encrypted payloads"
    return found
