"""Who is calling, asked of the referral service, which owns identity.

Services other than the referral service resolve a credential with ``POST /v1/auth/introspect``
through ``Introspector``, which caches answers briefly so a busy API does not ask on every
call. Introspection is for the MSET services only: the introspector presents the service
token, and passes on the address the credential came from, so failed attempts made at any
service are counted (and throttled) by the referral service in one place.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

import httpx
from pydantic import ValidationError

from mset_contract.auth import (
    SERVICE_PRINCIPAL,
    IntrospectRequest,
    IntrospectResult,
    Principal,
    credential_hash,
)
from mset_platform.settings import IdentityClientSettings

# Credential → the caller's principal, or None when the credential is not (or no longer) valid.
# May raise ``AuthenticationThrottled`` when the caller's address has failed too often.
Resolver = Callable[[str], Awaitable[Principal | None]]

# The address the credential being checked came from (the edge sets it around a resolver's
# call): the key failed attempts are counted under. A context variable rather than a second
# argument, so every resolver keeps its one-argument shape.
CALLER_ADDRESS: ContextVar[str | None] = ContextVar("mset_caller_address", default=None)


class AuthenticationThrottled(Exception):
    """Too many failed authentication attempts from the caller's address lately: nothing is
    checked until ``retry_after`` seconds have passed (answered 429 with Retry-After)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            "too many failed authentication attempts from your address: "
            f"try again in {self.retry_after} s"
        )


def with_service_token(token: str, others: Resolver) -> Resolver:
    """The shared service token names the MSET services (``SERVICE_PRINCIPAL``); any other
    credential is resolved by ``others``."""
    expected = token.encode("utf-8")

    async def resolve(credential: str) -> Principal | None:
        if secrets.compare_digest(credential.encode("utf-8"), expected):
            return SERVICE_PRINCIPAL
        return await others(credential)

    return resolve


class IdentityUnavailable(Exception):
    """The referral service, which owns identity, could not be asked who a caller is."""


class Introspector:
    """Resolves a credential to a principal via the referral service, with a short TTL cache.

    Calls with ``service_token``: the referral service answers introspection to the MSET
    services only."""

    def __init__(
        self, base_url: str, service_token: str, ttl_seconds: float = 30.0, timeout: float = 5.0
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, credential: str) -> Principal | None:
        key = credential_hash(credential)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        try:
            ask = IntrospectRequest(credential=credential, source=CALLER_ADDRESS.get())
        except ValidationError:
            return None  # not a credential as any is minted (printable ASCII, bounded)
        try:
            resp = await self._client.post(
                "/v1/auth/introspect", json=ask.model_dump(exclude_none=True)
            )
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise IdentityUnavailable("cannot check the credential just now") from exc
        result = IntrospectResult.model_validate(resp.json())
        if result.retry_after is not None:
            # Not cached: the address is refused while throttled, whatever it sends.
            raise AuthenticationThrottled(result.retry_after)
        principal = result.principal if result.active else None
        if len(self._cache) > 10_000:  # bound memory under a flood of bad credentials
            self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)
        return principal

    async def aclose(self) -> None:
        await self._client.aclose()


@asynccontextmanager
async def resolving(
    resolver: Resolver | None, settings: IdentityClientSettings
) -> AsyncIterator[Resolver]:
    """``resolver`` if one is given (tests pass their own), else the referral service's
    introspection, closed when the block ends."""
    if resolver is not None:
        yield resolver
        return
    introspector = Introspector(
        settings.referral_url,
        settings.service_token.get_secret_value(),
        ttl_seconds=settings.introspect_ttl_seconds,
    )
    try:
        yield introspector.principal
    finally:
        await introspector.aclose()
