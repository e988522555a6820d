"""Meeting service settings: read once at start-up and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MeetingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_MEETING_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("MSET_ENVIRONMENT", "environment")
    )
    host: str = "127.0.0.1"
    port: int = 8002
