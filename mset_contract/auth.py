"""Who is calling: the authenticated principal, and how services learn it.

The referral service owns identity (agencies, API keys, users, tokens; stored hashed).
Other services ask it who a credential belongs to (``POST /v1/auth/introspect``, these
models) through ``mset_platform.identity.Introspector``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import AgencyType, Role

API_KEY_PREFIX = "msetk_"
USER_TOKEN_PREFIX = "msetu_"  # noqa: S105 - a prefix, not a secret


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    # "service": another MSET service, calling with the shared service token.
    kind: Literal["agency", "user", "service"]
    agency_id: UUID
    agency_name: str
    agency_type: AgencyType
    user_id: UUID | None = None
    user_name: str | None = None
    role: Role | None = None
    # The local authorities a staff user serves (empty: none recorded, so none served). They
    # decide which authority-level escalations reach the user, whatever the agency's type.
    authorities: tuple[LocalAuthorityCode, ...] = ()
    # The authority the agency belongs to, where recorded, and the authorities that commission
    # it as their Return Home Interview provider.
    agency_authority: LocalAuthorityCode | None = None
    rhi_provider_for: tuple[LocalAuthorityCode, ...] = ()

    def has_role(self, *roles: Role) -> bool:
        return self.kind == "user" and self.role in roles


# Who calls with the shared service token: another MSET service, not a partner agency.
SERVICE_PRINCIPAL = Principal(
    kind="service",
    agency_id=UUID(int=0),
    agency_name="MSET Flow services",
    agency_type=AgencyType.other,
)


class IntrospectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Printable ASCII, as every key and token is minted (``new_secret``).
    credential: str = Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")
    # The address the credential was presented from, as the asking service saw it: failed
    # attempts are counted (and throttled) per address, wherever they were made.
    source: str | None = Field(default=None, max_length=64, pattern=r"^[\x21-\x7e]+$")


class IntrospectResult(BaseModel):
    active: bool
    principal: Principal | None = None
    # Set when the source address is throttled (too many failed attempts): the asking
    # service answers 429 with this Retry-After, and nothing was checked.
    retry_after: int | None = None


def new_secret(prefix: str) -> str:
    """A new API key or token: 256 bits from the OS, shown once, stored only as a hash."""
    return prefix + secrets.token_urlsafe(32)


def credential_hash(credential: str) -> str:
    # The credentials are 256-bit random strings, so a fast unsalted hash is safe here (there
    # is nothing to brute-force); it lets a lookup be one indexed equality query.
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()
