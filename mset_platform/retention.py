"""What every service's part of the retention sweep needs (docs/retention.md, ADR 0024):
deleting a record's workflow executions from Temporal, and the policy's settings
(``RetentionSettings`` in ``mset_platform.settings``).

A workflow id can have several executions: every continue-as-new (ADR 0009) starts a new run
under the same id, and each keeps its own history. Deleting only the latest would leave the
earlier runs' histories behind, so every run the visibility store lists is deleted by its run
id, and then the latest by id alone in case visibility has not caught up with it yet.
Deleting is idempotent: an execution already gone is not an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode


async def delete_executions(client: Client, workflow_ids: Iterable[str]) -> int:
    """Delete every execution (every run) of each workflow id; return how many were deleted.

    A running execution is terminated first by the server. The server removes the history
    and the visibility record shortly after it answers, not at once: a caller that must see
    them gone waits for the listing to empty (``executions_listed``)."""
    deleted = 0
    for workflow_id in dict.fromkeys(workflow_ids):  # each once, in order
        runs = [
            wf.run_id
            async for wf in client.list_workflows(f"WorkflowId = '{_quoted(workflow_id)}'")
        ]
        for run_id in [*runs, ""]:  # "": the latest run, whatever visibility says
            if await _delete(client, workflow_id, run_id):
                deleted += 1
    return deleted


async def executions_listed(client: Client, workflow_ids: Iterable[str]) -> list[str]:
    """The workflow ids among ``workflow_ids`` that Temporal still lists (any run)."""
    listed: list[str] = []
    for workflow_id in dict.fromkeys(workflow_ids):
        async for _ in client.list_workflows(f"WorkflowId = '{_quoted(workflow_id)}'", limit=1):
            listed.append(workflow_id)
            break
    return listed


async def _delete(client: Client, workflow_id: str, run_id: str) -> bool:
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False  # gone already (an earlier attempt, or never started)
        raise
    return True


def _quoted(workflow_id: str) -> str:
    # Our ids are "<kind>-<uuid>"; refuse anything that could change the query.
    if "'" in workflow_id or "\\" in workflow_id:
        raise ValueError(f"not a workflow id MSET makes: {workflow_id!r}")
    return workflow_id
