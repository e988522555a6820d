"""Scale-out: two replicas of every API and every worker against one PostgreSQL database,
one replica of each SIGKILLed mid-run and left down; what the survivors delivered.

    python -m bench.scale.run --count 1000               # 1000 high-risk referrals
    python -m bench.scale.run --count 100 --rate 10
    python -m bench.scale.run --count 1000 --spare notifications-worker
    python -m bench.scale.run --count 1000 --baseline    # a round with no kill first

The stack's parts (``deploy.stack.plan()`` with ``replicas``) run as separate processes on
free ports in a temporary directory, every service in a fresh PostgreSQL database (dropped
afterwards), with a webhook receiver and an SMTP server on loopback. High-risk referrals go
in at ``--rate`` a second, spread over the referral API's replicas in turn (a refused one is
retried on the next with the same body). When half are accepted the last replica of every
API and worker (but ``--spare``) is SIGKILLed at once and not started again. A row, as in
``bench/faults``:

- accepted: referrals the API answered 202;
- reached: accepted referrals at ``awaiting_pre_mset`` whose escalation is in the manager's
  inbox, at the webhook receiver and in the mailbox;
- lost: accepted referrals missing any of those when the wait (``--within``) ran out;
- duplicated: referrals with anything delivered more than once;
- carry-on: from the kill to the first referral submitted after it having its escalation in
  the inbox (the survivors alone carrying the whole chain).

The services call each other at replica 1's address (a load balancer's, in production), so
the last replicas are the ones killed. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.support.db import postgres_database
from tests.support.faults import db_manager_items, fault_stack, kill_round

GROUPS = (
    "referral-api",
    "triage-api",
    "meeting-api",
    "notifications-api",
    "referral-worker",
    "triage-worker",
    "meeting-worker",
    "notifications-worker",
    "workflows-worker",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="referrals per round")
    parser.add_argument("--rate", type=float, default=10.0, help="referrals a second")
    parser.add_argument("--replicas", type=int, default=2, help="of every API and worker")
    parser.add_argument("--within", type=float, default=600.0, help="s to wait per round")
    parser.add_argument("--spare", nargs="*", choices=GROUPS, default=[], help="not killed")
    parser.add_argument("--baseline", action="store_true", help="a round with no kill first")
    args = parser.parse_args()

    rows: list[tuple[str, int, int, int, int, float, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="mset-bench-scale-") as tmp,
        postgres_database() as url,
    ):
        print("starting the stack's parts in", tmp, flush=True)
        with fault_stack(
            Path(tmp) / "data", Path(tmp) / "logs", replicas=args.replicas, database_url=url
        ) as stack:
            sup = stack.sup
            assert sup is not None
            kill = [sup.replicas_of(g)[-1] for g in GROUPS if g not in args.spare]
            rounds: list[tuple[str, list[str]]] = ([("none", [])] if args.baseline else []) + [
                (f"{len(kill)} replicas killed", kill)
            ]
            for label, names in rounds:
                print(f"{label}: {args.count} referrals at {args.rate:g}/s ...", flush=True)
                if names:
                    print("  killing at half:", ", ".join(names), flush=True)
                started = time.monotonic()
                r = kill_round(
                    stack, names, args.count, args.rate, args.within, items=db_manager_items
                )
                took = time.monotonic() - started
                o = r.outcome
                rows.append(
                    (label, o.accepted, o.reached, o.lost_referrals, o.duplicated_referrals,
                     r.recovery_seconds, took)
                )  # fmt: skip
                for line in [*o.lost[:5], *o.duplicated[:5]]:
                    print("   ", line, flush=True)
                if r.exited:
                    print(f"    other parts down afterwards: {r.exited}", flush=True)

    print()
    print(
        f"MSET scale-out bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.replicas} replicas of every API and worker on "
        f"PostgreSQL; {args.count} high-risk referrals at {args.rate:g}/s per round, the last "
        f"replica of each SIGKILLed at half and left down"
        + (f" (spared: {', '.join(args.spare)})" if args.spare else "")
    )
    print(
        f"{'round':<24}{'accepted':>9}{'reached':>9}{'lost':>7}{'duplicated':>12}"
        f"{'carry-on s':>12}{'round s':>9}"
    )
    for label, acc, reached, lost, dup, rec, took in rows:
        carry = "never" if math.isnan(rec) else f"{rec:.1f}"
        print(f"{label:<24}{acc:>9}{reached:>9}{lost:>7}{dup:>12}{carry:>12}{took:>9.0f}")


if __name__ == "__main__":
    main()
