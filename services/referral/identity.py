"""Agencies, users and their credentials. Secrets are shown once and stored as hashes.

A credential is live until it is revoked (``mset key revoke``, or retired by a newer one);
a staff token also until it expires (``staff_token_ttl``) or its user is disabled
(``mset user disable``). Failed attempts are counted per source address in the database, so
every replica (and every service, through introspection) throttles the same attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from mset_contract.auth import (
    API_KEY_PREFIX,
    USER_TOKEN_PREFIX,
    Principal,
    credential_hash,
    new_secret,
)
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import AgencyType, Role
from mset_platform.identity import AuthenticationThrottled
from services.referral.domain import (
    AgencyExists,
    AgencyNotFound,
    CredentialNotFound,
    InvalidAuthority,
    UserDisabled,
    UserNotFound,
)
from services.referral.store import (
    Agency,
    ApiKey,
    RhiCommission,
    Store,
    User,
    UserAuthority,
    UserToken,
)

_AUTHORITY = TypeAdapter(LocalAuthorityCode)


def authority_codes(codes: Iterable[str]) -> list[str]:
    """Validated, de-duplicated authority codes, in the order given."""
    out: list[str] = []
    for code in codes:
        try:
            valid = _AUTHORITY.validate_python(code)
        except ValidationError:
            raise InvalidAuthority(
                f"{code!r} is not a local authority code (lower case letters, digits and "
                "hyphens, starting with a letter, e.g. 'northshire')"
            ) from None
        if valid not in out:
            out.append(valid)
    return out


@dataclass(frozen=True)
class Issued:
    id: uuid.UUID  # the agency's or the user's
    name: str
    secret: str
    # The key's or token's own id (``mset key revoke --id``), and when a staff token expires.
    credential_id: uuid.UUID | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CredentialInfo:
    """One API key or staff token, never its secret (``mset key list``)."""

    id: uuid.UUID
    kind: str  # "api_key" or "token"
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Throttle:
    """``limit`` failed attempts from one address within ``window``, then 429s."""

    limit: int = 20
    window: timedelta = timedelta(minutes=5)


# The address failures are counted under when the caller's is not known (a test client).
UNKNOWN_SOURCE = "unknown"


class Identity:
    def __init__(
        self,
        store: Store,
        staff_token_ttl: timedelta = timedelta(hours=12),
        throttle: Throttle | None = None,
    ) -> None:
        self.store = store
        self.staff_token_ttl = staff_token_ttl
        self.throttle = throttle or Throttle()

    def create_agency(
        self,
        name: str,
        type_: AgencyType,
        authority: str | None = None,
        rhi_provider_for: Iterable[str] = (),
    ) -> Issued:
        """``authority``: the local authority the agency belongs to, where one;
        ``rhi_provider_for``: the authorities that commission it for Return Home Interviews."""
        now = datetime.now(UTC)
        key = new_secret(API_KEY_PREFIX)
        home = authority_codes([authority])[0] if authority is not None else None
        commissions = authority_codes(rhi_provider_for)
        try:
            with self.store.session() as s:
                if self.store.agency_by_name(s, name) is not None:
                    raise AgencyExists(f"an agency named {name!r} already exists")
                agency = Agency(
                    id=uuid.uuid4(),
                    name=name,
                    type=type_.value,
                    local_authority=home,
                    created_at=now,
                )
                s.add(agency)
                s.flush()
                row = ApiKey(agency_id=agency.id, key_hash=credential_hash(key), created_at=now)
                s.add(row)
                s.flush()
                for la in commissions:
                    s.add(RhiCommission(agency_id=agency.id, local_authority=la, created_at=now))
        except IntegrityError as exc:  # a concurrent create with the same name
            raise AgencyExists(f"an agency named {name!r} already exists") from exc
        return Issued(id=agency.id, name=name, secret=key, credential_id=row.id)

    def issue_agency_key(self, name: str, retire_others: bool = False) -> Issued:
        """A further API key for an existing agency (key rotation). ``retire_others``: every
        earlier key of the agency is revoked at once (after a leak, or once the partner runs
        on the new key)."""
        now = datetime.now(UTC)
        key = new_secret(API_KEY_PREFIX)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {name!r}")
            row = ApiKey(agency_id=agency.id, key_hash=credential_hash(key), created_at=now)
            s.add(row)
            s.flush()
            if retire_others:
                self.store.revoke_api_keys(s, now, agency_id=agency.id, keep=row.id)
        return Issued(id=agency.id, name=name, secret=key, credential_id=row.id)

    def credentials(self, agency_name: str) -> list[CredentialInfo]:
        """The agency's API keys, oldest first, live or not."""
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            return [
                CredentialInfo(k.id, "api_key", k.created_at, k.revoked_at)
                for k in self.store.api_keys(s, agency.id)
            ]

    def user_credentials(self, user_id: uuid.UUID) -> list[CredentialInfo]:
        """The user's tokens, oldest first, live or not."""
        with self.store.session() as s:
            if s.get(User, user_id) is None:
                raise UserNotFound(f"no user {user_id}")
            return [
                CredentialInfo(t.id, "token", t.created_at, t.revoked_at, t.expires_at)
                for t in self.store.user_tokens(s, user_id)
            ]

    def revoke(self, credential_id: uuid.UUID) -> CredentialInfo:
        """Revoke one API key or staff token by its id; revoking one already revoked keeps
        its first revocation time."""
        now = datetime.now(UTC)
        with self.store.session() as s:
            key = s.get(ApiKey, credential_id)
            if key is not None:
                key.revoked_at = key.revoked_at or now
                return CredentialInfo(key.id, "api_key", key.created_at, key.revoked_at)
            token = s.get(UserToken, credential_id)
            if token is not None:
                token.revoked_at = token.revoked_at or now
                return CredentialInfo(
                    token.id, "token", token.created_at, token.revoked_at, token.expires_at
                )
        raise CredentialNotFound(f"no API key or staff token {credential_id}")

    def revoke_agency_keys(self, agency_name: str) -> int:
        """Revoke every live API key of the agency (its system is cut off); how many."""
        now = datetime.now(UTC)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            return self.store.revoke_api_keys(s, now, agency_id=agency.id)

    def disable_user(self, user_id: uuid.UUID) -> int:
        """The user may no longer sign in: every token of theirs is revoked, and no new one
        can be issued. Returns how many live tokens were revoked."""
        now = datetime.now(UTC)
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}")
            user.disabled_at = user.disabled_at or now
            return self.store.revoke_user_tokens(s, now, user_id=user_id)

    def issue_user_token(self, user_id: uuid.UUID) -> Issued:
        """A new token for a staff user, valid for ``staff_token_ttl``; the user's earlier
        tokens are revoked (one live token per person)."""
        now = datetime.now(UTC)
        token = new_secret(USER_TOKEN_PREFIX)
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}")
            if user.disabled_at is not None:
                raise UserDisabled(f"user {user_id} is disabled: no token can be issued")
            row = self._new_token(user.id, token, now)
            s.add(row)
            s.flush()
            self.store.revoke_user_tokens(s, now, user_id=user.id, keep=row.id)
            return Issued(
                id=user.id,
                name=user.name,
                secret=token,
                credential_id=row.id,
                expires_at=row.expires_at,
            )

    def _new_token(self, user_id: uuid.UUID, token: str, now: datetime) -> UserToken:
        return UserToken(
            id=uuid.uuid4(),
            user_id=user_id,
            token_hash=credential_hash(token),
            created_at=now,
            expires_at=now + self.staff_token_ttl,
        )

    def commission_rhi(self, agency_name: str, authorities: Iterable[str]) -> list[str]:
        """Record that these authorities commission the agency for Return Home Interviews;
        returns every authority it is now commissioned by."""
        now = datetime.now(UTC)
        codes = authority_codes(authorities)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            have = set(self.store.rhi_commissions(s, agency.id))
            for la in codes:
                if la not in have:
                    s.add(RhiCommission(agency_id=agency.id, local_authority=la, created_at=now))
            s.flush()
            return self.store.rhi_commissions(s, agency.id)

    def create_user(
        self, name: str, role: Role, agency_name: str, authorities: Iterable[str] = ()
    ) -> Issued:
        """``authorities``: the local authorities the user serves (none: authority-level
        escalations do not reach them)."""
        now = datetime.now(UTC)
        token = new_secret(USER_TOKEN_PREFIX)
        codes = authority_codes(authorities)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            user = User(
                id=uuid.uuid4(), name=name, role=role.value, agency_id=agency.id, created_at=now
            )
            s.add(user)
            s.flush()
            row = self._new_token(user.id, token, now)
            s.add(row)
            for la in codes:
                s.add(UserAuthority(user_id=user.id, local_authority=la, created_at=now))
        return Issued(
            id=user.id, name=name, secret=token, credential_id=row.id, expires_at=row.expires_at
        )

    def user_id(self, agency_name: str, user_name: str) -> uuid.UUID:
        """The id of the (first) user of that name at the agency."""
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            user = self.store.user_by_name(s, agency.id, user_name)
            if user is None:
                raise UserNotFound(f"no user named {user_name!r} at {agency_name!r}")
            return user.id

    def serve(self, user_id: uuid.UUID, authorities: Iterable[str]) -> list[str]:
        """Add authorities a user serves; returns every authority they now serve."""
        now = datetime.now(UTC)
        codes = authority_codes(authorities)
        with self.store.session() as s:
            if s.get(User, user_id) is None:
                raise UserNotFound(f"no user {user_id}")
            have = set(self.store.user_authorities(s, user_id))
            for la in codes:
                if la not in have:
                    s.add(UserAuthority(user_id=user_id, local_authority=la, created_at=now))
            s.flush()
            return self.store.user_authorities(s, user_id)

    def authenticate(self, credential: str, source: str | None) -> Principal | None:
        """``resolve``, throttled: an address (``source``) with ``throttle.limit`` failed
        attempts within ``throttle.window`` is refused with ``AuthenticationThrottled`` before
        anything is checked, so it learns nothing, valid credential or not; each failure is
        recorded under its address. A failure names no user (no credential matched), so
        nobody's account can be locked by someone else's guesses: only the address is."""
        now = datetime.now(UTC)
        since = now - self.throttle.window
        where = (source or UNKNOWN_SOURCE)[:64]
        with self.store.session() as s:
            failures, oldest = self.store.auth_failures_since(s, where, since)
        if failures >= self.throttle.limit and oldest is not None:
            raise AuthenticationThrottled((oldest - since).total_seconds())
        principal = self.resolve(credential, now)
        if principal is None:
            with self.store.session() as s:
                self.store.record_auth_failure(s, where, now, forget=since)
        return principal

    def resolve(self, credential: str, now: datetime | None = None) -> Principal | None:
        """Who a live credential belongs to; None for any other (unknown, revoked, expired,
        or a disabled user's)."""
        with self.store.session() as s:
            rows = self.store.principal_rows(
                s, credential_hash(credential), now or datetime.now(UTC)
            )
            if rows is None:
                return None
            agency, user = rows
            return Principal(
                kind="user" if user else "agency",
                agency_id=agency.id,
                agency_name=agency.name,
                agency_type=AgencyType(agency.type),
                user_id=user.id if user else None,
                user_name=user.name if user else None,
                role=Role(user.role) if user else None,
                authorities=tuple(self.store.user_authorities(s, user.id)) if user else (),
                agency_authority=agency.local_authority,
                rhi_provider_for=tuple(self.store.rhi_commissions(s, agency.id)),
            )
