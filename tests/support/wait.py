"""Waiting on conditions, never on fixed sleeps.

CI runs on a busy 2-core machine: a chain of workflow task → activity → event can take many
seconds there while taking milliseconds on a quiet one. Every wait in the suite polls the
condition itself with one generous deadline (well inside pytest's per-test limit), so a slow
machine makes a test slower, never red; a condition that never holds still fails, with the
last thing seen in the message.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus as RawStatus
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

T = TypeVar("T")

# Generous on purpose: the slowest chain seen on a loaded CI machine took ~20 s.
DEFAULT_TIMEOUT = 60.0
_INTERVAL = 0.05


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    within: float = DEFAULT_TIMEOUT,
    what: str = "condition",
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f} s")
        await asyncio.sleep(_INTERVAL)


async def poll(
    fetch: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    within: float = DEFAULT_TIMEOUT,
    what: str = "condition",
) -> T:
    """Fetch until ``accept`` holds for what was fetched; return it. The assertion names the
    last value seen, so a failure says where things stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await fetch()
        if accept(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f} s; last seen: {value!r}")
        await asyncio.sleep(_INTERVAL)


async def settled(handle: WorkflowHandle[Any, Any], within: float = DEFAULT_TIMEOUT) -> None:
    """Wait until the workflow has nothing in flight: no workflow task and no activity pending.

    "It happened exactly once" needs this: after it, everything the workflow was going to do
    in response to what the test did has been done, so a count is final rather than a
    snapshot taken after an arbitrary pause.
    """

    async def idle() -> bool:
        raw = await _describe(handle)
        return not raw.pending_activities and not raw.HasField("pending_workflow_task")

    # An activity's completion and the workflow task it schedules are one server-side step,
    # so there is no moment between them at which this could wrongly see the workflow idle.
    await eventually(idle, within, what=f"workflow {handle.id} settled")


async def terminate_settled(handle: WorkflowHandle[Any, Any], reason: str = "test over") -> None:
    """Terminate a workflow once nothing of it is in flight.

    The time-skipping server keeps its clock locked while a task is in flight and does not
    unlock it for a task cut short by termination: a workflow terminated mid-activity froze
    the clock, and every later skip of the session waited until it timed out.
    """
    raw = await _describe(handle)
    if raw.workflow_execution_info.status != RawStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        # Ended already (a test may end a held case itself): the server may still list the
        # activity it was retrying, which would never settle.
        return
    try:
        await settled(handle)
    except AssertionError:
        pass  # something keeps retrying: end it anyway, the test has its answer
    try:
        await handle.terminate(reason)
    except RPCError:
        pass  # finished already


async def _describe(handle: WorkflowHandle[Any, Any]) -> DescribeWorkflowExecutionResponse:
    # The raw answer: the SDK's decoding of a closed workflow's search attributes fails on the
    # time-skipping server (a datetime attribute it returns empty).
    return await handle._client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=handle._client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id),
        )
    )


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Advance the time-skipping server's clock by ``duration``.

    ``WorkflowEnvironment.sleep`` sends this RPC with the client's default deadline (10 s).
    The server answers only once every timer in the skipped span has fired and the work each
    one caused (workflow tasks, activities) has run in real time, which on a loaded machine
    takes longer than that: the deadline here is the suite's generous one.
    """
    req = SleepRequest()
    req.duration.FromTimedelta(duration)
    started = asyncio.get_running_loop().time()
    try:
        await env.client.test_service.unlock_time_skipping_with_sleep(
            req, timeout=timedelta(seconds=DEFAULT_TIMEOUT)
        )
    except RPCError as exc:
        waited = asyncio.get_running_loop().time() - started
        raise AssertionError(
            f"skipping {duration} failed after {waited:.1f} s: {exc}; "
            f"open workflows: {await _open_workflows(env)}"
        ) from exc


async def _open_workflows(env: WorkflowEnvironment) -> list[str]:
    """What a stuck skip is waiting for: each open workflow, its task queue, and what of it is
    in flight (the time-skipping server answers the older list call, not visibility queries)."""
    client = env.client
    listed = await client.workflow_service.list_open_workflow_executions(
        ListOpenWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=100)
    )
    found = []
    for ex in listed.executions:
        raw = await _describe(client.get_workflow_handle(ex.execution.workflow_id))
        pending = [f"{a.activity_type.name}:{a.state}" for a in raw.pending_activities]
        task = raw.pending_workflow_task.state if raw.HasField("pending_workflow_task") else None
        found.append(
            f"{ex.execution.workflow_id} on {ex.task_queue} activities={pending} task={task}"
        )
    return found


async def outcome(env: WorkflowEnvironment | None, handle: WorkflowHandle[Any, T]) -> T:
    """The result of a workflow the test has already driven to its end.

    ``handle.result()`` on the time-skipping server unlocks time skipping for the wait and
    locks it again afterwards, two more RPCs with the client's 10 s deadline; if the second
    times out on a loaded machine after the server applied it, the SDK locks once more, and
    from then on every skip of the session waits forever. Waiting for the close here and
    reading the result with automatic skipping off sends neither.
    """

    async def closed() -> bool:
        raw = await _describe(handle)
        return raw.workflow_execution_info.status != RawStatus.WORKFLOW_EXECUTION_STATUS_RUNNING

    await eventually(closed, what=f"workflow {handle.id} closed")
    if env is None:  # not the time-skipping server: nothing to lock
        return await handle.result()
    with env.auto_time_skipping_disabled():
        return await handle.result()
