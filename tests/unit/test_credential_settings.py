"""Where a process runs unless told, and which service token it accepts (issue 11, finding
9): production by default, refusing every development secret; the public development
service token accepted in development only; the local stack on a token of its own."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.stack import StackSettings, dev_service_token, plan
from mset_platform.settings import DEV_SERVICE_TOKEN, ServiceSettings
from services.notifications.settings import NotificationsSettings
from services.referral.settings import AdminSettings
from services.triage.settings import TriageSettings


def test_a_process_told_nothing_runs_as_production_and_refuses_the_development_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MSET_ENVIRONMENT", raising=False)
    monkeypatch.delenv("MSET_SERVICE_TOKEN", raising=False)
    assert ServiceSettings().environment == "production"
    with pytest.raises(ValidationError, match="MSET_SERVICE_TOKEN must be set"):
        TriageSettings()
    # The `mset` command needs no payload keys and no service token, only the database.
    assert AdminSettings().environment == "production"


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_service_token_is_accepted_in_development_only(environment: str) -> None:
    with pytest.raises(ValidationError, match="MSET_SERVICE_TOKEN must be set to a secret"):
        TriageSettings(environment=environment, service_token=DEV_SERVICE_TOKEN)
    # The notifications service introspects callers too, so it holds the token as well
    # (in "test", where its other secrets may keep their development values).
    if environment == "test":
        with pytest.raises(ValidationError, match="accepted in development only"):
            NotificationsSettings(environment=environment, service_token=DEV_SERVICE_TOKEN)
    assert TriageSettings(environment="development", service_token=DEV_SERVICE_TOKEN)


def test_the_stack_says_development_and_runs_on_a_service_token_of_its_own(
    tmp_path: Path,
) -> None:
    token = dev_service_token(tmp_path)
    assert token != DEV_SERVICE_TOKEN and len(token) >= 32
    path = tmp_path / "service-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_service_token(tmp_path) == token  # kept across starts

    parts = plan(StackSettings(data_dir=tmp_path), token)
    services = [p for p in parts if p.name not in ("temporal", "broker")]
    assert services
    for part in services:
        assert part.env["MSET_ENVIRONMENT"] == "development", part.name
        assert part.env["MSET_SERVICE_TOKEN"] == token, part.name
