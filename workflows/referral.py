"""ReferralWorkflow: the system of record for where a referral is.

First version (issue 2): records the referral's facts in workflow state, exposes them by
query, and waits. The full lifecycle (triage, Pre-MSET, MSET, actions, exit) builds on this.
"""

from __future__ import annotations

from temporalio import workflow

# The sandbox re-imports this module on every run; the contract models are pure pydantic
# with no side effects at import, so they are passed through rather than re-imported.
with workflow.unsafe.imports_passed_through():
    from mset_contract.referral_workflow import (
        REFERRAL_WORKFLOW,
        ReferralState,
        StartReferralInput,
    )
    from mset_contract.vocab import Stage


@workflow.defn(name=REFERRAL_WORKFLOW)
class ReferralWorkflow:
    def __init__(self) -> None:
        self._state: ReferralState | None = None

    @workflow.run
    async def run(self, inp: StartReferralInput) -> ReferralState:
        self._state = ReferralState(
            referral_id=inp.referral_id,
            agency_id=inp.agency_id,
            local_authority=inp.local_authority,
            stage=Stage.submitted,
            submitted_at=inp.submitted_at,
            referrer_level=inp.referrer_level,
        )
        # Waits until the lifecycle (next issue) moves the case on; a durable wait that
        # survives worker and server restarts, not a poll.
        await workflow.wait_condition(lambda: self._state is not None and self._exited())
        return self._state

    def _exited(self) -> bool:
        return self._state is not None and self._state.stage == Stage.exited

    @workflow.query(name="state")
    def state(self) -> ReferralState | None:
        return self._state
