"""Referral service settings: read once at start-up and passed down."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mset_platform.codec import Keyring
from mset_platform.field_crypto import (
    DEV_FIELD_KEY_ID,
    DEV_FIELD_KEYRING,
    DEV_INDEX_KEY,
    BlindIndex,
    FieldCipher,
)
from mset_platform.settings import (
    ApiSettings,
    AuthoritiesSettings,
    DatabaseSettings,
    RetentionSettings,
    ServiceSettings,
    ServiceTokenSettings,
)


class IdentitySettings(DatabaseSettings):
    """What identity needs, for the API and for the ``mset`` command alike: where its tables
    are, how long a staff token lives, and when failed attempts are throttled."""

    model_config = SettingsConfigDict(env_prefix="MSET_REFERRAL_")

    database_url: str = "sqlite:///data/referral.db"
    # A staff token is refused this long after it was issued (a shift, with room to spare);
    # `mset user token` issues the next. Partner systems' API keys do not expire: they are
    # rotated (`mset agency key --retire-others`) and revoked (`mset key revoke`).
    staff_token_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 90)
    # Throttling (docs/operations.md, "Credentials"): an address with this many failed
    # authentication attempts within the window is answered 429, whatever it sends, until
    # its oldest counted failure is older than the window.
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=300.0, gt=0)

    @property
    def staff_token_ttl(self) -> timedelta:
        return timedelta(hours=self.staff_token_ttl_hours)

    @property
    def auth_failure_window(self) -> timedelta:
        return timedelta(seconds=self.auth_failure_window_seconds)


class AdminSettings(IdentitySettings):
    """The ``mset`` command's: identity's tables only. It reads and writes no workflow
    payload and calls no service, so it needs neither payload keys nor the service token."""

    payload_keys_required: ClassVar[bool] = False


class IdentityKeySettings(ServiceSettings):
    """The keys of the child's identity at rest (ADR 0028): a keyring of their own (the
    payload keyring's format and rotation, ``mset_platform.codec``), so whoever reads
    workflow history through the codec server cannot read names; and the blind-index key
    (HMAC) matching finds identities with. Outside development and test both must be set."""

    identity_key_file: Path | None = None
    identity_keys: SecretStr | None = None
    identity_key_id: str | None = None
    # At least 32 bytes, base64; changing it means re-indexing every identity.
    identity_index_key: SecretStr | None = None
    _identity_ring: Keyring = PrivateAttr(default=DEV_FIELD_KEYRING)
    _index_key: bytes = PrivateAttr(default=DEV_INDEX_KEY)

    @model_validator(mode="after")
    def _identity_keys(self) -> Self:
        if self.identity_key_file is not None and self.identity_keys is not None:
            raise ValueError(
                "set MSET_REFERRAL_IDENTITY_KEY_FILE or MSET_REFERRAL_IDENTITY_KEYS, not both"
            )
        ring = DEV_FIELD_KEYRING
        if self.identity_key_file is not None:
            ring = Keyring.from_file(self.identity_key_file)
        elif self.identity_keys is not None:
            ring = Keyring.from_env(
                self.identity_keys.get_secret_value(),
                self.identity_key_id,
                where="MSET_REFERRAL_IDENTITY_KEYS",
            )
        if self.identity_key_id is not None and self.identity_key_id != ring.current:
            ring = Keyring(current=self.identity_key_id, keys=ring.keys)
        index = DEV_INDEX_KEY
        if self.identity_index_key is not None:
            try:
                index = base64.b64decode(self.identity_index_key.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("MSET_REFERRAL_IDENTITY_INDEX_KEY must be base64") from None
            if len(index) < 32:
                raise ValueError("MSET_REFERRAL_IDENTITY_INDEX_KEY must be at least 32 bytes")
        if self.environment == "production" and (
            DEV_FIELD_KEY_ID in ring.keys or index == DEV_INDEX_KEY
        ):
            raise ValueError(
                "the child's identity keys are not set: MSET_REFERRAL_IDENTITY_KEY_FILE (or "
                "MSET_REFERRAL_IDENTITY_KEYS) and MSET_REFERRAL_IDENTITY_INDEX_KEY must be set "
                "in production"
            )
        self._identity_ring, self._index_key = ring, index
        return self

    def identity_cipher(self) -> FieldCipher:
        return FieldCipher(self._identity_ring)

    def identity_index(self) -> BlindIndex:
        return BlindIndex(self._index_key)


# The authorities (AuthoritiesSettings): a referral or missing report for any other is
# refused, 422 naming child.local_authority.
# The retention policy (RetentionSettings): the referral service decides when a child's
# records fall due, as it alone holds the date of birth (docs/retention.md).
class ReferralSettings(
    ApiSettings,
    AuthoritiesSettings,
    IdentitySettings,
    ServiceTokenSettings,
    RetentionSettings,
    IdentityKeySettings,
):
    model_config = SettingsConfigDict(env_prefix="MSET_REFERRAL_")

    port: int = 8000
    # A whole Risk Assessment Tool is a few kB; 256 kB leaves room for long free text.
    max_body_bytes: int = 256 * 1024
    # How long a decision waits for the case's workflow before answering 503.
    decision_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long intake waits for Temporal to start a case's workflow (or signal a reassessment)
    # before answering 503 with Retry-After. Short, so that a Temporal falling behind a burst
    # is told to the partner at once rather than after the partner's own time-out; the
    # submission is kept, and the partner's retry completes it.
    start_timeout_seconds: float = Field(default=5.0, gt=0)
    # The rules service: a case's papers give the readable reasons of the rules that fired.
    triage_url: str = "http://127.0.0.1:8001"
    # The meeting service: a decision recorded here with a meeting_id goes to the meeting's
    # record (its minutes list it), which sends it to the case.
    meeting_url: str = "http://127.0.0.1:8002"
    # The notifications service: what it holds about a child (inbox items, webhook
    # deliveries) is part of a subject access export.
    notifications_url: str = "http://127.0.0.1:8003"
    # The board reports' Return Home Interview completion target (the providers' contract).
    rhi_target_percent: float = Field(default=70.0, ge=0, le=100)
    # Reports published with ?suppress=true show counts from 1 to this less one as [c]
    # (docs/reports.md, "Publishing"): 5 hides 1 to 4.
    suppression_threshold: int = Field(default=5, ge=2, le=100)
