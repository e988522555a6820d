"""Faults at scale: N high-risk referrals per fault, each part of the stack SIGKILLed when
half are accepted and started again at once; what reached where, what was lost or sent twice,
and how long the part took to recover.

    python -m bench.faults.run --count 1000            # every part, 1000 referrals each
    python -m bench.faults.run --count 100 --faults referral-api temporal
    python -m bench.faults.run --count 1000 --rate 20  # referrals a second (default 10)

The stack is ``deploy.stack.plan()``'s parts as separate processes (``deploy.supervise``) on
free ports in a temporary directory, with a webhook receiver and an SMTP server on loopback;
the rounds share it, one agency each. A row:

- accepted: referrals the API answered 202 (a refused one is retried with the same body, as a
  partner's system does, until accepted);
- reached: accepted referrals at ``awaiting_pre_mset`` whose escalation is in the manager's
  inbox, at the webhook receiver and in the mailbox;
- lost: accepted referrals missing any of those when the wait (``--within``) ran out;
- duplicated: referrals with anything a receiver has twice, keeping one per key (two inbox
  items, two webhook event ids, two e-mail Message-IDs: docs/decisions/0017); copies sent
  again under the same key are at-least-once delivery working, printed below the row;
- recovery: from the restart to the first referral submitted after it having its escalation
  in the inbox (the part healthy and the chain consuming again).

"none" is a round with no fault, the baseline. The broker round runs last: its restart
empties the broker (topics, records, offsets), which the outbox relay and the consumers
recover from while the round runs. Figures are printed, never asserted. The inbox is read
from the notifications database, since its API answers 200 items at a time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.support.faults import db_manager_items, fault_round, fault_stack

FAULTS = [
    "none",
    "referral-api",
    "referral-worker",
    "triage-worker",
    "meeting-worker",
    "workflows-worker",
    "notifications-api",
    "notifications-worker",
    "temporal",
    "broker",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="referrals per fault")
    parser.add_argument("--rate", type=float, default=10.0, help="referrals a second")
    parser.add_argument("--within", type=float, default=300.0, help="seconds to wait per round")
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=FAULTS)
    args = parser.parse_args()
    faults = [f for f in FAULTS if f in args.faults]  # the broker last

    rows: list[tuple[str, int, int, int, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="mset-bench-faults-") as tmp:
        print("starting the stack's parts in", tmp, flush=True)
        with fault_stack(Path(tmp) / "data", Path(tmp) / "logs") as stack:
            for fault in faults:
                print(f"{fault}: {args.count} referrals at {args.rate:g}/s ...", flush=True)
                started = time.monotonic()
                r = fault_round(
                    stack,
                    "" if fault == "none" else fault,
                    args.count,
                    rate=args.rate,
                    within=args.within,
                    items=db_manager_items,
                )
                took = time.monotonic() - started
                o = r.outcome
                rows.append(
                    (fault, o.accepted, o.reached, o.lost_referrals, o.duplicated_referrals,
                     r.recovery_seconds, took)
                )  # fmt: skip
                for line in [*o.lost[:5], *o.duplicated[:5], *o.uncounted[:5], *o.resent[:5]]:
                    print("   ", line, flush=True)
                if r.exited:
                    print(f"    parts down afterwards: {r.exited}", flush=True)

    print()
    print(
        f"MSET fault bench — {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.count} high-risk referrals per fault at "
        f"{args.rate:g}/s, SIGKILL at half, restart at once"
    )
    print(
        f"{'fault':<22}{'accepted':>9}{'reached':>9}{'lost':>7}{'duplicated':>12}"
        f"{'recovery s':>12}{'round s':>9}"
    )
    for fault, acc, reached, lost, dup, rec, took in rows:
        recovery = "-" if fault == "none" else ("never" if math.isnan(rec) else f"{rec:.1f}")
        print(f"{fault:<22}{acc:>9}{reached:>9}{lost:>7}{dup:>12}{recovery:>12}{took:>9.0f}")


if __name__ == "__main__":
    main()
