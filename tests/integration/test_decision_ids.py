"""A decision sent again under its id must be the same decision (issue 11, finding 6): over
the referral API, a Pre-MSET decision or an MSET review sent again with the same
``decision_id`` / ``review_id`` and the same body gets the first answer; with another body it
is refused, 409, naming the fields that differ, and the case is left as the first decision
left it. Real dev server, real workers, real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mset_contract.cases import PreMsetDecisionRequest
from mset_contract.vocab import AgencyType, Role
from tests.integration.conftest import Intake
from tests.integration.test_referral_intake import tool, wait_for_stage


def differing(resp_json: dict[str, object]) -> set[str]:
    errors = resp_json["errors"]
    assert isinstance(errors, list)
    return {e["field"] for e in errors}


async def test_a_decision_id_sent_again_with_another_body_is_refused(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    body = tool()
    la = body["child"]["local_authority"]
    chair = intake.new_user("DI Rao", Role.chair, "MSET Partnership", (la,))

    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        decide = f"/v1/referrals/{rid}/pre-mset-decision"

        first = {"outcome": "meets_criteria", "level": "medium", "decision_id": "pm-1"}
        met = await chair_http.post(decide, json=first)
        assert met.status_code == 200, met.text
        # The same decision, its keys in another order and a default spelled out: the same.
        default_days = PreMsetDecisionRequest.model_fields["information_due_days"].default
        same = {
            "decision_id": "pm-1",
            "information_due_days": default_days,
            "level": "medium",
            "outcome": "meets_criteria",
        }
        again = await chair_http.post(decide, json=same)
        assert again.status_code == 200, again.text
        assert again.json() == met.json()

        other = {
            "outcome": "not_met",
            "level": "low",
            "rationale": "Advice to the social worker.",
            "decision_id": "pm-1",
        }
        refused = await chair_http.post(decide, json=other)
        assert refused.status_code == 409, refused.text
        assert differing(refused.json()) == {"outcome", "level", "rationale"}
        assert "decision_id" in refused.json()["detail"]
        assert "Advice" not in refused.text  # names the fields, never the values
        view = await wait_for_stage(partner, rid, "awaiting_mset")
        assert view["level"] == "medium"

        due = (datetime.now(UTC) + timedelta(days=14)).isoformat()
        action = {
            "owner_agency_id": str(police.id),
            "due_at": due,
            "aim": "reduce",
            "target": "perpetrator",
            "description": "Serve a Child Abduction Warning Notice.",
        }
        review_url = f"/v1/referrals/{rid}/mset-review"
        review = {"level": "medium", "review_id": "mset-1", "actions": [action]}
        plan = await chair_http.post(review_url, json=review)
        assert plan.status_code == 200, plan.text
        retry = await chair_http.post(review_url, json=review)
        assert retry.status_code == 200 and retry.json() == plan.json()

        raised = {**review, "level": "high", "rationale": "A further missing episode."}
        refused = await chair_http.post(review_url, json=raised)
        assert refused.status_code == 409, refused.text
        assert differing(refused.json()) == {"level", "rationale"}
        other_plan = {**review, "actions": [{**action, "description": "Disruption visit."}]}
        refused = await chair_http.post(review_url, json=other_plan)
        assert refused.status_code == 409, refused.text
        assert differing(refused.json()) == {"actions"}

        # The case holds the first review only: its level, its one action.
        view = await wait_for_stage(partner, rid, "active_plan")
        assert view["level"] == "medium"
        assert [a["action_id"] for a in view["open_actions"]] == plan.json()["action_ids"]
