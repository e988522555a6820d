"""The shared contract: vocabularies, the indicator catalogue, the Risk Assessment Tool."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from mset_contract.cases import MsetReviewRequest, NewAction, PreMsetDecisionRequest
from mset_contract.catalogue import UnknownCatalogueVersion, available_versions, load_catalogue
from mset_contract.referral import ReferralCreate, referral_example
from mset_contract.referral_workflow import (
    MsetReviewInput,
    PreMsetDecisionInput,
    SentEscalation,
    escalation_key,
    update_input,
)
from mset_contract.triage import Escalation, EscalationKind, Urgency
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import IndicatorArea, IndicatorKind, PreMsetOutcome, RiskLevel, Stage
from mset_platform.edge import field_errors


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        ReferralCreate.model_validate(body)
    return {e.field: e.reason for e in field_errors(info.value.errors())}


def years_ago(years: int, days: int = 0) -> date:
    today = today_uk()
    try:
        d = today.replace(year=today.year - years)
    except ValueError:
        d = date(today.year - years, 3, 1)
    return d + timedelta(days=days)


def test_the_example_is_a_valid_tool_and_resolves_area_and_kind_from_the_catalogue() -> None:
    tool = ReferralCreate.model_validate(referral_example())
    resolved = {i.code: i for i in tool.resolved_indicators()}
    assert resolved["MIS-01"].area == IndicatorArea.missing
    assert resolved["SUB-03"].kind == IndicatorKind.significant
    assert tool.referrer_judgement.level == RiskLevel.medium


def test_catalogue_covers_all_sixteen_areas_with_several_indicators_each() -> None:
    catalogue = load_catalogue("1")
    assert catalogue.version == "1" and "1" in available_versions()
    by_area: dict[IndicatorArea, int] = {}
    for ind in catalogue.indicator:
        by_area[ind.area] = by_area.get(ind.area, 0) + 1
    assert len(IndicatorArea) == 16
    assert set(by_area) == set(IndicatorArea)
    assert min(by_area.values()) >= 3
    assert len({i.code for i in catalogue.indicator}) == len(catalogue.indicator)
    assert {i.kind for i in catalogue.indicator} == set(IndicatorKind)


def test_unknown_catalogue_version_is_refused() -> None:
    body = referral_example()
    body["catalogue_version"] = "99"
    assert "catalogue_version" in errors_of(body)
    with pytest.raises(UnknownCatalogueVersion):
        load_catalogue("99")


@pytest.mark.parametrize(
    ("dob", "ok"),
    [
        (years_ago(18, days=1), True),  # 17, turning 18 tomorrow
        (years_ago(18), False),  # 18 today
        (years_ago(30), False),
        (today_uk(), True),  # born today
        (today_uk() + timedelta(days=1), False),  # not yet born
    ],
    ids=["17-and-364-days", "18-today", "adult", "newborn", "future"],
)
def test_age_boundaries(dob: date, ok: bool) -> None:
    body = referral_example()
    body["child"]["date_of_birth"] = dob.isoformat()
    if ok:
        ReferralCreate.model_validate(body)
    else:
        assert "child.date_of_birth" in errors_of(body)


def test_future_date_of_birth_says_why() -> None:
    body = referral_example()
    body["child"]["date_of_birth"] = (today_uk() + timedelta(days=30)).isoformat()
    assert errors_of(body)["child.date_of_birth"] == "date of birth is in the future"


def test_age_on_counts_whole_years_and_leap_days() -> None:
    assert age_on(date(2010, 6, 15), date(2026, 6, 14)) == 15
    assert age_on(date(2010, 6, 15), date(2026, 6, 15)) == 16
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_every_wrong_field_is_reported_together() -> None:
    body = referral_example()
    body["indicators"][2]["code"] = "XX-1"
    body["indicators"][0]["recency"] = "yesterday"
    del body["consent"]["parent_carer_aware"]
    body["child"]["gender"] = "unknown-value"
    body["referrer_judgement"]["rationale"] = "   "
    errs = errors_of(body)
    assert set(errs) >= {
        "indicators.2.code",
        "indicators.0.recency",
        "consent.parent_carer_aware",
        "child.gender",
        "referrer_judgement.rationale",
    }
    assert errs["consent.parent_carer_aware"] == "required field is missing"
    assert "XX-1" in errs["indicators.2.code"]


def test_unknown_fields_are_refused_not_dropped() -> None:
    body = referral_example()
    body["child"]["full_name"] = "A child's name must not be accepted silently"
    assert "child.full_name" in errors_of(body)


def test_repeated_indicator_code_is_refused() -> None:
    body = referral_example()
    body["indicators"].append(dict(body["indicators"][0]))
    assert any("once" in reason for reason in errors_of(body).values())


def test_partner_reference_rejects_spaces_and_overlong_values() -> None:
    body = referral_example()
    body["partner_reference"] = "has spaces"
    assert "partner_reference" in errors_of(body)
    body["partner_reference"] = "A" * 65
    assert "partner_reference" in errors_of(body)


def test_vocabularies() -> None:
    assert [lvl.rank for lvl in (RiskLevel.low, RiskLevel.medium, RiskLevel.high)] == [0, 1, 2]
    assert Stage("awaiting_pre_mset") is Stage.awaiting_pre_mset
    with pytest.raises(ValueError):
        RiskLevel("severe")


def test_a_sent_escalation_is_a_model_and_its_key_keeps_the_saved_format() -> None:
    due = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    esc = Escalation(
        kind=EscalationKind.rhi_not_offered,
        urgency=Urgency.same_day,
        notify=[],
        reason="no interview offered",
        rule="rhi.not_offered",
        subject="ep/1",
        due_at=due,
    )
    sent = SentEscalation.of(esc)
    assert (sent.kind, sent.subject, sent.due_at) == (EscalationKind.rhi_not_offered, "ep/1", due)
    # The key is in saved workflow state (de-duplication): its format must not change.
    assert escalation_key(esc) == sent.key == f"rhi_not_offered/ep/1/{due.isoformat()}"
    assert SentEscalation.from_key(sent.key) == sent
    # Dated from the child's birthday: neither the date nor a subject leaves the triage result.
    adult = esc.model_copy(update={"kind": EscalationKind.transition_to_adult_services})
    assert SentEscalation.of(adult) == SentEscalation(kind=adult.kind)
    assert escalation_key(adult) == "transition_to_adult_services//"


def test_an_update_input_is_its_request_plus_who_decided_and_keeps_its_payload_shape() -> None:
    chair = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
    body = {
        "kind": "mset_review",
        "level": "high",
        "rationale": "New intelligence.",
        "actions": [NewAction.model_json_schema()["examples"][0]],
        "raise_lmaps": {"reason": "Two linked adults."},
    }
    request = MsetReviewRequest.model_validate(body)
    inp = update_input(MsetReviewInput, request, decided_by=chair, review_id="item-1")
    assert inp.actions == request.actions and inp.decided_by == chair
    # What the workflow receives (and its saved histories hold): no "kind", and an LMAPS
    # referral's free-text reason stays with the meeting service.
    assert set(inp.model_dump()) == {
        "level", "rationale", "actions", "decided_by", "meeting_id", "review_id"
    }  # fmt: skip
    pre = update_input(
        PreMsetDecisionInput,
        PreMsetDecisionRequest(outcome=PreMsetOutcome.more_information, level=RiskLevel.low),
        decided_by=chair,
    )
    assert set(pre.model_dump()) == {
        "outcome", "level", "rationale", "decided_by", "meeting_id", "information_due_days",
        "decision_id",
    }  # fmt: skip
