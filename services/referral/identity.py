"""Agencies, users and their credentials. Secrets are shown once and stored as hashes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from mset_contract.auth import (
    API_KEY_PREFIX,
    USER_TOKEN_PREFIX,
    Principal,
    credential_hash,
    new_secret,
)
from mset_contract.vocab import AgencyType, Role
from services.referral.domain import AgencyExists, AgencyNotFound
from services.referral.store import Agency, ApiKey, Store, User, UserToken


@dataclass(frozen=True)
class Issued:
    id: uuid.UUID
    name: str
    secret: str


class Identity:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create_agency(self, name: str, type_: AgencyType) -> Issued:
        now = datetime.now(UTC)
        key = new_secret(API_KEY_PREFIX)
        try:
            with self.store.session() as s:
                if self.store.agency_by_name(s, name) is not None:
                    raise AgencyExists(f"an agency named {name!r} already exists")
                agency = Agency(id=uuid.uuid4(), name=name, type=type_.value, created_at=now)
                s.add(agency)
                s.flush()
                s.add(ApiKey(agency_id=agency.id, key_hash=credential_hash(key), created_at=now))
        except IntegrityError as exc:  # a concurrent create with the same name
            raise AgencyExists(f"an agency named {name!r} already exists") from exc
        return Issued(id=agency.id, name=name, secret=key)

    def issue_agency_key(self, name: str) -> Issued:
        """A further API key for an existing agency (key rotation)."""
        now = datetime.now(UTC)
        key = new_secret(API_KEY_PREFIX)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {name!r}")
            s.add(ApiKey(agency_id=agency.id, key_hash=credential_hash(key), created_at=now))
        return Issued(id=agency.id, name=name, secret=key)

    def create_user(self, name: str, role: Role, agency_name: str) -> Issued:
        now = datetime.now(UTC)
        token = new_secret(USER_TOKEN_PREFIX)
        with self.store.session() as s:
            agency = self.store.agency_by_name(s, agency_name)
            if agency is None:
                raise AgencyNotFound(f"no agency named {agency_name!r}")
            user = User(
                id=uuid.uuid4(), name=name, role=role.value, agency_id=agency.id, created_at=now
            )
            s.add(user)
            s.flush()
            s.add(UserToken(user_id=user.id, token_hash=credential_hash(token), created_at=now))
        return Issued(id=user.id, name=name, secret=token)

    def resolve(self, credential: str) -> Principal | None:
        with self.store.session() as s:
            rows = self.store.principal_rows(s, credential_hash(credential))
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
            )
