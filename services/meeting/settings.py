"""Meeting service settings: read once at start-up and passed down."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import MeetingKind


class MeetingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_MEETING_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("MSET_ENVIRONMENT", "environment")
    )
    host: str = "127.0.0.1"
    port: int = 8002
    # A SQLite file by default; PostgreSQL when DATABASE_URL (or the prefixed name) says so.
    database_url: str = Field(
        default="sqlite:///data/meeting.db",
        validation_alias=AliasChoices("MSET_MEETING_DATABASE_URL", "DATABASE_URL", "database_url"),
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
    # Staff tokens are resolved by the referral service, which owns identity.
    referral_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("MSET_REFERRAL_URL", "referral_url"),
    )
    max_body_bytes: int = 256 * 1024

    # The partnership's local authorities, comma separated: one Pre-MSET and one MSET
    # schedule each.
    authorities: Annotated[list[LocalAuthorityCode], NoDecode] = ["northshire", "eastmoor"]
    # Create or update the schedules when the worker starts.
    manage_schedules: bool = True
    # When each monthly meeting is called (its agenda drawn up), in schedule_timezone. Days
    # 1-28 exist in every month.
    pre_mset_day: int = Field(default=1, ge=1, le=28)
    pre_mset_hour: int = Field(default=9, ge=0, le=23)
    mset_day: int = Field(default=15, ge=1, le=28)
    mset_hour: int = Field(default=9, ge=0, le=23)
    schedule_timezone: str = "Europe/London"
    # The meeting is held this many days after it is called, at the same time of day.
    notice_days: int = Field(default=7, ge=0, le=60)

    # How long a decision waits for the case's workflow before answering 503.
    decision_timeout_seconds: float = Field(default=30.0, gt=0)
    # A decision in flight holds its agenda item this long; after it, a crashed attempt's
    # claim may be taken over (the workflow deduplicates by decision id, so that is safe).
    claim_ttl_seconds: int = Field(default=120, ge=5)
    # Case workflows queried at once when an agenda is drawn up.
    agenda_concurrency: int = Field(default=8, ge=1, le=64)

    @field_validator("authorities", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [a.strip() for a in v.split(",") if a.strip()]
        return v

    @field_validator("schedule_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def schedule_day_hour(self, kind: MeetingKind) -> tuple[int, int]:
        if kind is MeetingKind.pre_mset:
            return self.pre_mset_day, self.pre_mset_hour
        if kind is MeetingKind.mset:
            return self.mset_day, self.mset_hour
        raise ValueError(f"{kind.value} meetings have no schedule")
