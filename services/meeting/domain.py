"""Meeting domain: who may do what, which cases a panel considers and in what order, what
each role may see of them, and the domain errors. Plain logic: no web, database or Temporal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from mset_contract.auth import Principal
from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.meeting import (
    ActionView,
    AgendaItemPublic,
    AgendaReason,
    AgreedAction,
    CaseSummary,
    DecisionKind,
    LastDecision,
    MeetingStatus,
    RecordedVia,
    TriageView,
)
from mset_contract.referral_workflow import (
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionResult,
    ReferralState,
)
from mset_contract.triage import EscalationKind
from mset_contract.vocab import MeetingKind, PreMsetOutcome, RiskLevel, Role, Stage

# --- errors --------------------------------------------------------------------------------


class MeetingError(Exception):
    """Base of the meeting service's domain errors."""


class NotAllowed(MeetingError):
    """The caller's role may not do this."""


class MeetingNotFound(MeetingError):
    pass


class ItemNotFound(MeetingError):
    pass


class ScheduleNotFound(MeetingError):
    pass


class Conflict(MeetingError):
    """The request collides with the meeting's or item's current state (HTTP 409)."""


class MeetingClosed(Conflict):
    pass


class AgendaFixed(Conflict):
    """Decisions have been recorded: the agenda can no longer be redrawn."""


class ItemAlreadyDecided(Conflict):
    pass


class ItemBeingDecided(Conflict):
    """Another chair's decision on this item is being recorded right now."""


class UndecidedItems(Conflict):
    """Closing would leave items undecided, and the caller did not ask to carry them over."""


class DecisionInFlight(Conflict):
    """A decision is being recorded on one of the items right now."""


class RequestInvalid(MeetingError):
    """A request names something that does not exist, or cannot be; ``field`` says which."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class DecisionInvalid(MeetingError):
    """The decision cannot be sent as it is; ``field`` says which part and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class CasesUnavailable(MeetingError):
    """Temporal could not be reached for the meeting schedules. (A case that cannot be
    reached is ``mset_platform.cases.CaseUnreachable``.)"""


# --- who may do what -----------------------------------------------------------------------


class Permission(StrEnum):
    read = "read"  # meetings, agendas, attendance, minutes
    prepare = "prepare"  # attendance, redraw the agenda
    call_meeting = "call_meeting"  # call an extraordinary LMAPS meeting
    decide = "decide"
    close = "close"
    run_schedules = "run_schedules"
    attendance_report = "attendance_report"


# The one table of who may do what. Partner systems (agency API keys), providers, managers
# and admins have no business with panel papers; analysts see the aggregate attendance only.
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.read: frozenset({Role.coordinator, Role.chair, Role.panel_member}),
    Permission.prepare: frozenset({Role.coordinator}),
    Permission.call_meeting: frozenset({Role.coordinator, Role.chair}),
    Permission.decide: frozenset({Role.chair}),
    Permission.close: frozenset({Role.coordinator, Role.chair}),
    Permission.run_schedules: frozenset({Role.coordinator}),
    Permission.attendance_report: frozenset({Role.coordinator, Role.analyst}),
}

_DOING = {
    Permission.read: "read meeting papers",
    Permission.prepare: "prepare a meeting (the coordinator does)",
    Permission.call_meeting: "call an extraordinary meeting",
    Permission.decide: "record panel decisions (the chair does)",
    Permission.close: "close a meeting",
    Permission.run_schedules: "run meeting schedules (the coordinator does)",
    Permission.attendance_report: "see the attendance report",
}


def allowed(principal: Principal, permission: Permission) -> bool:
    return principal.has_role(*PERMISSIONS[permission])


def require(principal: Principal, permission: Permission) -> Role:
    if not allowed(principal, permission) or principal.role is None:
        raise NotAllowed(f"your role may not {_DOING[permission]}")
    return principal.role


def require_in(
    principal: Principal, permission: Permission, meeting_id: UUID, local_authority: str
) -> Role:
    """``require`` for one meeting: the role may (else 403, whatever the id), and the caller
    serves the meeting's authority. A meeting of an authority the caller does not serve is
    answered as one that does not exist (404, word for word): its agenda and minutes are
    about that authority's children, and the panels of each authority see their own
    (docs/access.md). Identity records whom each person serves (``mset user serve``)."""
    role = require(principal, permission)
    if local_authority not in principal.authorities:
        raise MeetingNotFound(f"no meeting {meeting_id}")
    return role


def require_authority(principal: Principal, permission: Permission, local_authority: str) -> Role:
    """``require`` for an act on an authority's meetings (calling one, triggering its
    schedule): only for one who serves it (403 naming the authority: its code is no secret)."""
    role = require(principal, permission)
    if local_authority not in principal.authorities:
        served = ", ".join(principal.authorities) or "no authority recorded"
        raise NotAllowed(
            f"only staff who serve {local_authority} may {_DOING[permission]} for it; you "
            f"serve {served} (an administrator records the authorities you serve: "
            "mset user serve)"
        )
    return role


def undecided_refusal(
    undecided: int, items: int, kind: MeetingKind, local_authority: str
) -> UndecidedItems:
    return UndecidedItems(
        f"{undecided} of {items} agenda items are undecided: decide them, or close with "
        '{"carry_over": true} to carry them over to the next '
        f"{kind.value} meeting of {local_authority}"
    )


# --- what each role may see ----------------------------------------------------------------

# Paths in an agenda item (AgendaItemPublic) each role may NOT see; ``[]`` walks a list.
# Coordinator and chair see the whole item. Panel members see the facts they discuss (levels,
# rules that fired, episodes, actions with their descriptions, breaches, outcomes) but not
# the free text other professionals wrote to explain a decision or report progress: that is
# presented in the meeting by the chair, not circulated (proportionate sharing:
# docs/architecture.md §1).
WITHHELD: dict[Role, tuple[str, ...]] = {
    Role.coordinator: (),
    Role.chair: (),
    Role.panel_member: (
        "case.last_decision.rationale",
        "case.open_actions[].last_progress_note",
        "decision.rationale",
        "decision.lmaps_reason",
        "lmaps_reason",
    ),
}


def _blank(node: Any, parts: Sequence[str]) -> None:
    if node is None or not parts:
        return
    head, rest = parts[0], parts[1:]
    is_list = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return
    if is_list:
        for child in node[key] or []:
            _blank(child, rest)
    elif rest:
        _blank(node[key], rest)
    else:
        node[key] = None


def item_for(role: Role, item: AgendaItemPublic) -> AgendaItemPublic:
    """The agenda item as ``role`` may see it; what was left out is named in ``withheld``."""
    if role not in WITHHELD:
        raise NotAllowed("your role may not read meeting papers")
    paths = WITHHELD[role]
    if not paths:
        return item
    data = item.model_dump(mode="json")
    for path in paths:
        _blank(data, path.split("."))
    data["withheld"] = list(paths)
    return AgendaItemPublic.model_validate(data)


# --- agendas -------------------------------------------------------------------------------

# The case stages each panel considers (the visibility query narrows to these).
PANEL_STAGES: dict[MeetingKind, tuple[Stage, ...]] = {
    MeetingKind.pre_mset: (Stage.awaiting_pre_mset,),
    MeetingKind.mset: (Stage.awaiting_mset, Stage.active_plan),
    MeetingKind.lmaps: (Stage.awaiting_mset, Stage.active_plan),
}

# Escalations that mean something the plan promised did not happen. An overdue action is
# read from the actions themselves (it stops being a breach once it is completed).
BREACH_ESCALATIONS = frozenset(
    {EscalationKind.rhi_not_offered, EscalationKind.reassessment_overdue}
)


@dataclass(frozen=True)
class AgendaEntry:
    referral_id: UUID
    reasons: list[AgendaReason]
    risk_level: RiskLevel
    waiting_since: datetime
    case: CaseSummary
    lmaps_referral_id: UUID | None = None
    lmaps_reason: str | None = None


@dataclass(frozen=True)
class LmapsRequest:
    """An open LMAPS referral raised by an MSET review (this service's own record)."""

    id: UUID
    referral_id: UUID
    reason: str
    raised_at: datetime


def risk_of(state: ReferralState) -> RiskLevel:
    """The level a case is ordered by: the panel's agreed level; before any panel, the level
    triage says it proceeds at (the higher of the rules' suggestion and the referrer's)."""
    if state.level is not None:
        return state.level
    if state.triage is not None:
        return state.triage.level
    return state.referrer_level


def _last_decision(state: ReferralState) -> LastDecision | None:
    review = state.reviews[-1] if state.reviews else None
    pre = state.pre_mset
    if review is not None and (pre is None or review.decided_at >= pre.decided_at):
        return LastDecision(
            kind=DecisionKind.mset_review,
            decided_at=review.decided_at,
            level=review.level,
            rationale=review.rationale,
            meeting_id=review.meeting_id,
        )
    if pre is not None:
        return LastDecision(
            kind=DecisionKind.pre_mset,
            decided_at=pre.decided_at,
            level=pre.level,
            outcome=pre.outcome,
            rationale=pre.rationale,
            meeting_id=pre.meeting_id,
        )
    return None


def breaches(state: ReferralState, as_of: datetime) -> list[str]:
    found = [
        f"{EscalationKind.action_overdue.value}:{a.action_id}"
        for a in state.actions
        if a.completed_at is None and a.due_at < as_of
    ]
    last = _last_decision(state)
    for sent in state.escalations:
        if sent.kind not in BREACH_ESCALATIONS:
            continue
        # Only what happened since the panel last decided: older breaches were considered.
        if last is None or (sent.due_at is not None and sent.due_at > last.decided_at):
            code = f"{sent.kind.value}:{sent.subject}" if sent.subject else sent.kind.value
            if code not in found:
                found.append(code)
    return found


def summarise(state: ReferralState, as_of: datetime) -> CaseSummary:
    """What an agenda item says about a case: facts from the workflow's state."""
    t = state.triage
    return CaseSummary(
        referral_id=state.referral_id,
        referring_agency_id=state.agency_id,
        local_authority=state.local_authority,
        stage=state.stage,
        submitted_at=state.submitted_at,
        previous_referral_id=state.previous_referral_id,
        agreed_level=state.level,
        triage=None
        if t is None
        else TriageView(
            suggested_level=t.suggested_level,
            referrer_level=t.referrer_level,
            level=t.level,
            score=t.score,
            ruleset_version=t.ruleset_version,
            recommendation=t.recommendation,
            coordinator_review=t.coordinator_review,
            fired_rules=list(t.fired_rules),
        ),
        missing_episodes=list(state.missing_episodes),
        open_actions=[
            ActionView(
                action_id=a.action_id,
                owner_agency_id=a.owner_agency_id,
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                description=a.description,
                overdue=a.due_at < as_of,
                progress_count=len(a.progress),
                last_progress_at=a.progress[-1].at if a.progress else None,
                last_progress_note=a.progress[-1].note if a.progress else None,
            )
            for a in state.actions
            if a.completed_at is None
        ],
        breaches=breaches(state, as_of),
        last_decision=_last_decision(state),
        next_review_due=state.next_review_due,
        reviews_total=state.reviews_total,
    )


def _entered_stage(state: ReferralState) -> datetime:
    for change in reversed(state.stages):
        if change.stage == state.stage:
            return change.at
    return state.submitted_at


def entry_for(
    kind: MeetingKind, state: ReferralState, *, as_of: datetime, held_at: datetime
) -> AgendaEntry | None:
    """The agenda entry for a case at a Pre-MSET or MSET meeting, or None if it is not due."""
    case = summarise(state, as_of)
    reasons: list[AgendaReason] = []
    waiting_since = _entered_stage(state)
    if kind is MeetingKind.pre_mset and state.stage is Stage.awaiting_pre_mset:
        reasons.append(AgendaReason.new_referral)
    elif kind is MeetingKind.mset and state.stage is Stage.awaiting_mset:
        reasons.append(AgendaReason.new_to_mset)
    elif kind is MeetingKind.mset and state.stage is Stage.active_plan:
        # An active plan waits from when its review fell due or an action became overdue.
        due = [a.due_at for a in state.actions if a.completed_at is None and a.due_at < as_of]
        if state.next_review_due is not None and state.next_review_due <= held_at:
            reasons.append(AgendaReason.re_review_due)
            due.append(state.next_review_due)
        if due:
            waiting_since = min(due)
    else:
        return None
    if case.breaches:
        reasons.append(AgendaReason.breach)
    if not reasons:
        return None
    return AgendaEntry(state.referral_id, reasons, risk_of(state), waiting_since, case)


def lmaps_entry(request: LmapsRequest, state: ReferralState, *, as_of: datetime) -> AgendaEntry:
    case = summarise(state, as_of)
    return AgendaEntry(
        state.referral_id,
        [AgendaReason.lmaps_referral],
        risk_of(state),
        request.raised_at,
        case,
        lmaps_referral_id=request.id,
        lmaps_reason=request.reason,
    )


def ordered(entries: Iterable[AgendaEntry]) -> list[AgendaEntry]:
    """Highest risk first; within a level, the longest waiting first."""
    return sorted(entries, key=lambda e: (-e.risk_level.rank, e.waiting_since, str(e.referral_id)))


def draw_up(
    kind: MeetingKind, states: Iterable[ReferralState], *, as_of: datetime, held_at: datetime
) -> list[AgendaEntry]:
    entries = (entry_for(kind, s, as_of=as_of, held_at=held_at) for s in states)
    return ordered(e for e in entries if e is not None)


def must_be_scheduled(status: MeetingStatus) -> None:
    """An agenda can be redrawn only before the meeting's first decision."""
    if status is MeetingStatus.closed:
        raise MeetingClosed("the meeting is closed")
    if status is not MeetingStatus.scheduled:
        raise AgendaFixed("decisions have been recorded: the agenda can no longer be redrawn")


# --- the cases -----------------------------------------------------------------------------


class Cases(Protocol):
    """What meetings need of the cases (``mset_platform.cases.CaseClient``): agendas are drawn
    up from the cases' workflows, and decisions sent to them, by referral id."""

    async def at_stages(self, local_authority: str, stages: Sequence[Stage]) -> list[ReferralState]:
        """The open cases of an authority at the given stages."""

    async def state(self, referral_id: UUID, /) -> ReferralState:
        """One case's current state."""

    async def record_pre_mset(
        self, referral_id: UUID, inp: PreMsetDecisionInput, update_id: str, /
    ) -> PreMsetDecisionResult: ...

    async def record_review(
        self, referral_id: UUID, inp: MsetReviewInput, update_id: str, /
    ) -> MsetReviewRecorded: ...


# --- decisions -----------------------------------------------------------------------------

DECISION_KIND_FOR: dict[MeetingKind, DecisionKind] = {
    MeetingKind.pre_mset: DecisionKind.pre_mset,
    MeetingKind.mset: DecisionKind.mset_review,
    MeetingKind.lmaps: DecisionKind.mset_review,
}


def check_decision(
    kind: MeetingKind,
    body: PreMsetDecisionRequest | MsetReviewRequest,
    now: datetime,
    *,
    meeting_id: UUID | None = None,
    via: RecordedVia = RecordedVia.meeting_api,
) -> str | None:
    """What the meeting service itself can say is wrong before asking the case's workflow.
    Answers the decision id the chair chose, where they may choose one (through the referral
    API, whose callers name their decisions so that a retry is recorded once)."""
    expected = DECISION_KIND_FOR[kind]
    if body.kind != expected.value:
        raise DecisionInvalid(
            "kind", f"a {kind.value} meeting records '{expected.value}' decisions"
        )
    own_name = "decision_id" if isinstance(body, PreMsetDecisionRequest) else "review_id"
    own_id: str | None = getattr(body, own_name)
    if via is RecordedVia.referral_api:
        if body.meeting_id is not None and body.meeting_id != meeting_id:
            raise DecisionInvalid("meeting_id", f"this is meeting {meeting_id}")
    else:
        # The meeting names the decision itself: its own id, and the agenda item's as the
        # decision's id (so a retry is recorded once).
        for name in ("meeting_id", own_name):
            if getattr(body, name) is not None:
                raise DecisionInvalid(
                    name, "set by the meeting from the agenda item: leave it out of the decision"
                )
    if isinstance(body, MsetReviewRequest):
        for n, action in enumerate(body.actions):
            if action.due_at <= now:
                raise DecisionInvalid(
                    f"actions.{n}.due_at", "the due date has passed: give a future date"
                )
        if body.raise_lmaps is not None and kind is MeetingKind.lmaps:
            raise DecisionInvalid("raise_lmaps", "this is already an LMAPS meeting")
    return own_id


@dataclass(frozen=True)
class DecisionOutcome:
    """What the case's workflow recorded for a decision."""

    stage_after: Stage
    level: RiskLevel
    outcome: PreMsetOutcome | None = None
    rationale: str | None = None
    actions: list[AgreedAction] = field(default_factory=list)
    next_review_due: datetime | None = None


def recorded_in_state(
    state: ReferralState, kind: DecisionKind, decision_id: str
) -> DecisionOutcome | None:
    """The decision with this id if the case already holds it (an earlier attempt whose
    answer was lost): then the case's record is the truth, not this request."""
    if kind is DecisionKind.pre_mset:
        pre = state.pre_mset
        if pre is None or pre.decision_id != decision_id:
            return None
        return DecisionOutcome(
            stage_after=state.stage, level=pre.level, outcome=pre.outcome, rationale=pre.rationale
        )
    review = next((r for r in state.reviews if r.review_id == decision_id), None)
    if review is None:
        return None
    return DecisionOutcome(
        stage_after=state.stage,
        level=review.level,
        rationale=review.rationale,
        actions=[
            AgreedAction(
                action_id=a.action_id,
                owner_agency_id=a.owner_agency_id,
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                description=a.description,
            )
            for a in state.actions
            if a.review_id == decision_id
        ],
        next_review_due=state.next_review_due,
    )
