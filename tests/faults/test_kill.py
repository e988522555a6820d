"""Each part of the stack SIGKILLed mid-flow and started again: nothing accepted is lost,
nothing is sent twice, and nothing else needs restarting.

High-risk referrals go in through the referral API at a steady pace (each retried with the
same body until accepted, as a partner's system does); when half are accepted the part is
killed (no handler runs) and started at once. Then, for every accepted referral: it is at
``awaiting_pre_mset``; its escalation is in the manager's inbox (notifications API), at the
partner's webhook receiver and in the managers' mailbox (SMTP), each exactly once, counted
after the notifications ledger has nothing left to send. Every part is still running.

"Exactly once" is what each receiver has, keeping what its protocol says is one message
(docs/decisions/0018): the inbox its items; the partner one delivery per event id
(``MSET-Event-Id``, the CloudEvent's id); the mail system one message per Message-ID.
HTTP and SMTP are at least once: a notifications worker killed between the receiver's
acceptance and its ledger write sends that message again, with the same key, which the
receiver drops. Those copies are counted and printed, not failed on; a copy the ledger did
not count an attempt for (a send the service did not know it made) fails the test, as does
anything the receiver has twice.

`make test` kills a few parts with 10 referrals each; `make faults` kills every part with
more (``--faults-all``, ``--faults-count``).
"""

from __future__ import annotations

import pytest

from tests.support.faults import FaultStack, assert_round, fault_round

# The stack starts in this module's first test; a killed worker's activities wait out their
# 30 s start-to-close timeout, and the broker's and Temporal's clients back off.
pytestmark = pytest.mark.timeout(600)

# What `make test` kills: the front door, the case workflows' worker, the notifications
# worker (publisher, consumers and senders), Temporal.
QUICK = ["referral-api", "workflows-worker", "notifications-worker", "temporal"]
EVERY = [
    "referral-api",
    "referral-worker",
    "triage-worker",
    "meeting-worker",
    "workflows-worker",
    "notifications-api",
    "notifications-worker",
    "temporal",
]  # and the broker: test_broker_kill.py, on a stack of its own


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fault" not in metafunc.fixturenames:
        return
    names = EVERY if metafunc.config.getoption("--faults-all") else QUICK
    metafunc.parametrize("fault", names)


@pytest.fixture
def count(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--faults-count"))


def test_a_part_killed_mid_flow_loses_nothing_and_sends_nothing_twice(
    stack: FaultStack, fault: str, count: int
) -> None:
    check_round(stack, fault, count)


def check_round(stack: FaultStack, fault: str, count: int) -> None:
    r = fault_round(stack, fault, count, rate=5.0, within=240.0)
    assert_round(stack, r, count)
