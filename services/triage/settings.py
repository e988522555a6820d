"""Triage service settings: read once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The same development token as the other services, so a local stack works unconfigured.
DEV_SERVICE_TOKEN = "dev-service-token-not-for-production"  # noqa: S105 - refused outside dev


class TriageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_TRIAGE_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("MSET_TRIAGE_ENVIRONMENT", "MSET_ENVIRONMENT", "environment"),
    )
    host: str = "127.0.0.1"
    port: int = 8001
    # The versioned rules files (v<version>.toml); the ones shipped with the service if unset.
    rulesets_dir: Path | None = None
    default_ruleset_version: str = "1"
    # The referral service owns identity: staff bearer tokens are checked there.
    referral_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices(
            "MSET_TRIAGE_REFERRAL_URL", "MSET_REFERRAL_URL", "referral_url"
        ),
    )
    # Other MSET services (and the workflows' tooling) call with this shared token.
    # SecretStr: kept out of reprs and logs.
    service_token: SecretStr = Field(
        default=SecretStr(DEV_SERVICE_TOKEN),
        validation_alias=AliasChoices(
            "MSET_TRIAGE_SERVICE_TOKEN", "MSET_SERVICE_TOKEN", "service_token"
        ),
    )
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices(
            "MSET_TRIAGE_TEMPORAL_ADDRESS", "MSET_TEMPORAL_ADDRESS", "temporal_address"
        ),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices(
            "MSET_TRIAGE_TEMPORAL_NAMESPACE", "MSET_TEMPORAL_NAMESPACE", "temporal_namespace"
        ),
    )
    # A triage input is ids, codes and dates: even at its limits it is well under 256 kB.
    max_body_bytes: int = 256 * 1024

    def rules_directory(self) -> Path:
        return self.rulesets_dir or Path(__file__).parent / "rulesets"

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> TriageSettings:
        token = self.service_token.get_secret_value()
        if self.environment != "development" and token == DEV_SERVICE_TOKEN:
            raise ValueError(
                "MSET_SERVICE_TOKEN (or MSET_TRIAGE_SERVICE_TOKEN) must be set to a secret "
                f"when the environment is {self.environment!r}"
            )
        if len(token) < 16:
            raise ValueError("the service token must be at least 16 characters")
        return self
