"""Subject access: everything the MSET services hold about one child, as one document, for
the DPO answering a subject access request (UK GDPR art. 15; docs/ledger.md).

The child is named by one of their referrals' ids, or by the referring agency's own reference
for them (with the agency: references are the partners' own, so two agencies may use the same
one for different children). What is gathered, each part from the service that holds it,
through its API (ADR 0014): the tools and missing-person reports this service holds; each
case's record from its workflow (stages, decisions, actions, episodes, exit); what the meeting
service and the notifications service hold about each case (``GET /v1/cases/{id}/record``,
service token); and every ledger entry about the child. A part that cannot be gathered just now
is named in ``incomplete``: the export never quietly leaves it out. The export is itself a
disclosure, recorded before it is answered, as is every DPO read of the ledger.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from mset_contract.auth import Principal
from mset_contract.ledger import (
    DisclosurePurpose,
    DisclosureView,
    SubjectAccessExport,
)
from mset_platform.cases import CaseClient, CaseError
from mset_platform.clock import Clock, utcnow
from services.referral.child_identity import IdentityStore
from services.referral.ledger import Disclosed, Ledger, to
from services.referral.policy import SUBJECT_ACCESS, Rule, require
from services.referral.store import MissingEpisode, Referral, Store

log = logging.getLogger("mset.referral.subject")


class NotTheDpo(Exception):
    """Only the Data Protection Officer reads the ledger and exports subject access."""


class ChildNotFound(Exception):
    """No child held under that referral id or reference."""


class ChildAmbiguous(Exception):
    """A child's reference names no child without its agency (``field``: what to add)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def require_dpo(principal: Principal, rule: Rule = SUBJECT_ACCESS) -> None:
    """The access policy's rows for the ledger and subject access (the DPO alone)."""
    require(principal, rule, NotTheDpo)


class CaseRecordSource(Protocol):
    """Another service's record of a case (``GET /v1/cases/{id}/record``)."""

    name: str

    async def record(self, case_id: uuid.UUID) -> dict[str, Any]: ...


class HttpCaseRecordSource:
    def __init__(self, name: str, base_url: str, service_token: str, timeout: float = 10.0):
        self.name = name
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )

    async def record(self, case_id: uuid.UUID) -> dict[str, Any]:
        resp = await self._client.get(f"/v1/cases/{case_id}/record")
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    async def aclose(self) -> None:
        await self._client.aclose()


class Child:
    """Who the request is about, and what this service holds of them."""

    def __init__(self, agency_id: uuid.UUID, ref: str, authority: str | None) -> None:
        self.agency_id = agency_id
        self.ref = ref
        self.authority = authority
        self.referrals: list[Referral] = []
        self.episodes: list[MissingEpisode] = []

    @property
    def case_ids(self) -> list[uuid.UUID]:
        return sorted({r.case_referral_id or r.id for r in self.referrals}, key=str)


class SubjectAccess:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        cases: CaseClient,
        sources: Sequence[CaseRecordSource] = (),
        clock: Clock = utcnow,
        identities: IdentityStore | None = None,
    ) -> None:
        self.store = store
        # The child's identity, held sealed apart from the tool (ADR 0028): part of the export.
        self.identities = identities
        self.ledger = ledger
        self.cases = cases
        self.sources = list(sources)
        self.clock = clock

    def find(self, child: str, agency_id: uuid.UUID | None) -> Child:
        """The child named by a referral id, or by an agency's reference (with ``agency``)."""
        try:
            referral_id: uuid.UUID | None = uuid.UUID(child)
        except ValueError:
            referral_id = None
        with self.store.session() as s:
            if referral_id is not None:
                row = s.get(Referral, referral_id)
                if row is None or not row.workflow_started:
                    raise ChildNotFound(f"no referral {child}")
                found = Child(row.agency_id, row.agency_child_ref, row.local_authority)
            else:
                if agency_id is None:
                    raise ChildAmbiguous(
                        "query.agency",
                        "a child's reference is the referring agency's own: give that "
                        "agency's id (or name the child by a referral id)",
                    )
                found = Child(agency_id, child, None)
            found.referrals = self.store.child_referrals(
                s, found.agency_id, found.ref, found.authority
            )
            if not found.referrals:
                raise ChildNotFound(f"no child with the reference {child!r} at that agency")
            found.episodes = self.store.case_episodes(
                s, found.case_ids, found.agency_id, found.ref, found.authority
            )
            for r in found.referrals:
                s.expunge(r)
            for e in found.episodes:
                s.expunge(e)
        return found

    async def export(
        self, principal: Principal, child: str, agency_id: uuid.UUID | None
    ) -> SubjectAccessExport:
        require_dpo(principal)
        from starlette.concurrency import run_in_threadpool

        found = await run_in_threadpool(self.find, child, agency_id)
        incomplete: list[str] = []
        cases: list[dict[str, Any]] = []
        for case_id in found.case_ids:
            try:
                state = await self.cases.state(case_id)
                cases.append({"case_id": str(case_id), **state.model_dump(mode="json")})
            except CaseError as exc:
                cases.append({"case_id": str(case_id), "record": None})
                incomplete.append(
                    f"case {case_id}: its record could not be read ({type(exc).__name__})"
                )
        episodes: list[dict[str, Any]] = []
        for e in found.episodes:
            live: dict[str, Any] | None
            try:
                live = (await self.cases.episode_state(e.id)).model_dump(mode="json")
            except CaseError:
                live = None
                incomplete.append(f"missing episode {e.id}: its record could not be read")
            episodes.append(
                {
                    "episode_id": str(e.id),
                    "case_id": str(e.case_referral_id) if e.case_referral_id else None,
                    "partner_reference": e.partner_reference,
                    "reported_at": e.reported_at.isoformat(),
                    "report": e.report,
                    "record": live,
                }
            )
        held: dict[str, list[dict[str, Any]]] = {s.name: [] for s in self.sources}
        for source in self.sources:
            for case_id in found.case_ids:
                try:
                    held[source.name].append(
                        {"case_id": str(case_id), **await source.record(case_id)}
                    )
                except httpx.HTTPError as exc:
                    incomplete.append(
                        f"{source.name} service, case {case_id}: could not be asked just now "
                        f"({type(exc).__name__})"
                    )
        # Recorded before it is answered; the export lists its own entry too.
        await run_in_threadpool(
            self.ledger.record,
            [
                Disclosed(
                    case_id=c,
                    view=DisclosureView.subject_access,
                    purpose=DisclosurePurpose.statutory_duty,
                    **to(principal),
                )
                for c in found.case_ids
            ],
        )
        disclosures = await run_in_threadpool(
            lambda: self.ledger.all(
                case_ids=found.case_ids, record_ids=[e.id for e in found.episodes]
            )
        )
        return SubjectAccessExport(
            generated_at=self.clock(),
            generated_by=principal.user_id or principal.agency_id,
            child={
                "agency_id": str(found.agency_id),
                "agency_child_ref": found.ref,
                "local_authority": found.authority,
                "case_ids": [str(c) for c in found.case_ids],
            },
            referrals=[self._with_identity(_referral(r), r) for r in found.referrals],
            cases=cases,
            missing_episodes=episodes,
            meetings=held.get("meeting", []),
            notifications=held.get("notifications", []),
            disclosures=disclosures,
            incomplete=incomplete,
        )

    def _with_identity(self, out: dict[str, Any], r: Referral) -> dict[str, Any]:
        if self.identities is None:
            return out
        with self.store.session() as s:
            found = self.identities.identity(s, r.id)
        out["child_identity"] = found.model_dump(mode="json") if found is not None else None
        return out


def _referral(r: Referral) -> dict[str, Any]:
    return {
        "referral_id": str(r.id),
        "case_id": str(r.case_referral_id or r.id),
        "previous_case_id": str(r.previous_referral_id) if r.previous_referral_id else None,
        "origin": r.origin,
        "partner_reference": r.partner_reference,
        "submitted_at": r.submitted_at.isoformat(),
        "stage": r.stage,
        "level": r.level,
        "exit_reason": r.exit_reason,
        "tool": r.tool,
    }


def to_html(doc: SubjectAccessExport) -> str:
    """A printable page: every part as a heading and its content, marked OFFICIAL-SENSITIVE
    at the top and bottom (the browser's print gives a PDF). Everything is escaped."""
    import json

    def block(title: str, value: Any) -> str:
        body = json.dumps(value, indent=2, sort_keys=True, default=str)
        return f"<h2>{html.escape(title)}</h2>\n<pre>{html.escape(body)}</pre>\n"

    marking = '<p class="marking"><strong>OFFICIAL-SENSITIVE</strong></p>'
    parts = [
        block("The child", doc.child),
        block("Referrals (the tools as submitted)", doc.referrals),
        block("Cases (stages, decisions, actions, missing episodes, exit)", doc.cases),
        block("Missing episodes", doc.missing_episodes),
        block("Meetings", doc.meetings),
        block("Notifications", doc.notifications),
        block(
            "Disclosures (the information-sharing ledger)",
            [d.model_dump(mode="json") for d in doc.disclosures],
        ),
    ]
    if doc.incomplete:
        parts.insert(0, block("Not gathered (ask again)", doc.incomplete))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Subject access export — OFFICIAL-SENSITIVE</title>"
        "<style>body{font-family:sans-serif;margin:2em}.marking{text-align:center;"
        "border:2px solid #000;padding:.3em}pre{white-space:pre-wrap;font-size:9pt}</style>"
        f"</head><body>\n{marking}\n<h1>Subject access export</h1>\n"
        f"<p>Generated {html.escape(doc.generated_at.isoformat())} by "
        f"{html.escape(str(doc.generated_by))}.</p>\n"
        + "".join(parts)
        + f"{marking}\n</body></html>\n"
    )
