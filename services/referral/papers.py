"""A case's panel papers: who, why and what has happened, from the tool this service holds
and the case's state, as the reader's role may see them; each read is a disclosure.

The rules' readable reasons are asked again of the rules service (``POST /v1/evaluate``):
an evaluation is a pure function of its input, so the latest triage's own input (the tool's
facts on that day, the episodes and actions the case held then, that rules version) gives
that triage's reasons. They are never kept in the workflow's state or published.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import httpx
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.catalogue import load_catalogue
from mset_contract.ledger import ShownTo
from mset_contract.papers import (
    CaseWho,
    CaseWhoPage,
    PanelPapers,
    PaperAction,
    PaperArea,
    PaperDecision,
    PaperEpisode,
    PaperIndicator,
    PaperLocation,
    PaperPerson,
    PaperProgress,
    PaperRule,
    PapersHistory,
    PapersWho,
    PapersWhy,
)
from mset_contract.referral import MissingChild, ReferralCreate
from mset_contract.referral_workflow import (
    ReferralState,
    TriageFacts,
    TriageFactsInput,
    case_as_it_was,
    triage_input,
)
from mset_contract.triage import TriageInput, TriageResult
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import AgencyType, RiskLevel, Role, Stage
from services.referral.activities import ReferralActivities
from services.referral.domain import NotAService
from services.referral.entity_desk import PatternDesk
from services.referral.intake import Intake
from services.referral.ledger import PAPERS_WITHHELD, who_disclosed
from services.referral.policy import CASES_WHO, PAPERS_READ, require
from services.referral.store import Agency, Referral, recorded_state

log = logging.getLogger("mset.referral.papers")

# What a panel member is not shown (as on the meeting service's agendas): the free-text
# rationales and progress notes. Coordinators and chairs see everything.
WITHHELD = PAPERS_WITHHELD


class Rules(Protocol):
    async def evaluate(self, inp: TriageInput) -> TriageResult | None:
        """The rules' result, or None when they cannot be asked just now."""


class HttpRules:
    def __init__(self, base_url: str, service_token: str, timeout: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {service_token}"},
        )

    async def evaluate(self, inp: TriageInput) -> TriageResult | None:
        try:
            resp = await self._client.post("/v1/evaluate", json=inp.model_dump(mode="json"))
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("the rules service could not explain a triage: %s", type(exc).__name__)
            return None
        return TriageResult.model_validate(resp.json())

    async def aclose(self) -> None:
        await self._client.aclose()


class PapersDesk:
    def __init__(self, intake: Intake, rules: Rules) -> None:
        self.intake = intake
        self.rules = rules
        self.facts = ReferralActivities(intake.store)
        # The case's links through people and places (ADR 0030); None: not shown.
        self.patterns: PatternDesk | None = None

    async def papers(self, principal: Principal, referral_id: uuid.UUID) -> PanelPapers:
        row = await run_in_threadpool(
            self.intake.readable, principal, referral_id, "panel", PAPERS_READ
        )
        assert principal.role is not None  # the policy admits panel roles only
        case = await run_in_threadpool(self.intake.case_row, row)
        # The read model, never the workflow (docs/decisions/0022): the case records its
        # decisions, actions and episodes there as they happen.
        state = recorded_state(case)
        tool_row = await run_in_threadpool(self._tool_row, row, state)
        tool = ReferralCreate.model_validate(tool_row.tool, context={"stored": True})
        owners = {a.owner_agency_id for a in state.actions} if state else set()
        agencies = await run_in_threadpool(self._agencies, {tool_row.agency_id, *owners})
        rules = await self._rules(state)
        papers = PanelPapers(
            referral_id=row.id,
            case_id=case.id,
            stage=state.stage if state else Stage(case.stage),
            level=(state.level if state else RiskLevel(case.level) if case.level else None),
            as_of=case.updated_at,
            sequence=case.record_seq or 0,
            who=_who(tool, agencies[tool_row.agency_id]),
            why=_why(tool, state, rules),
            history=_history(state, {i: a.name for i, a in agencies.items()}),
        )
        if self.patterns is not None:
            papers.links = await run_in_threadpool(self.patterns.of_case, principal, case.id)
            papers.who.links = papers.links.summary if papers.links.entities else None
        return _trimmed(papers, principal.role)

    async def who(
        self,
        principal: Principal,
        case_ids: Sequence[uuid.UUID],
        shown: ShownTo | None = None,
    ) -> CaseWhoPage:
        """Who each case is about, for the meeting service's agendas and minutes (the MSET
        services' token only: the meeting service checks its reader's role first, and what
        it shows every panel role is what the papers show every panel role). Each case's
        read is recorded, by the services' principal, purpose ``meeting_who``."""
        require(principal, CASES_WHO, NotAService)
        return await run_in_threadpool(self._who_of, principal, case_ids, shown)

    def _who_of(
        self, principal: Principal, case_ids: Sequence[uuid.UUID], shown: ShownTo | None = None
    ) -> CaseWhoPage:
        store = self.intake.store
        with store.session() as s:
            tools = store.latest_tools(s, set(case_ids))
            agencies = {
                a.id: a
                for a in s.scalars(
                    select(Agency).where(Agency.id.in_({r.agency_id for r in tools.values()}))
                )
            }
            found = []
            for case_id, row in tools.items():
                who = _who_of_row(row, agencies[row.agency_id])
                if self.patterns is not None:
                    # Counts only: the agenda shows every panel role how the child is linked.
                    who.links = self.patterns.summary(case_id)
                found.append(CaseWho(case_id=case_id, referral_id=row.id, who=who))
        # Recorded before it is answered: one entry per case, to the person the service
        # names as its reader (an agenda or minutes shown to a panel), else to the service.
        self.intake.ledger.record(who_disclosed(principal, [c.case_id for c in found], shown))
        return CaseWhoPage(cases=found)

    def _tool_row(self, row: Referral, state: ReferralState | None) -> Referral:
        """The latest tool of the case (a reassessment's, once the case has taken it)."""
        wanted = state.assessment_id if state and state.assessment_id else row.id
        with self.intake.store.session() as s:
            found = s.get(Referral, wanted)
            return found if found is not None and found.origin == "tool" else row

    def _agencies(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Agency]:
        with self.intake.store.session() as s:
            return {i: a for i in ids if (a := s.get(Agency, i)) is not None}

    async def _rules(self, state: ReferralState | None) -> list[PaperRule]:
        if state is None or state.triage is None or state.assessment_id is None:
            return []
        t = state.triage
        result: TriageResult | None = None
        try:
            facts = await run_in_threadpool(
                self.facts.triage_facts,
                TriageFactsInput(assessment_id=state.assessment_id, as_of=t.as_of),
            )
            result = await self.rules.evaluate(_triage_input(facts, state, t.as_of))
        except Exception:  # the reasons are a help to the panel, not a condition of the papers
            log.warning("a triage could not be explained", exc_info=True)
        explained = [f for f in (result.fired if result else []) if f.rule in t.fired_rules]
        seen = {f.rule for f in explained}
        return [
            *(
                PaperRule(
                    rule=f.rule, reason=f.reason, subject=f.subject, points=f.points, level=f.level
                )
                for f in explained
            ),
            *(PaperRule(rule=r) for r in t.fired_rules if r not in seen),
        ]


def _triage_input(facts: TriageFacts, state: ReferralState, as_of: datetime) -> TriageInput:
    """The latest triage's own input: what the case held at that moment, built as the
    workflow builds it."""
    summary = state.triage
    assert summary is not None
    return triage_input(facts, case_as_it_was(state, as_of), as_of, summary.ruleset_version)


def _who_of_row(row: Referral, agency: Agency) -> PapersWho:
    """Who a stored referral is about: from its tool, or for a case opened from missing-person
    reports, from the report's child (reference, date of birth, authority)."""
    if row.origin == "tool":
        return _who(ReferralCreate.model_validate(row.tool, context={"stored": True}), agency)
    child = MissingChild.model_validate(row.tool["child"], context={"stored": True})
    return PapersWho(
        agency_child_ref=child.agency_child_ref,
        age_years=age_on(child.date_of_birth, today_uk()),
        gender=None,
        legal_status=None,
        local_authority=child.local_authority,
        area_of_residence=None,
        disability_or_sen=None,
        known_to_services=None,
        referring_agency=agency.name,
        referring_agency_type=AgencyType(agency.type),
        referrer_role=None,
    )


def _who(tool: ReferralCreate, agency: Agency) -> PapersWho:
    c = tool.child
    return PapersWho(
        agency_child_ref=c.agency_child_ref,
        age_years=age_on(c.date_of_birth, today_uk()),
        gender=c.gender,
        legal_status=c.legal_status,
        local_authority=c.local_authority,
        area_of_residence=c.area_of_residence,
        disability_or_sen=c.disability_or_sen,
        known_to_services=c.known_to_services,
        referring_agency=agency.name,
        referring_agency_type=AgencyType(agency.type),
        referrer_role=tool.referrer.role,
    )


def _why(tool: ReferralCreate, state: ReferralState | None, rules: list[PaperRule]) -> PapersWhy:
    catalogue = load_catalogue(tool.catalogue_version)
    by_area: dict[str, list[PaperIndicator]] = defaultdict(list)
    for i in tool.indicators:
        entry = catalogue.get(i.code)
        assert entry is not None  # checked when the tool was accepted
        by_area[entry.area].append(
            PaperIndicator(code=i.code, label=entry.label, kind=entry.kind, recency=i.recency)
        )
    t = state.triage if state else None
    return PapersWhy(
        indicators=[
            PaperArea.model_validate({"area": a, "indicators": v}) for a, v in by_area.items()
        ],
        exploitation_types=tool.exploitation_types,
        persons_of_concern=[
            PaperPerson.model_validate(p.model_dump(exclude={"identifiers"}))
            for p in tool.persons_of_concern
        ],
        locations=[
            PaperLocation.model_validate(x.model_dump(exclude={"place"})) for x in tool.locations
        ],
        referrer_level=tool.referrer_judgement.level,
        referrer_rationale=tool.referrer_judgement.rationale,
        suggested_level=t.suggested_level if t else None,
        score=t.score if t else None,
        ruleset_version=t.ruleset_version if t else None,
        triaged_at=t.as_of if t else None,
        rules=rules,
    )


def _history(state: ReferralState | None, names: dict[uuid.UUID, str]) -> PapersHistory:
    if state is None:
        return PapersHistory()
    decisions: list[PaperDecision] = []
    if state.pre_mset is not None:
        d = state.pre_mset
        decisions.append(
            PaperDecision(
                kind="pre_mset",
                decision_id=d.decision_id,
                decided_at=d.decided_at,
                meeting_id=d.meeting_id,
                outcome=d.outcome,
                level=d.level,
                rationale=d.rationale,
            )
        )
    decisions += [
        PaperDecision(
            kind="mset_review",
            decision_id=r.review_id,
            decided_at=r.decided_at,
            meeting_id=r.meeting_id,
            level=r.level,
            rationale=r.rationale,
        )
        for r in state.reviews
    ]
    return PapersHistory(
        decisions=decisions,
        actions=[
            PaperAction(
                action_id=a.action_id,
                owner_agency_id=a.owner_agency_id,
                owner_agency=names.get(a.owner_agency_id),
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                description=a.description,
                status="open" if a.open else "completed",
                completed_at=a.completed_at,
                progress=[
                    PaperProgress(at=p.at, completed=p.completed, note=p.note) for p in a.progress
                ],
            )
            for a in state.actions
        ],
        missing_episodes=[
            PaperEpisode(
                episode_id=e.episode_id,
                reported_at=e.reported_at,
                returned_at=e.returned_at,
                rhi_offered_at=e.rhi_offered_at,
                rhi_outcome=e.rhi_outcome,
                located_in_authority=e.located_in_authority,
            )
            for e in state.missing_episodes
        ],
        previous_case_id=state.previous_referral_id,
    )


def _trimmed(papers: PanelPapers, role: Role) -> PanelPapers:
    paths = WITHHELD.get(role, ())
    if not paths:
        return papers
    why = papers.why.model_copy(update={"referrer_rationale": None})
    history = papers.history.model_copy(
        update={
            "decisions": [
                d.model_copy(update={"rationale": None}) for d in papers.history.decisions
            ],
            "actions": [
                a.model_copy(
                    update={"progress": [p.model_copy(update={"note": None}) for p in a.progress]}
                )
                for a in papers.history.actions
            ],
        }
    )
    return papers.model_copy(update={"why": why, "history": history, "withheld": list(paths)})
