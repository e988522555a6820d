"""Activities the triage service hosts on its own task queue (``mset-triage``).

Workflows call ``triage.evaluate`` by name with a ``TriageInput`` and get a ``TriageResult``:
the same ``Triage`` object, and so the same code path, as ``POST /v1/evaluate``.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from mset_contract.temporal import TRIAGE_EVALUATE_ACTIVITY
from mset_contract.triage import TriageInput, TriageResult
from services.triage.domain import Triage, UnknownRulesetVersion


class TriageActivities:
    def __init__(self, triage: Triage) -> None:
        self.triage = triage

    # An async activity that calls the engine directly: an evaluation takes a fraction of a
    # millisecond and holds the GIL throughout (the rules engine never releases it), so a
    # thread pool would add hand-offs and no parallelism. Calls are serialised in the engine.
    @activity.defn(name=TRIAGE_EVALUATE_ACTIVITY)
    async def evaluate(self, inp: TriageInput) -> TriageResult:
        try:
            return self.triage.evaluate(inp)
        except UnknownRulesetVersion as exc:
            # Retrying cannot make an unknown rules version known.
            raise ApplicationError(
                str(exc), type="UnknownRulesetVersion", non_retryable=True
            ) from exc
