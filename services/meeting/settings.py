"""Meeting service settings: read once at start-up and passed down."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from mset_contract.vocab import MeetingKind
from mset_platform.settings import (
    ApiSettings,
    AuthoritiesSettings,
    DatabaseSettings,
    IdentityClientSettings,
    ServiceTokenSettings,
)


# The service token: the agency directory (the referral service's ``GET /v1/agencies``).
# The authorities (AuthoritiesSettings): one Pre-MSET and one MSET schedule each; a meeting
# for any other is refused.
class MeetingSettings(
    ApiSettings,
    AuthoritiesSettings,
    DatabaseSettings,
    IdentityClientSettings,
    ServiceTokenSettings,
):
    model_config = SettingsConfigDict(env_prefix="MSET_MEETING_")

    port: int = 8002
    database_url: str = "sqlite:///data/meeting.db"

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
