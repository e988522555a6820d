"""Portal settings: read once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mset_platform.settings import ApiSettings, AuthoritiesSettings, IdentityClientSettings

# Where `make install` puts the front-end packages (npm ci in this folder).
NODE_MODULES = Path(__file__).resolve().parent / "node_modules"


class PortalSettings(ApiSettings, IdentityClientSettings, AuthoritiesSettings):
    """The staff portal: a backend-for-frontend that asks the services with the signed-in
    person's own credential. It holds the service token only to ask the referral service whose
    a token is at sign-in (introspection answers the MSET services only), and no payload key:
    it never reads Temporal, and every access rule stays in the service that owns the
    record."""

    model_config = SettingsConfigDict(env_prefix="MSET_PORTAL_")
    payload_keys_required: ClassVar[bool] = False

    port: int = 8004
    # A form post is small (a note, a rationale); the services bound the text themselves.
    max_body_bytes: int = 64 * 1024
    meeting_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    # Minutes without a request after which a session ends and the person signs in again.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # The front-end packages (govuk-frontend, @ministryofjustice/frontend) as npm installs
    # them; the container image copies them to a folder of its own and names it here.
    assets_dir: Path = NODE_MODULES
    # Rows on one page of a list (the inbox, meetings, an agenda); later rows are a link away.
    page_size: int = Field(default=20, ge=1, le=200)
    # Seconds a page waits for a service before it says the service is not answering.
    service_timeout_seconds: float = Field(default=15.0, gt=0)
    # The Temporal UI the ops dashboard links into (a workflow list filtered by a query), as
    # ops staff open it. None (the default): the counts are shown without links, rather than
    # links to a developer's loopback address that a deployed portal cannot mean.
    temporal_ui_url: str | None = None

    @property
    def secure_cookies(self) -> bool:
        """The session cookie is sent over HTTPS only, everywhere but a developer's machine
        (whose stack serves plain HTTP on the loopback address)."""
        return self.environment != "development"
