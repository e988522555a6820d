"""Who is calling: the authenticated principal, and how services learn it.

The referral service owns identity (agencies, API keys, users, tokens; stored hashed).
Other services ask it who a credential belongs to (``POST /v1/auth/introspect``) through
``Introspector``, which caches answers briefly so a busy API does not ask on every call.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict

from mset_contract.vocab import AgencyType, Role

API_KEY_PREFIX = "msetk_"
USER_TOKEN_PREFIX = "msetu_"  # noqa: S105 - a prefix, not a secret


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["agency", "user"]
    agency_id: UUID
    agency_name: str
    agency_type: AgencyType
    user_id: UUID | None = None
    user_name: str | None = None
    role: Role | None = None

    def has_role(self, *roles: Role) -> bool:
        return self.kind == "user" and self.role in roles


class IntrospectRequest(BaseModel):
    credential: str


class IntrospectResult(BaseModel):
    active: bool
    principal: Principal | None = None


def new_secret(prefix: str) -> str:
    """A new API key or token: 256 bits from the OS, shown once, stored only as a hash."""
    return prefix + secrets.token_urlsafe(32)


def credential_hash(credential: str) -> str:
    # The credentials are 256-bit random strings, so a fast unsalted hash is safe here (there
    # is nothing to brute-force); it lets a lookup be one indexed equality query.
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


class Introspector:
    """Resolves a credential to a principal via the referral service, with a short TTL cache."""

    def __init__(self, base_url: str, ttl_seconds: float = 30.0, timeout: float = 5.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, credential: str) -> Principal | None:
        key = credential_hash(credential)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        resp = await self._client.post(
            "/v1/auth/introspect", json=IntrospectRequest(credential=credential).model_dump()
        )
        resp.raise_for_status()
        result = IntrospectResult.model_validate(resp.json())
        principal = result.principal if result.active else None
        if len(self._cache) > 10_000:  # bound memory under a flood of bad credentials
            self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)
        return principal

    async def aclose(self) -> None:
        await self._client.aclose()
