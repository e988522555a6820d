"""Accepting a Risk Assessment Tool: record it, deliver it to its case, answer idempotently.

A tool is one of three things, decided by the child's previous cases from the same agency
(same ``agency_child_ref`` in the same local authority — the child identity we match on):
- a **new case**: no previous case; its own ``ReferralWorkflow`` is started;
- a **reassessment**: the child has an open case; the tool is signalled to that case, which
  re-triages instead of a second case being opened;
- a **re-referral**: the child's last case is closed; a new case starts, linked to it.

Order matters for "nothing accepted is ever lost, nothing is done twice": the row is
committed first (so a retry can find it), then it is delivered (workflow started under an id
derived from the row, or the case signalled), then the row is marked delivered. A partner is
told 202 only after delivery. If Temporal cannot be reached, or does not answer within
``start_timeout_seconds`` (it is falling behind a burst), the partner is told 503 with
Retry-After and the row is **kept**, undelivered: a start that timed out may still have
reached Temporal, and removing the row then would leave that workflow without its tool, and
let the retry open a second case for the same child. The partner's retry (same
Idempotency-Key, or same partner reference) finds the row and completes the delivery; a
start uses the row's fixed workflow id, so it joins the first workflow if there is one. A
workflow that did start reads the row (``triage_facts``) and marks it delivered itself, so
it is never hidden even if the partner does not retry. An undelivered row is shown to no
one and counts as no case.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.referral import ReferralAccepted, ReferralCreate
from mset_contract.referral_workflow import ReassessedSignal, StartReferralInput
from mset_contract.temporal import referral_workflow_id
from mset_contract.types import DEFAULT_AUTHORITIES
from mset_contract.vocab import RiskLevel, Stage
from mset_platform.access import Rule
from mset_platform.cases import CaseClient, CaseClosed
from mset_platform.clock import Clock, utcnow
from mset_platform.idempotency import body_hash, canonical
from services.referral.child_identity import (
    IDENTITY_FIELDS,
    IdentityStore,
    has_identity,
)
from services.referral.domain import (
    CLOSED_STAGES,
    NotAPartnerSystem,
    ReferralNotFound,
    WorkflowUnavailable,
    check_authority,
    check_same_submission,
    matched_by,
)
from services.referral.entities import EntityStore, as_stored, mentions_of
from services.referral.ledger import Ledger
from services.referral.policy import REFERRAL_READ, REFERRAL_SUBMIT, Facts, check, require
from services.referral.report_facts import tool_columns
from services.referral.store import Referral, Store


class Intake:
    def __init__(
        self,
        store: Store,
        cases: CaseClient,
        clock: Clock = utcnow,
        authorities: Collection[str] = DEFAULT_AUTHORITIES,
        identities: IdentityStore | None = None,
        entities: EntityStore | None = None,
    ) -> None:
        self.store = store
        # Persons of concern and locations held sealed as entities, matched (ADR 0030).
        self.entities = entities
        # The child's identity, sealed, and same-child matching (ADR 0028); None: tools are
        # stored without their identity and not matched (a tool that has no keys for it).
        self.identities = identities
        self.cases = cases
        self.clock = clock
        self.authorities = frozenset(authorities)
        # Every read of a referral is a disclosure, recorded before it is answered.
        self.ledger = Ledger(store, clock)

    async def submit(
        self, principal: Principal, tool: ReferralCreate, idempotency_key: str | None
    ) -> ReferralAccepted:
        require(principal, REFERRAL_SUBMIT, NotAPartnerSystem)
        check_authority(tool.child.local_authority, self.authorities, "child.local_authority")
        existing = await run_in_threadpool(
            self._find_existing, principal.agency_id, tool.partner_reference, idempotency_key
        )
        if existing is not None:
            _same_tool(existing, tool, idempotency_key)
            return await self._answer_again(existing, principal)
        row, created = await run_in_threadpool(self._insert, principal, tool, idempotency_key)
        if not created:
            _same_tool(row, tool, idempotency_key)
            return await self._answer_again(row, principal)
        try:
            await self._deliver(row, principal)
        except Exception as exc:
            # The start or signal may have reached the case even though we saw an error: keep
            # the tool (undelivered, so no one is shown it) for the partner's retry to confirm.
            raise WorkflowUnavailable(
                "the referral could not be accepted now; it is held for your retry: send it "
                "again with the same Idempotency-Key or partner_reference"
            ) from exc
        return _accepted(row, duplicate=False)

    async def _deliver(self, row: Referral, principal: Principal) -> None:
        if row.case_referral_id is not None:
            try:
                await self.cases.reassess(
                    row.case_referral_id,
                    ReassessedSignal(
                        assessment_id=row.id,
                        assessed_at=row.submitted_at,
                        referrer_level=RiskLevel(row.referrer_level),
                    ),
                )
            except CaseClosed:
                # The case ended between our look and the signal: this tool opens a new
                # case, linked to the one that just closed.
                await run_in_threadpool(self._make_re_referral, row)
        if row.case_referral_id is None:
            await self.cases.start_referral(_start_input(row, principal))
        await run_in_threadpool(self.store.mark_started, Referral, row.id)

    async def _answer_again(self, row: Referral, principal: Principal) -> ReferralAccepted:
        if not row.workflow_started:
            # An earlier attempt recorded the row but could not confirm its delivery.
            try:
                await self._deliver(row, principal)
            except Exception as exc:
                raise WorkflowUnavailable(
                    "the referral is recorded but could not be delivered to its case; retry"
                ) from exc
        return _accepted(row, duplicate=True)

    def _find_existing(
        self, agency_id: uuid.UUID, partner_reference: str, idempotency_key: str | None
    ) -> Referral | None:
        with self.store.session() as s:
            return self.store.earlier_submission(
                s,
                Referral,
                agency_id,
                partner_reference,
                idempotency_key,
                key_reused="this Idempotency-Key was used for partner reference {earlier!r}; "
                "use a new key for a new submission",
            )

    def _insert(
        self, principal: Principal, tool: ReferralCreate, idempotency_key: str | None
    ) -> tuple[Referral, bool]:
        now = self.clock()
        referral_id = uuid.uuid4()
        doc = canonical(tool)
        try:
            with self.store.session() as s:
                case = self.store.open_case_for_child(
                    s, principal.agency_id, tool.child.agency_child_ref, tool.child.local_authority
                )
                is_open = case is not None and case.stage not in CLOSED_STAGES
                row = Referral(
                    id=referral_id,
                    agency_id=principal.agency_id,
                    partner_reference=tool.partner_reference,
                    idempotency_key=idempotency_key,
                    request_hash=body_hash(doc),
                    agency_child_ref=tool.child.agency_child_ref,
                    local_authority=tool.child.local_authority,
                    stage=case.stage if case is not None and is_open else Stage.submitted.value,
                    referrer_level=tool.referrer_judgement.level.value,
                    workflow_id=referral_workflow_id(referral_id),
                    workflow_started=False,
                    case_referral_id=case.id if case is not None and is_open else None,
                    previous_referral_id=case.id if case is not None and not is_open else None,
                    # The name, NHS number and postcode are held sealed, apart (ADR 0028).
                    # Who the persons of concern are and where the places are: sealed as
                    # entities (ADR 0030).
                    tool=as_stored(doc),
                    submitted_at=now,
                    updated_at=now,
                    **tool_columns(doc, "tool", now),
                )
                s.add(row)
                if self.identities is not None and has_identity(tool):
                    s.flush()  # the identity's row refers to the referral's
                    self._match(s, row, tool)
                if self.entities is not None and mentions_of(tool):
                    s.flush()
                    self.entities.add(s, row, tool)
            return row, True
        except IntegrityError:
            # A concurrent identical submission won the unique constraint: answer with it.
            winner = self._find_existing(
                principal.agency_id, tool.partner_reference, idempotency_key
            )
            if winner is None:
                raise
            return winner, False

    def _match(self, s: Session, row: Referral, tool: ReferralCreate) -> None:
        """Seal the tool's identity and link it to the children already known: the same NHS
        number at once, likely matches as candidates for the coordinator. In the insert's
        transaction, so a tool is never recorded without its identity or its links."""
        assert self.identities is not None
        own = {c for c in (row.case_referral_id, row.previous_referral_id) if c is not None}
        self.identities.seal_and_link(s, row.id, row.local_authority, tool, row.submitted_at, own)

    def _make_re_referral(self, row: Referral) -> None:
        assert row.case_referral_id is not None
        self.store.make_re_referral(row.id, row.case_referral_id)
        row.previous_referral_id, row.case_referral_id = row.case_referral_id, None
        row.stage = Stage.submitted.value

    def readable(
        self, principal: Principal, referral_id: uuid.UUID, purpose: str, rule: Rule = REFERRAL_READ
    ) -> Referral:
        """The referral, for a caller the access policy lets do ``rule`` to it (by default,
        read it); records the disclosure. Refused: 403 for a caller who may see it, else
        the 404 a referral that does not exist gets."""
        not_found = f"no referral {referral_id} that you may see"
        with self.store.session() as s:
            row = s.get(Referral, referral_id)
            if row is None or not row.workflow_started:
                raise ReferralNotFound(not_found)
            check(principal, rule, self.facts(s, row), not_found)
        self.ledger.read(principal, row, purpose)
        return row

    def facts(self, s: Session, row: Referral, owner_agency_id: uuid.UUID | None = None) -> Facts:
        """What the access policy checks a referral against: its agency, its authority and
        the other authorities its case has told about it."""
        case_id = row.case_referral_id or row.id
        return Facts(
            agency_id=row.agency_id,
            owner_agency_id=owner_agency_id,
            local_authority=row.local_authority,
            told=self.store.authorities_told(s, case_id),
        )

    def case_facts(self, row: Referral, owner_agency_id: uuid.UUID | None = None) -> Facts:
        with self.store.session() as s:
            return self.facts(s, row, owner_agency_id)

    def delivered(self, referral_id: uuid.UUID) -> Referral:
        """The referral, with no access check: for callers that check access another way
        (then call ``disclose``)."""
        with self.store.session() as s:
            row = s.get(Referral, referral_id)
        if row is None or not row.workflow_started:
            raise ReferralNotFound(f"no referral {referral_id} that you may see")
        return row

    def disclose(self, principal: Principal, referral_id: uuid.UUID, purpose: str) -> None:
        with self.store.session() as s:
            row = s.get(Referral, referral_id)
        if row is None:
            raise ReferralNotFound(f"no referral {referral_id} that you may see")
        self.ledger.read(principal, row, purpose)

    def case_row(self, row: Referral) -> Referral:
        """The case-opening referral a reassessment belongs to (or the row itself)."""
        if row.case_referral_id is None:
            return row
        with self.store.session() as s:
            case = s.get(Referral, row.case_referral_id)
            if case is None:
                raise ReferralNotFound(f"no case {row.case_referral_id}")
            return case


_SEALED_MENTIONS = (("persons_of_concern", "identifiers"), ("locations", "place"))


def _sealed_parts(tool: dict[str, Any]) -> list[str]:
    """The parts of a tool held sealed, apart from the stored tool, that it carries; every
    such part when it carries none (then the first did: a retry that leaves one out is
    another submission too)."""
    child = tool.get("child", {})
    carried = [f"child.{f}" for f in IDENTITY_FIELDS if child.get(f) is not None] + [
        part
        for part, key in _SEALED_MENTIONS
        if any(m.get(key) is not None for m in tool.get(part, []))
    ]
    return carried or [f"child.{f}" for f in IDENTITY_FIELDS] + [p for p, _ in _SEALED_MENTIONS]


def _same_tool(row: Referral, tool: ReferralCreate, idempotency_key: str | None) -> None:
    """The earlier submission ``row`` is answered again only for the same tool. The stored
    tool is compared with this one as it would be stored, so only what differs is named;
    a difference only in the sealed parts names those parts."""
    again = canonical(tool)
    check_same_submission(
        row.tool,
        row.request_hash,
        again,
        what="referral",
        by=matched_by(row.idempotency_key, idempotency_key),
        as_stored=as_stored,
        sealed=_sealed_parts(again),
    )


def _start_input(row: Referral, principal: Principal) -> StartReferralInput:
    return StartReferralInput(
        referral_id=row.id,
        agency_id=row.agency_id,
        agency_type=principal.agency_type,
        local_authority=row.local_authority,
        submitted_at=row.submitted_at,
        referrer_level=RiskLevel(row.referrer_level),
        previous_referral_id=row.previous_referral_id,
    )


def _accepted(row: Referral, *, duplicate: bool) -> ReferralAccepted:
    case_id = row.case_referral_id or row.id
    kind = (
        "reassessment"
        if row.case_referral_id
        else "re_referral"
        if row.previous_referral_id
        else "new_case"
    )
    return ReferralAccepted(
        referral_id=row.id,
        case_id=case_id,
        kind=kind,
        workflow_id=referral_workflow_id(case_id),
        stage=Stage(row.stage),
        submitted_at=row.submitted_at,
        duplicate=duplicate,
    )
