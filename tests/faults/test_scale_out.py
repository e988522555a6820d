"""Scale-out: two replicas of every API and every worker, all against one PostgreSQL
database, and one replica of each SIGKILLed mid-run and left down: the survivors finish the
run, nothing accepted is lost and nothing is done twice.

High-risk referrals go in through the referral API's replicas in turn (a client's round
robin, no load balancer; a refused connection is retried, with the same body, on the next
one). When half are accepted, the second replica of every API and worker is killed at once
(no handler runs, nothing is flushed) and not started again: its unfinished activities, its
workflow tasks, its Kafka partitions and its leased webhook deliveries and e-mails are the
survivors' to take over. Then, as in ``test_kill``: every accepted referral is at
``awaiting_pre_mset``, and its escalation reached the manager's inbox, the partner's webhook
and the mailbox exactly once each (``tests.support.faults.outcome``).

The second replicas are the ones killed because the services call each other at the first
replica's address (``deploy.stack``: what a load balancer's address is in production);
killing that one would test the missing load balancer, not MSET.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db import postgres_database
from tests.support.faults import FaultStack, assert_round, fault_stack, kill_round

# Twenty processes start on two cores, then the survivors wait out the killed workers'
# activity time-outs and the consumer group's session time-out.
pytestmark = pytest.mark.timeout(900)

REPLICAS = 2


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    root = tmp_path_factory.mktemp("scale")
    with (
        postgres_database() as url,
        fault_stack(root / "data", root / "logs", replicas=REPLICAS, database_url=url) as stack,
    ):
        yield stack


def second_replicas(stack: FaultStack) -> list[str]:
    """One replica of every API and every worker (the last of each)."""
    sup = stack.sup
    assert sup is not None
    groups = [g for g in sup.groups() if g.endswith(("-api", "-worker"))]
    return [sup.replicas_of(g)[-1] for g in groups]


def test_one_replica_of_every_api_and_worker_killed_mid_run_loses_nothing(
    replicated: FaultStack, request: pytest.FixtureRequest
) -> None:
    count = int(request.config.getoption("--faults-count"))
    kill = second_replicas(replicated)
    assert len(kill) == 9, kill  # four APIs, five workers
    r = kill_round(replicated, kill, count, rate=5.0, within=300.0)
    assert_round(replicated, r, count)
