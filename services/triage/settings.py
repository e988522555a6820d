"""Triage service settings: read once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from mset_platform.settings import ApiSettings, IdentityClientSettings


class TriageSettings(ApiSettings, IdentityClientSettings):
    """Other MSET services (and the workflows' tooling) call with the shared service token."""

    model_config = SettingsConfigDict(env_prefix="MSET_TRIAGE_")

    port: int = 8001
    # The versioned rules files (v<version>.toml); the ones shipped with the service if unset.
    rulesets_dir: Path | None = None
    default_ruleset_version: str = "1"
    # A triage input is ids, codes and dates: even at its limits it is well under 256 kB.
    max_body_bytes: int = 256 * 1024

    def rules_directory(self) -> Path:
        return self.rulesets_dir or Path(__file__).parent / "rulesets"
