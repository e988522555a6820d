"""Fixtures of the time-skipping tier."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.case_world import CaseActivities
from tests.support.case_world import case_activities as start_case_activities


@pytest.fixture
async def case_activities(time_skipping: WorkflowEnvironment) -> AsyncIterator[CaseActivities]:
    """The activity stand-ins, on the real task queues of the test's own server, for as long
    as that server lives (see ``CaseActivities``)."""
    async with start_case_activities(time_skipping.client) as host:
        yield host
