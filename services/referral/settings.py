"""Referral service settings: read once at start-up and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SERVICE_TOKEN = "dev-service-token-not-for-production"  # noqa: S105 - refused outside dev


class ReferralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_REFERRAL_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("MSET_ENVIRONMENT", "environment")
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # A SQLite file by default; PostgreSQL when DATABASE_URL (or the prefixed name) says so.
    database_url: str = Field(
        default="sqlite:///data/referral.db",
        validation_alias=AliasChoices("MSET_REFERRAL_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    auto_migrate: bool = True
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("MSET_TEMPORAL_ADDRESS", "temporal_address"),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("MSET_TEMPORAL_NAMESPACE", "temporal_namespace"),
    )
    # A whole Risk Assessment Tool is a few kB; 256 kB leaves room for long free text.
    max_body_bytes: int = 256 * 1024
    service_token: str = Field(
        default=DEV_SERVICE_TOKEN,
        validation_alias=AliasChoices("MSET_SERVICE_TOKEN", "service_token"),
    )

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> ReferralSettings:
        if self.environment == "production" and self.service_token == DEV_SERVICE_TOKEN:
            raise ValueError("MSET_SERVICE_TOKEN must be set to a secret in production")
        return self
