"""The agency directory: which agencies exist, for staff choosing an action's owner and for
the other MSET services naming agencies (they never read these tables)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from mset_contract.agencies import AgencyPage, AgencyPublic
from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType
from mset_platform.paging import FIRST_PAGE, PageRequest
from services.referral.domain import NotStaff, RequestInvalid
from services.referral.policy import AGENCY_READ, DIRECTORY_READ, require
from services.referral.store import Agency, Store

# Who may read it: services/referral/policy.py (DIRECTORY_READ). A partner system (an API
# key) is told its own agency and needs no directory.
MAX_IDS = 100


def may_read_directory(principal: Principal) -> None:
    require(principal, DIRECTORY_READ, NotStaff)


class Directory:
    def __init__(self, store: Store) -> None:
        self.store = store

    def page(
        self,
        principal: Principal,
        *,
        at: PageRequest = FIRST_PAGE,
        ids: Sequence[uuid.UUID] = (),
        type_: AgencyType | None = None,
        local_authority: str | None = None,
    ) -> AgencyPage:
        may_read_directory(principal)
        if len(ids) > MAX_IDS:
            raise RequestInvalid("query.id", f"at most {MAX_IDS} ids at once")
        with self.store.session() as s:
            got = self.store.agencies(
                s,
                page=at,
                ids=ids,
                type_=type_.value if type_ else None,
                local_authority=local_authority,
            )
            commissions = self.store.commissions_of(s, [a.id for a in got.rows])
            agencies = [_public(a, commissions.get(a.id, [])) for a in got.rows]
        return AgencyPage(items=agencies, next_cursor=got.next_cursor)

    def one(self, principal: Principal, agency_id: uuid.UUID) -> AgencyPublic | None:
        require(principal, AGENCY_READ, NotStaff)
        found = self.page(principal, at=PageRequest(limit=1), ids=[agency_id]).items
        return found[0] if found else None

    def unknown(self, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``ids`` that name no agency."""
        with self.store.session() as s:
            return set(ids) - self.store.known_agencies(s, ids)


def _public(a: Agency, commissions: list[str]) -> AgencyPublic:
    return AgencyPublic(
        agency_id=a.id,
        name=a.name,
        type=AgencyType(a.type),
        local_authority=a.local_authority,
        rhi_provider_for=commissions,
    )
