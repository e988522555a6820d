"""A case's surroundings for workflow tests: the activities ReferralWorkflow calls, registered
under their real names on their real task queues. Triage is the real rules engine; record
keeping and publishing are stand-ins that remember what they were asked, so tests can assert
the events a case published and the stages it recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.cases import NewAction
from mset_contract.events import (
    Published,
    PublishedEvent,
    PublishEvents,
)
from mset_contract.referral import ReferralCreate, referral_example
from mset_contract.referral_workflow import (
    EpisodeFacts,
    EpisodeFactsInput,
    OpenedForConsideration,
    OpenForConsiderationInput,
    RecordAuthorityToldInput,
    RecordAuthorityToldResult,
    RecordEpisodeInput,
    RecordEpisodeResult,
    RecordStageInput,
    RecordStageResult,
    StartReferralInput,
    TriageFacts,
    TriageFactsInput,
)
from mset_contract.temporal import (
    NOTIFICATIONS_PUBLISH_ACTIVITY,
    NOTIFICATIONS_TASK_QUEUE,
    REFERRAL_EPISODE_FACTS_ACTIVITY,
    REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY,
    REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY,
    REFERRAL_RECORD_EPISODE_ACTIVITY,
    REFERRAL_RECORD_STAGE_ACTIVITY,
    REFERRAL_TASK_QUEUE,
    REFERRAL_TRIAGE_FACTS_ACTIVITY,
    TRIAGE_EVALUATE_ACTIVITY,
    TRIAGE_TASK_QUEUE,
    referral_workflow_id,
)
from mset_contract.triage import TriageInput, TriageResult
from mset_contract.vocab import Recency, RiskLevel
from services.triage.domain import Triage
from tests.support.wait import terminate_settled
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow

RULESETS = Path(__file__).resolve().parents[2] / "services" / "triage" / "rulesets"


@cache
def triage_engine() -> Triage:
    # One engine per test process, as in the service (durable-rules is serialised per host).
    return Triage.from_directory(RULESETS, "1")


def facts_for(
    indicators: list[tuple[str, Recency]] | None = None,
    age_years: int = 14,
    turns_18_month: date = date(2030, 3, 1),
    referrer_level: RiskLevel = RiskLevel.medium,
    assessed_at: datetime | None = None,
    local_authority: str = "northshire",
) -> TriageFacts:
    tool = referral_example()
    if indicators is not None:
        tool["indicators"] = [{"code": c, "recency": r.value} for c, r in indicators]
    rat = ReferralCreate.model_validate(tool)
    return TriageFacts(
        local_authority=local_authority,
        catalogue_version=rat.catalogue_version,
        age_years=age_years,
        turns_18_month=turns_18_month,
        referrer_level=referrer_level,
        referrer_rationale_given=True,
        indicators=rat.resolved_indicators(),
        exploitation_types=rat.exploitation_types,
        # None: filled in by start_case with the (test) server's own "now".
        assessed_at=assessed_at or datetime(1970, 1, 1, tzinfo=UTC),
    )


@dataclass
class CaseWorld:
    client: Client
    task_queue: str
    env: WorkflowEnvironment | None = None
    facts: dict[uuid.UUID, TriageFacts] = field(default_factory=dict)
    episodes: dict[uuid.UUID, EpisodeFacts] = field(default_factory=dict)
    opened: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stages: list[RecordStageInput] = field(default_factory=list)
    episode_records: list[RecordEpisodeInput] = field(default_factory=list)
    told: list[RecordAuthorityToldInput] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[TriageResult] = field(default_factory=list)
    # Hold a case in a stage it normally passes through: the triage facts (``submitted``) or
    # the recording of a stage fail, and are retried, until the test lets go.
    hold_triage: bool = False
    hold_stage: str | None = None

    # --- the stand-ins ------------------------------------------------------------------------

    async def triage_facts(self, inp: TriageFactsInput) -> TriageFacts:
        if self.hold_triage:
            raise ApplicationError("held by the test")
        return self.facts[inp.assessment_id]

    async def episode_facts(self, inp: EpisodeFactsInput) -> EpisodeFacts:
        return self.episodes.get(
            inp.episode_id,
            EpisodeFacts(
                local_authority="northshire", age_years=14, turns_18_month=date(2030, 3, 1)
            ),
        )

    async def open_for_consideration(
        self, inp: OpenForConsiderationInput
    ) -> OpenedForConsideration:
        referral_id = self.opened.setdefault(inp.episode_id, uuid.uuid4())
        self.facts[referral_id] = facts_for([("MIS-03", Recency.current)], assessed_at=inp.at)
        return OpenedForConsideration(
            start=StartReferralInput(
                referral_id=referral_id,
                agency_id=uuid.uuid4(),
                local_authority="northshire",
                submitted_at=inp.at,
                referrer_level=RiskLevel.medium,
            ),
            workflow_id=referral_workflow_id(referral_id),
        )

    async def record_episode(self, inp: RecordEpisodeInput) -> RecordEpisodeResult:
        self.episode_records.append(inp)
        return RecordEpisodeResult(updated=True)

    async def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        if self.hold_stage == inp.stage.value:
            raise ApplicationError("held by the test")
        self.stages.append(inp)
        return RecordStageResult(updated=True)

    async def record_authority_told(
        self, inp: RecordAuthorityToldInput
    ) -> RecordAuthorityToldResult:
        self.told.append(inp)
        return RecordAuthorityToldResult(recorded=True)

    async def evaluate(self, inp: TriageInput) -> TriageResult:
        result = triage_engine().evaluate(inp)
        self.evaluations.append(result)
        return result

    async def publish(self, inp: PublishEvents) -> Published:
        seen = {e["id"] for e in self.events}
        for e in inp.events:
            if str(e.id) not in seen:  # a retried publish re-sends the same ids
                self.events.append(e.model_dump(mode="json"))
        return Published(
            events=[
                PublishedEvent(id=e.id, type=e.type, topic="test", partition=0, offset=n)
                for n, e in enumerate(inp.events)
            ]
        )

    # --- helpers for tests ----------------------------------------------------------------------

    async def now(self) -> datetime:
        """The server's time (the time-skipping server's clock runs ahead of the wall's)."""
        if self.env is not None:
            return await self.env.get_current_time()
        return datetime.now(UTC)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def escalations(self) -> list[str]:
        return [e["kind"] for e in self.events if e["type"] == "mset.referral.escalated"]

    def recorded_stages(self) -> list[str]:
        return [s.stage.value for s in self.stages]

    async def start_case(
        self,
        facts: TriageFacts | None = None,
        submitted_at: datetime | None = None,
        history_limit: int | None = None,
    ) -> WorkflowHandle[Any, Any]:
        referral_id = uuid.uuid4()
        f = facts or facts_for()
        if f.assessed_at.year == 1970:
            f = f.model_copy(update={"assessed_at": await self.now()})
        self.facts[referral_id] = f
        inp = StartReferralInput(
            referral_id=referral_id,
            agency_id=uuid.uuid4(),
            local_authority=f.local_authority,
            submitted_at=submitted_at or f.assessed_at,
            referrer_level=f.referrer_level,
            history_limit=history_limit,
        )
        self.started.append(referral_workflow_id(referral_id))
        return await self.client.start_workflow(
            ReferralWorkflow.run,
            inp,
            id=referral_workflow_id(referral_id),
            task_queue=self.task_queue,
            execution_timeout=timedelta(days=3 * 365),
        )

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.started or workflow_id in {
            referral_workflow_id(r) for r in self.opened.values()
        }

    async def end_everything(self) -> None:
        """Terminate whatever this test left running, before its workers stop: a case left
        with timers on a server that outlives the workers (a one-off script's, or the
        integration tier's dev server) would have them fire with no worker to take them."""
        ids = [*self.started, *(referral_workflow_id(r) for r in self.opened.values())]
        for wid in ids:
            await terminate_settled(self.client.get_workflow_handle(wid))


class CaseActivities:
    """The stand-ins, registered under their real names on the real (shared) task queues,
    answering for whichever test's world is current.

    They live as long as the server does: a worker stopped while its server lives on can
    leave a poll the server answers with a later task, which is then never run, and on the
    time-skipping server a started-but-lost task stops the clock for good (time skips only
    while nothing is in flight). Each workflow test has a server of its own, so the two end
    together.
    """

    def __init__(self) -> None:
        self.world: CaseWorld | None = None

    def _world(self) -> CaseWorld:
        # A task left over from an earlier test's (terminated) workflow is refused rather than
        # recorded in this test's world.
        world = self.world
        wid = activity.info().workflow_id
        if world is None or wid is None or not world.owns(wid):
            raise ApplicationError(f"{wid} belongs to no running test", non_retryable=True)
        return world

    @activity.defn(name=REFERRAL_TRIAGE_FACTS_ACTIVITY)
    async def triage_facts(self, inp: TriageFactsInput) -> TriageFacts:
        return await self._world().triage_facts(inp)

    @activity.defn(name=REFERRAL_EPISODE_FACTS_ACTIVITY)
    async def episode_facts(self, inp: EpisodeFactsInput) -> EpisodeFacts:
        return await self._world().episode_facts(inp)

    @activity.defn(name=REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY)
    async def open_for_consideration(
        self, inp: OpenForConsiderationInput
    ) -> OpenedForConsideration:
        return await self._world().open_for_consideration(inp)

    @activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
    async def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        return await self._world().record_stage(inp)

    @activity.defn(name=REFERRAL_RECORD_EPISODE_ACTIVITY)
    async def record_episode(self, inp: RecordEpisodeInput) -> RecordEpisodeResult:
        return await self._world().record_episode(inp)

    @activity.defn(name=REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY)
    async def record_authority_told(
        self, inp: RecordAuthorityToldInput
    ) -> RecordAuthorityToldResult:
        return await self._world().record_authority_told(inp)

    @activity.defn(name=TRIAGE_EVALUATE_ACTIVITY)
    async def evaluate(self, inp: TriageInput) -> TriageResult:
        return await self._world().evaluate(inp)

    @activity.defn(name=NOTIFICATIONS_PUBLISH_ACTIVITY)
    async def publish(self, inp: PublishEvents) -> Published:
        return await self._world().publish(inp)


@asynccontextmanager
async def case_activities(client: Client) -> AsyncIterator[CaseActivities]:
    host = CaseActivities()
    queues: list[tuple[str, list[Callable[..., Any]]]] = [
        (
            REFERRAL_TASK_QUEUE,
            [
                host.triage_facts,
                host.record_stage,
                host.record_authority_told,
                host.episode_facts,
                host.open_for_consideration,
                host.record_episode,
            ],
        ),
        (TRIAGE_TASK_QUEUE, [host.evaluate]),
        (NOTIFICATIONS_TASK_QUEUE, [host.publish]),
    ]
    async with AsyncExitStack() as stack:
        for queue, acts in queues:
            await stack.enter_async_context(Worker(client, task_queue=queue, activities=acts))
        yield host


@asynccontextmanager
async def case_world(
    env: WorkflowEnvironment, task_queue: str, activities: CaseActivities | None = None
) -> AsyncIterator[CaseWorld]:
    """A test's world. Pass the test's ``activities``; without them (a one-off script)
    the world starts its own stand-in workers."""
    client = env.client
    world = CaseWorld(client, task_queue, env)
    async with AsyncExitStack() as stack:
        if activities is None:
            activities = await stack.enter_async_context(case_activities(client))
        # A fresh task queue per test for the workflows themselves: no stale poll can take
        # this test's workflow tasks.
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[ReferralWorkflow, MissingEpisodeWorkflow],
            )
        )
        activities.world = world
        try:
            yield world
        finally:
            await world.end_everything()
            activities.world = None


def agreed_action(now: datetime, **fields: Any) -> NewAction:
    """An action as a chair agrees it at ``now``: the time-skipping server's clock, which runs
    months or years ahead of the wall clock the API's "due within a year" check reads."""
    return NewAction.model_validate(fields, context={"now": now})
