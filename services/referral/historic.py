"""A historic row's decisions checked as the workflow would have checked them when each was
taken, and the case's record made from them (docs/import.md).

Pure logic: no database, no Temporal. The models (``mset_contract.historic_import``) check
each field as the API does; here the row is checked as a whole, in the order its decisions
were taken — the stage each needs, the rationale a level change needs, dates in order, every
action still open at the exit accounted for — and the case's ``ReferralState`` is built with
the stage history those decisions make. A closed case is stored as that record; an open one
starts its workflow from it (``StartReferralInput.carried``), at its stage, with its
deadlines.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mset_contract.historic_import import HistoricAction, ImportMissingEpisode, ImportReferral
from mset_contract.referral import ADULT_AGE
from mset_contract.referral_workflow import (
    CaseAction,
    EpisodeStatus,
    ExitRecord,
    MsetReviewRecord,
    PreMsetDecisionRecord,
    ReferralState,
    StageChange,
)
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import PreMsetOutcome, RhiOutcome, RiskLevel, Stage
from workflows.referral import KEEP_REVIEWS, KEEP_STAGES, REVIEW_INTERVAL

# Who "decided" a historic decision: the import itself, not a member of staff of this
# system (the panel's members are in the case system it came from). A fixed id, so every
# imported decision says the same and a reader can tell them from decisions taken here.
HISTORIC_IMPORT_ACTOR = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mset-flow:historic-import")
# The Return Home Interview's deadline after a return when the rules named none: 72 hours.
RHI_HOURS = 72
CLOSED = (Stage.exited, Stage.closed_advice_given)


class RowRefused(Exception):
    """The row cannot be imported: ``field`` (a dotted path in the row) says where, and the
    message why, in words the partner's developer can act on."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _child_on(dob: date, at: datetime, field: str, what: str) -> None:
    on = today_uk(at)
    if dob > on:
        raise RowRefused(field, f"the date of birth is after the {what}")
    age = age_on(dob, on)
    if age >= ADULT_AGE:
        raise RowRefused(
            field, f"the young person was {age} at the {what}: MSET is for children under 18"
        )


def _not_before(at: datetime, earlier: datetime, field: str, what: str) -> None:
    if at < earlier:
        raise RowRefused(field, f"is before {what}")


@dataclass(frozen=True)
class HistoricCase:
    """A referral row made into the case's record."""

    state: ReferralState
    open: bool
    last_event_at: datetime


def historic_case(
    row: ImportReferral,
    referral_id: uuid.UUID,
    agency_id: uuid.UUID,
    owner_of: Callable[[HistoricAction], uuid.UUID | None],
) -> HistoricCase:
    """The case ``row`` describes, checked decision by decision; ``RowRefused`` if any
    decision could not have been taken where the row puts it. ``owner_of``: the id of an
    action's owning agency, None when there is no such agency."""
    tool, sub = row.tool, row.submitted_at
    _child_on(tool.child.date_of_birth, sub, "tool.child.date_of_birth", "referral")
    by = HISTORIC_IMPORT_ACTOR
    stages = [
        StageChange(stage=Stage.submitted, at=sub),
        StageChange(stage=Stage.triaged, at=sub),
        StageChange(stage=Stage.awaiting_pre_mset, at=sub),
    ]
    stage, last = Stage.awaiting_pre_mset, sub
    level: RiskLevel | None = None
    pre: PreMsetDecisionRecord | None = None

    def move(to: Stage, at: datetime) -> None:
        nonlocal stage
        if to != stage:
            stage = to
            stages.append(StageChange(stage=to, at=at, by=by))

    if row.pre_mset is not None:
        d = row.pre_mset
        _not_before(d.decided_at, sub, "pre_mset.decided_at", "the referral (submitted_at)")
        if d.outcome == PreMsetOutcome.not_met and not d.rationale:
            raise RowRefused("pre_mset.rationale", "required when the criteria are not met")
        if d.outcome == PreMsetOutcome.meets_criteria and d.level == RiskLevel.low:
            raise RowRefused(
                "pre_mset.level",
                "MSET considers medium and high risk cases: a low case is 'not_met'",
            )
        suggested = row.suggested_level
        if suggested is not None and d.level.rank < suggested.rank and not d.rationale:
            raise RowRefused(
                "pre_mset.rationale",
                f"the level '{d.level.value}' is below the suggested '{suggested.value}': "
                "a rationale is required",
            )
        more = d.outcome == PreMsetOutcome.more_information
        pre = PreMsetDecisionRecord(
            decision_id=d.decision_id or f"historic-pre-mset-{referral_id}",
            outcome=d.outcome,
            level=d.level,
            rationale=d.rationale,
            decided_by=by,
            meeting_id=d.meeting_id,
            decided_at=d.decided_at,
            information_due_at=d.decided_at + timedelta(days=d.information_due_days)
            if more
            else None,
        )
        if d.outcome != PreMsetOutcome.more_information:
            level = d.level
        move(
            {
                PreMsetOutcome.meets_criteria: Stage.awaiting_mset,
                PreMsetOutcome.not_met: Stage.closed_advice_given,
                PreMsetOutcome.more_information: Stage.more_information_requested,
            }[d.outcome],
            d.decided_at,
        )
        last = d.decided_at

    reviews: list[MsetReviewRecord] = []
    actions: dict[str, CaseAction] = {}
    review_ids: set[str] = set()
    for i, r in enumerate(row.reviews):
        where = f"reviews.{i}"
        if stage not in (Stage.awaiting_mset, Stage.active_plan):
            raise RowRefused(
                where,
                "MSET reviews cases that met the Pre-MSET criteria: give pre_mset with "
                "outcome 'meets_criteria' before the reviews",
            )
        _not_before(r.decided_at, last, f"{where}.decided_at", "the decision before it")
        if level is not None and r.level != level and not r.rationale:
            raise RowRefused(
                f"{where}.rationale",
                f"the level changes from '{level.value}' to '{r.level.value}': "
                "a rationale is required",
            )
        review_id = r.review_id or f"historic-review-{i + 1}"
        if review_id in review_ids:
            raise RowRefused(f"{where}.review_id", "each review of a case has its own id")
        review_ids.add(review_id)
        for j, a in enumerate(r.actions):
            at = f"{where}.actions.{j}"
            owner = owner_of(a)
            if owner is None:
                raise RowRefused(
                    f"{at}.owner_agency" if a.owner_agency else f"{at}.owner_agency_id",
                    "no such agency: create it first (mset agency create)",
                )
            if a.action_id in actions:
                raise RowRefused(f"{at}.action_id", "each action of a case has its own id")
            if a.due_at <= r.decided_at:
                raise RowRefused(f"{at}.due_at", "the due date must be after the review")
            if a.completed_at is not None:
                _not_before(a.completed_at, r.decided_at, f"{at}.completed_at", "the review")
            actions[a.action_id] = CaseAction(
                action_id=a.action_id,
                owner_agency_id=owner,
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                description=a.description,
                created_at=r.decided_at,
                review_id=review_id,
                completed_at=a.completed_at,
            )
        reviews.append(
            MsetReviewRecord(
                review_id=review_id,
                level=r.level,
                rationale=r.rationale,
                decided_by=by,
                meeting_id=r.meeting_id,
                decided_at=r.decided_at,
                action_ids=[a.action_id for a in r.actions],
            )
        )
        level = r.level
        move(Stage.active_plan, r.decided_at)
        last = r.decided_at

    exit_record: ExitRecord | None = None
    if row.exit is not None:
        e = row.exit
        if stage in CLOSED:
            raise RowRefused(
                "exit", "the case closed at Pre-MSET (outcome 'not_met'): it has no MSET exit"
            )
        _not_before(e.exited_at, last, "exit.exited_at", "the decision before it")
        if e.reason.value == "other" and not e.detail:
            raise RowRefused("exit.detail", "an exit for an 'other' reason needs its detail")
        for act in actions.values():
            if act.completed_at is not None and act.completed_at > e.exited_at:
                raise RowRefused(
                    "exit.exited_at", f"is before action {act.action_id} was completed"
                )
        open_ids = [a.action_id for a in actions.values() if a.completed_at is None]
        said = [x.action_id for x in e.actions]
        if len(set(said)) != len(said):
            raise RowRefused("exit.actions", "each action may be named once")
        unknown = [i for i in said if i not in open_ids]
        if unknown:
            raise RowRefused(
                "exit.actions", f"not an open action of this case: {', '.join(unknown)}"
            )
        unaccounted = [i for i in open_ids if i not in said]
        if unaccounted:
            raise RowRefused(
                "exit.actions",
                f"open actions not accounted for: {', '.join(unaccounted)}; say for each "
                "whether it is 'closed' or 'carried' on by the case holder",
            )
        for x in e.actions:
            actions[x.action_id].disposition = x.disposition
            actions[x.action_id].ended_at = e.exited_at
        exit_record = ExitRecord(
            reason=e.reason, detail=e.detail, decided_by=by, exited_at=e.exited_at
        )
        move(Stage.exited, e.exited_at)
        last = e.exited_at

    is_open = stage not in CLOSED
    case_actions = list(actions.values())
    done = [a.completed_at for a in case_actions if a.completed_at is not None]
    last_event = max([last, *done])
    deadlines = [a.due_at for a in case_actions if a.open]
    if pre is not None and pre.information_due_at and stage == Stage.more_information_requested:
        deadlines.append(pre.information_due_at)
    state = ReferralState(
        referral_id=referral_id,
        agency_id=agency_id,
        local_authority=tool.child.local_authority,
        stage=stage,
        submitted_at=sub,
        referrer_level=tool.referrer_judgement.level,
        assessment_id=referral_id,
        last_assessed_at=sub,
        level=level,
        pre_mset=pre,
        reviews=reviews[-KEEP_REVIEWS:],
        reviews_total=len(reviews),
        actions=case_actions,
        stages=stages[-KEEP_STAGES:],
        next_review_due=reviews[-1].decided_at + REVIEW_INTERVAL if reviews and is_open else None,
        next_deadline=min(deadlines) if deadlines and is_open else None,
        exit=exit_record,
    )
    return HistoricCase(state=state, open=is_open, last_event_at=last_event)


@dataclass(frozen=True)
class HistoricEpisode:
    """A missing-episode row made into the record the reports count. ``record`` is None for
    an open episode (not returned, or no interview outcome yet): its workflow is started
    and keeps the record, as for one reported through the API."""

    record: dict[str, Any] | None
    open: bool


def historic_episode(row: ImportMissingEpisode) -> HistoricEpisode:
    rep = row.report
    _child_on(rep.child.date_of_birth, rep.reported_at, "report.child.date_of_birth", "report")
    ret, rhi = row.returned, row.rhi
    if ret is not None:
        _not_before(
            ret.returned_at, rep.reported_at, "returned.returned_at", "the report (reported_at)"
        )
    if rhi is not None:
        if ret is None:
            raise RowRefused(
                "rhi", "a Return Home Interview follows the child's return: give returned"
            )
        if rhi.outcome == RhiOutcome.not_offered:
            if not rhi.reason_not_offered:
                raise RowRefused("rhi.reason_not_offered", "say why the interview was not offered")
            if rhi.offered_at is not None:
                raise RowRefused("rhi.offered_at", "an interview not offered has no offered_at")
        elif rhi.offered_at is None:
            raise RowRefused("rhi.offered_at", "required: when was the interview offered?")
        else:
            _not_before(rhi.offered_at, ret.returned_at, "rhi.offered_at", "the return")
    if ret is None or rhi is None:
        return HistoricEpisode(record=None, open=True)
    due = ret.returned_at + timedelta(hours=RHI_HOURS)
    return HistoricEpisode(
        record={
            "status": EpisodeStatus.closed.value,
            "returned_at": ret.returned_at,
            "located_in_authority": ret.located_in_authority,
            "rhi_due_at": due,
            "rhi_offered_at": rhi.offered_at,
            "rhi_outcome": rhi.outcome.value,
            # Not offered within the deadline (the case system does not say when an
            # outcome of "not offered" was recorded: it counts as missed).
            "rhi_deadline_breached": rhi.offered_at is None or rhi.offered_at > due,
            "recorded_at": max(ret.returned_at, rhi.offered_at or ret.returned_at),
        },
        open=False,
    )
