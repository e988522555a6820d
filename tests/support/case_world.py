"""A case's surroundings for workflow tests: the activities ReferralWorkflow calls, registered
under their real names on their real task queues. Triage is the real rules engine; record
keeping and publishing are stand-ins that remember what they were asked, so tests can assert
the events a case published and the stages it recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.events import (
    NOTIFICATIONS_PUBLISH_ACTIVITY,
    Published,
    PublishedEvent,
    PublishEvents,
)
from mset_contract.referral import ReferralCreate, referral_example
from mset_contract.referral_workflow import (
    REFERRAL_EPISODE_FACTS_ACTIVITY,
    REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY,
    REFERRAL_TRIAGE_FACTS_ACTIVITY,
    EpisodeFacts,
    EpisodeFactsInput,
    OpenedForConsideration,
    OpenForConsiderationInput,
    RecordStageInput,
    RecordStageResult,
    StartReferralInput,
    TriageFacts,
    TriageFactsInput,
)
from mset_contract.temporal import (
    NOTIFICATIONS_TASK_QUEUE,
    REFERRAL_RECORD_STAGE_ACTIVITY,
    REFERRAL_TASK_QUEUE,
    TRIAGE_EVALUATE_ACTIVITY,
    TRIAGE_TASK_QUEUE,
    referral_workflow_id,
)
from mset_contract.triage import TriageInput, TriageResult
from mset_contract.vocab import Recency, RiskLevel
from services.triage.domain import Triage
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
    days_until_18: int = 1200,
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
        days_until_18=days_until_18,
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
    events: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[TriageResult] = field(default_factory=list)

    # --- the stand-ins ------------------------------------------------------------------------

    @activity.defn(name=REFERRAL_TRIAGE_FACTS_ACTIVITY)
    async def triage_facts(self, inp: TriageFactsInput) -> TriageFacts:
        return self.facts[inp.assessment_id]

    @activity.defn(name=REFERRAL_EPISODE_FACTS_ACTIVITY)
    async def episode_facts(self, inp: EpisodeFactsInput) -> EpisodeFacts:
        return self.episodes.get(
            inp.episode_id,
            EpisodeFacts(local_authority="northshire", age_years=14, days_until_18=1200),
        )

    @activity.defn(name=REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY)
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

    @activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
    async def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        self.stages.append(inp)
        return RecordStageResult(updated=True)

    @activity.defn(name=TRIAGE_EVALUATE_ACTIVITY)
    async def evaluate(self, inp: TriageInput) -> TriageResult:
        result = triage_engine().evaluate(inp)
        self.evaluations.append(result)
        return result

    @activity.defn(name=NOTIFICATIONS_PUBLISH_ACTIVITY)
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

    async def end_everything(self) -> None:
        """Terminate whatever this test left running. The time-skipping server is shared by
        the session: a case left with timers would make later tests' skips work through
        its timers with no worker to take them."""
        ids = [*self.started, *(referral_workflow_id(r) for r in self.opened.values())]
        for wid in ids:
            try:
                await self.client.get_workflow_handle(wid).terminate("test over")
            except RPCError:
                pass  # finished already


@asynccontextmanager
async def case_world(env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[CaseWorld]:
    client = env.client
    world = CaseWorld(client, task_queue, env)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[ReferralWorkflow, MissingEpisodeWorkflow],
            )
        )
        queues: list[tuple[str, list[Callable[..., Any]]]] = [
            (
                REFERRAL_TASK_QUEUE,
                [
                    world.triage_facts,
                    world.record_stage,
                    world.episode_facts,
                    world.open_for_consideration,
                ],
            ),
            (TRIAGE_TASK_QUEUE, [world.evaluate]),
            (NOTIFICATIONS_TASK_QUEUE, [world.publish]),
        ]
        for queue, acts in queues:
            await stack.enter_async_context(Worker(client, task_queue=queue, activities=acts))
        try:
            yield world
        finally:
            await world.end_everything()
