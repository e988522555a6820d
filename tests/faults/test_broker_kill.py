"""The broker SIGKILLed mid-flow and started again, on a stack of its own: the broker keeps
everything in memory, so its topics, its records and its consumer groups' offsets die with it.
Nothing is lost all the same: the topics are created again with their partition counts, the
outbox relay sends again every event some consumer group had not handled, and the consumers
rewind (docs/architecture.md, services/notifications/outbox.py). The checks are
test_kill.py's. `make test` runs it with 10 referrals, `make faults` with more.

On a stack of its own so that, should it fail, it leaves no other case a broken stack."""

from __future__ import annotations

import pytest

from tests.faults.test_kill import check_round
from tests.support.faults import FaultStack


@pytest.mark.timeout(900)
def test_the_broker_killed_mid_flow_loses_nothing(
    stack: FaultStack, request: pytest.FixtureRequest
) -> None:
    check_round(stack, "broker", int(request.config.getoption("--faults-count")))
