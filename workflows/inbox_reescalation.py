"""InboxReescalation: the durable timer behind "an urgent item not acknowledged in time goes
up the line". One workflow per urgent inbox item, started by the inbox consumer (workflow id
from the item id, so a redelivered event never starts a second). It sleeps on a Temporal
timer (survives worker and server restarts), then asks whether the item was acknowledged; if
not, it publishes a re-escalation event, which the consumers turn into an inbox item (and
e-mail) for the next role, whose own timer repeats this until the top of the line.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

# The sandbox re-imports this module on every run: the models are pure pydantic with no
# side effects at import, so they are passed through.
with workflow.unsafe.imports_passed_through():
    from mset_contract.events import (
        PUBLISH_HEARTBEAT_TIMEOUT,
        PUBLISH_RETRY_MAX_INTERVAL,
        PUBLISH_START_TO_CLOSE,
        Published,
        PublishEvents,
    )
    from mset_contract.notifications import (
        ReescalateInput,
        ReescalateResult,
        ReescalationInput,
        ReescalationResult,
    )
    from mset_contract.temporal import (
        NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
        NOTIFICATIONS_PUBLISH_ACTIVITY,
        NOTIFICATIONS_REESCALATE_ACTIVITY,
    )


@workflow.defn(name=NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW)
class InboxReescalationWorkflow:
    @workflow.run
    async def run(self, inp: ReescalationInput) -> ReescalationResult:
        await workflow.sleep(timedelta(seconds=inp.after_seconds))
        checked = await workflow.execute_activity(
            NOTIFICATIONS_REESCALATE_ACTIVITY,
            ReescalateInput(item_id=inp.item_id, workflow_id=workflow.info().workflow_id),
            result_type=ReescalateResult,
            # One row read and written: a dead worker's task is retried after this.
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
        if checked.event is None:
            return ReescalationResult(outcome=checked.outcome)
        # The same task queue: this worker hosts the publish activity too.
        await workflow.execute_activity(
            NOTIFICATIONS_PUBLISH_ACTIVITY,
            PublishEvents(events=[checked.event]),
            result_type=Published,
            start_to_close_timeout=PUBLISH_START_TO_CLOSE,
            heartbeat_timeout=PUBLISH_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=PUBLISH_RETRY_MAX_INTERVAL),
        )
        return ReescalationResult(outcome="reescalated", event_id=checked.event.id)
