"""Notification logic without servers: who an escalation reaches, who sees an item, who is
next up the line, retry delays, webhook signatures and the e-mail text."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from mset_contract.auth import Principal
from mset_contract.events import EscalationTargetRef, high_risk_escalation
from mset_contract.triage import AgencyDesignation
from mset_contract.vocab import AgencyType, Role
from services.notifications.domain import (
    Target,
    UnresolvableTarget,
    backoff_seconds,
    compose_email,
    inbox_item_id,
    next_up_the_line,
    reescalation_ref,
    resolve_targets,
    visible_to,
)
from services.notifications.mailer import mime
from services.notifications.settings import DEFAULT_LADDER, NotificationsSettings
from services.notifications.store import EmailMessage
from services.notifications.webhooks import signature_header, subscription_secret, verify

AGENCY = uuid.uuid4()


def user(
    role: Role,
    agency: uuid.UUID = AGENCY,
    type_: AgencyType = AgencyType.police,
    serves: tuple[str, ...] = (),
    agency_authority: str | None = None,
    rhi_provider_for: tuple[str, ...] = (),
) -> Principal:
    return Principal(
        kind="user",
        agency_id=agency,
        agency_name="x",
        agency_type=type_,
        user_id=uuid.uuid4(),
        user_name="u",
        role=role,
        authorities=serves,
        agency_authority=agency_authority,
        rhi_provider_for=rhi_provider_for,
    )


def target(
    designation: AgencyDesignation,
    role: Role | None,
    agency_id: uuid.UUID | None = None,
    authority: str = "northshire",
) -> Target:
    return Target(designation, None, role, agency_id, authority)


def test_each_designation_resolves_to_an_agency_or_an_authority() -> None:
    owner = uuid.uuid4()
    event = high_risk_escalation(uuid.uuid4(), AGENCY, "northshire", datetime.now(UTC))
    event = event.model_copy(
        update={
            "notify": [
                EscalationTargetRef(role=Role.manager, agency=AgencyDesignation.referring_agency),
                EscalationTargetRef(
                    role=Role.manager, agency=AgencyDesignation.action_owner, agency_ref=str(owner)
                ),
                EscalationTargetRef(role=Role.chair, agency=AgencyDesignation.local_authority),
                EscalationTargetRef(
                    role=Role.coordinator,
                    agency=AgencyDesignation.other_authority,
                    agency_ref="eastmoor",
                ),
                EscalationTargetRef(role=Role.manager, agency=AgencyDesignation.rhi_provider),
            ]
        }
    )
    # Routing by authority (issue 10): authority-level targets name no agency type any more.
    got = [(t.role, t.agency_id, t.authority) for t in resolve_targets(event)]
    assert got == [
        (Role.manager, AGENCY, "northshire"),
        (Role.manager, owner, "northshire"),
        (Role.chair, None, "northshire"),
        (Role.coordinator, None, "eastmoor"),
        (Role.manager, None, "northshire"),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        EscalationTargetRef(agency=AgencyDesignation.action_owner, agency_ref="northshire"),
        EscalationTargetRef(agency=AgencyDesignation.other_authority),
    ],
)
def test_a_target_the_event_does_not_pin_down_is_refused(ref: EscalationTargetRef) -> None:
    event = high_risk_escalation(uuid.uuid4(), AGENCY, "northshire", datetime.now(UTC))
    with pytest.raises(UnresolvableTarget):
        resolve_targets(event.model_copy(update={"notify": [ref]}))


def test_an_item_is_seen_by_its_role_at_its_agency_only() -> None:
    other = uuid.uuid4()
    referring = AgencyDesignation.referring_agency
    assert visible_to(user(Role.manager), target(referring, Role.manager, AGENCY))
    assert not visible_to(user(Role.manager, other), target(referring, Role.manager, AGENCY))
    assert not visible_to(user(Role.coordinator), target(referring, Role.manager, AGENCY))
    # The case holder (no role): anyone at the agency.
    assert visible_to(user(Role.provider), target(referring, None, AGENCY))
    agency_key = user(Role.manager).model_copy(update={"kind": "agency", "role": None})
    assert not visible_to(agency_key, target(referring, None, AGENCY))


def test_an_authority_item_is_seen_by_the_role_among_those_serving_the_authority() -> None:
    """Issue 10: by the authorities a person serves, whatever their agency's type (this used
    to be "the role at any local-authority agency")."""
    la = AgencyDesignation.local_authority
    chair_item = target(la, Role.chair)
    assert visible_to(user(Role.chair, serves=("northshire",)), chair_item)
    assert visible_to(
        user(
            Role.chair, uuid.uuid4(), AgencyType.childrens_social_care, ("eastmoor", "northshire")
        ),
        chair_item,
    )
    assert not visible_to(
        user(Role.chair, uuid.uuid4(), AgencyType.local_authority, ("eastmoor",)), chair_item
    )
    # No authorities recorded: serves none.
    assert not visible_to(user(Role.chair, uuid.uuid4(), AgencyType.local_authority), chair_item)
    assert not visible_to(user(Role.coordinator, serves=("northshire",)), chair_item)
    found = target(AgencyDesignation.other_authority, Role.coordinator, authority="eastmoor")
    assert visible_to(user(Role.coordinator, serves=("eastmoor",)), found)
    assert not visible_to(user(Role.coordinator, serves=("northshire",)), found)


def test_an_rhi_item_is_seen_by_the_managers_of_the_authoritys_rhi_provider() -> None:
    rhi = target(AgencyDesignation.rhi_provider, Role.manager)
    other = AgencyType.other
    vol = AgencyType.voluntary_provider
    commissioned = user(Role.manager, uuid.uuid4(), other, rhi_provider_for=("northshire",))
    assert visible_to(commissioned, rhi)
    assert not visible_to(user(Role.manager, uuid.uuid4(), other, ("northshire",)), rhi)
    assert visible_to(user(Role.manager, uuid.uuid4(), vol, agency_authority="northshire"), rhi)
    assert visible_to(user(Role.manager, uuid.uuid4(), vol, serves=("northshire",)), rhi)
    assert not visible_to(user(Role.manager, uuid.uuid4(), vol, serves=("eastmoor",)), rhi)
    assert not visible_to(user(Role.manager, uuid.uuid4(), vol), rhi)
    assert not visible_to(
        user(Role.provider, uuid.uuid4(), other, rhi_provider_for=("northshire",)), rhi
    )


def test_up_the_line_ends_with_the_chair() -> None:
    assert next_up_the_line(None, DEFAULT_LADDER) is Role.manager
    assert next_up_the_line(Role.provider, DEFAULT_LADDER) is Role.manager
    assert next_up_the_line(Role.manager, DEFAULT_LADDER) is Role.chair
    assert next_up_the_line(Role.chair, DEFAULT_LADDER) is None
    # The chair sits at the authority, not at the referring agency.
    assert reescalation_ref(AgencyDesignation.referring_agency, None, Role.chair) == (
        EscalationTargetRef(role=Role.chair, agency=AgencyDesignation.local_authority)
    )
    # A manager stays at the agency the item was for.
    assert reescalation_ref(AgencyDesignation.action_owner, "ab-cd", Role.manager) == (
        EscalationTargetRef(
            role=Role.manager, agency=AgencyDesignation.action_owner, agency_ref="ab-cd"
        )
    )


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 10, 60) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_time() -> None:
    secret = subscription_secret("key", uuid.uuid4())
    assert secret.startswith("whsec_") and secret != subscription_secret("key", uuid.uuid4())
    body = b'{"specversion": "1.0"}'
    header = signature_header(secret, body, timestamp=1_800_000_000)
    t, v1 = header.split(",")
    # The documented scheme, recomputed independently: HMAC-SHA256(secret, "<t>." + body).
    expected = hmac.new(secret.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert (t, v1) == ("t=1800000000", f"v1={expected}")
    assert verify(secret, header, body, now=1_800_000_010)
    assert not verify(secret, header, body + b" ", now=1_800_000_010)
    assert not verify("whsec_other", header, body, now=1_800_000_010)
    assert not verify(secret, header, body, now=1_800_000_000 + 301)  # a replay, too late
    assert not verify(secret, None, body)
    assert not verify(secret, "v1=abc", body)


def test_the_escalation_email_carries_codes_and_a_link_only() -> None:
    case, item = uuid.uuid4(), uuid.uuid4()
    subject, body = compose_email(
        "high_risk", "immediate", Role.manager, case, item, "https://mset.example/"
    )
    assert subject == f"MSET urgent escalation: high_risk (case ref {case.hex[:8]})"
    assert f"https://mset.example/v1/inbox/{item}" in body
    assert str(case) not in body  # the short ref is enough to talk about it


def test_every_attempt_at_an_email_has_the_same_message_id() -> None:
    # Mail systems keep one message per Message-ID: an e-mail sent again (its sender killed
    # before it recorded the server's acceptance) must not arrive as a second message.
    def outbox_row(row_id: uuid.UUID) -> EmailMessage:
        return EmailMessage(
            id=row_id,
            inbox_item_id=uuid.uuid4(),
            recipient="mset-managers@northshire.example",
            subject="MSET: urgent escalation",
            body="An escalation is in your inbox.",
        )

    row_id = uuid.uuid4()
    first = mime(outbox_row(row_id), "MSET Flow <mset-flow@northshire.example>")
    again = mime(outbox_row(row_id), "MSET Flow <mset-flow@northshire.example>")
    other = mime(outbox_row(uuid.uuid4()), "MSET Flow <mset-flow@northshire.example>")
    assert first["Message-ID"] == again["Message-ID"] == f"<{row_id}@northshire.example>"
    assert other["Message-ID"] != first["Message-ID"]


def test_inbox_item_ids_are_shared_by_the_inbox_and_email_consumers() -> None:
    e = uuid.uuid4()
    assert inbox_item_id(e, 0) == inbox_item_id(e, 0) != inbox_item_id(e, 1)


def test_settings_refuse_the_dev_signing_key_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MSET_SERVICE_TOKEN", raising=False)  # the tests' own, set for all
    with pytest.raises(ValueError, match="SIGNING_KEY"):
        NotificationsSettings(environment="production", service_token="t" * 40)
    # It holds the services' token too (it reports disclosures to the ledger): not the dev one.
    with pytest.raises(ValueError, match="SERVICE_TOKEN"):
        NotificationsSettings(environment="production", webhook_signing_key="s" * 40)
    assert NotificationsSettings(
        environment="production", webhook_signing_key="s" * 40, service_token="t" * 40
    )
    with pytest.raises(ValueError, match="heartbeat"):
        NotificationsSettings(
            environment="development", session_timeout_ms=6000, heartbeat_interval_ms=3000
        )


def test_a_heartbeat_that_cannot_be_delivered_ends_quietly() -> None:
    # Seen when a worker stops with a publish running: the SDK's heartbeat hand-over times
    # out in the side thread. Here there is no activity at all, so every heartbeat fails;
    # the side thread must stop beating, not die with an unhandled error.
    import threading

    from services.notifications.activities import heartbeating

    errors: list[threading.ExceptHookArgs] = []
    before = threading.excepthook
    threading.excepthook = errors.append
    try:
        with heartbeating(every=0.01):
            pass
    finally:
        threading.excepthook = before
    assert errors == []
