"""Every Temporal name MSET Flow uses, in one place: task queues, workflow types, activity
names, signal/update/query names, search attributes and workflow ids.

Workflows call activities, and services call workflows, *by name*, so neither imports the
other's code. The string values are in saved workflow histories (``tests/workflows/histories``)
and in running systems: **never change a value**; add a new name beside the old one instead.

One naming scheme for the Python constants: the name's own words in upper snake case (without
the product prefix ``mset``/``Mset`` and without the kind word), then the kind —
``_TASK_QUEUE``, ``_WORKFLOW``, ``_ACTIVITY``, ``_SIGNAL``, ``_UPDATE``, ``_QUERY``,
``_SEARCH_ATTRIBUTE``. An activity's words are its ``<service>.<verb>`` value
(``triage.evaluate`` → ``TRIAGE_EVALUATE_ACTIVITY``); a signal, update or query belongs to one
workflow, so its constant starts with that workflow's words
(``ReferralWorkflow``'s ``exit_case`` → ``REFERRAL_EXIT_CASE_UPDATE``). Workflow ids are built
by ``<workflow>_workflow_id()`` functions.

Plain values and ``SearchAttributeKey`` only: no side effects at import, so workflow modules
import this through ``workflow.unsafe.imports_passed_through()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.common import SearchAttributeKey

if TYPE_CHECKING:
    from mset_contract.vocab import MeetingKind

# --- task queues: one per owner (docs/architecture.md §3) --------------------------------

WORKFLOWS_TASK_QUEUE = "mset-workflows"
REFERRAL_TASK_QUEUE = "mset-referral"
TRIAGE_TASK_QUEUE = "mset-triage"
MEETING_TASK_QUEUE = "mset-meeting"
NOTIFICATIONS_TASK_QUEUE = "mset-notifications"

# --- workflow types ------------------------------------------------------------------------

# On WORKFLOWS_TASK_QUEUE (workflows/worker.py).
REFERRAL_WORKFLOW = "ReferralWorkflow"
MISSING_EPISODE_WORKFLOW = "MissingEpisodeWorkflow"
# On MEETING_TASK_QUEUE, started by the meeting service's Temporal Schedules.
MEETING_CYCLE_WORKFLOW = "MeetingCycleWorkflow"
# On NOTIFICATIONS_TASK_QUEUE, started by the notifications worker's timer outbox.
NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW = "notifications.InboxReescalation"
# On WORKFLOWS_TASK_QUEUE, started daily by the retention schedule (RETENTION_SCHEDULE_ID).
RETENTION_SWEEP_WORKFLOW = "RetentionSweepWorkflow"

# --- activities, each on its owning service's task queue -----------------------------------

TRIAGE_EVALUATE_ACTIVITY = "triage.evaluate"
REFERRAL_TRIAGE_FACTS_ACTIVITY = "referral.triage_facts"
REFERRAL_EPISODE_FACTS_ACTIVITY = "referral.episode_facts"
REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY = "referral.open_for_consideration"
REFERRAL_RECORD_STAGE_ACTIVITY = "referral.record_stage"
# A missing episode's return and interview, kept for the reports (docs/decisions/0023).
REFERRAL_RECORD_EPISODE_ACTIVITY = "referral.record_episode"
REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY = "referral.record_authority_told"
MEETING_OPEN_MEETING_ACTIVITY = "meeting.open_meeting"
NOTIFICATIONS_PUBLISH_ACTIVITY = "notifications.publish"
NOTIFICATIONS_REESCALATE_ACTIVITY = "notifications.reescalate"
# The retention sweep (workflows/retention.py): the referral service says whose records are
# due and keeps the record of each erasure; every service erases what it holds.
REFERRAL_RETENTION_DUE_ACTIVITY = "referral.retention_due"
REFERRAL_RETENTION_BEGIN_ACTIVITY = "referral.retention_begin"
REFERRAL_RETENTION_PROGRESS_ACTIVITY = "referral.retention_progress"
REFERRAL_RETENTION_FINISH_ACTIVITY = "referral.retention_finish"
MEETING_RETENTION_ERASE_ACTIVITY = "meeting.retention_erase"
NOTIFICATIONS_RETENTION_ERASE_ACTIVITY = "notifications.retention_erase"

# --- ReferralWorkflow's updates, signals and query (the meeting and referral services send
# these by name) ----------------------------------------------------------------------------

REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE = "record_pre_mset_decision"
REFERRAL_RECORD_MSET_REVIEW_UPDATE = "record_mset_review"
REFERRAL_RECORD_ACTION_PROGRESS_UPDATE = "record_action_progress"
REFERRAL_EXIT_CASE_UPDATE = "exit_case"
REFERRAL_REASSESSED_SIGNAL = "reassessed"
REFERRAL_MISSING_EPISODE_SIGNAL = "missing_episode"
REFERRAL_STATE_QUERY = "state"
# The ``ApplicationError`` type of an update refused because its decision id was recorded
# with another body; its details are the names of the fields that differ. The case client
# (``mset_platform.cases``) answers it as ``DecisionConflict``.
REFERRAL_DECISION_CONFLICT_ERROR = "DecisionConflict"

# --- MissingEpisodeWorkflow's updates and query ----------------------------------------------

MISSING_EPISODE_RECORD_RETURN_UPDATE = "record_return"
MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE = "record_rhi_outcome"
MISSING_EPISODE_STATE_QUERY = "state"

# --- search attributes. No personal data: stages, levels, authority codes, deadlines --------

STAGE_SEARCH_ATTRIBUTE = SearchAttributeKey.for_keyword("MsetStage")
RISK_LEVEL_SEARCH_ATTRIBUTE = SearchAttributeKey.for_keyword("MsetRiskLevel")
LOCAL_AUTHORITY_SEARCH_ATTRIBUTE = SearchAttributeKey.for_keyword("MsetLocalAuthority")
NEXT_DEADLINE_SEARCH_ATTRIBUTE = SearchAttributeKey.for_datetime("MsetNextDeadline")

# Name → type, as `temporal operator search-attribute create` and the dev server's
# `--search-attribute` take them (deploy/stack.py, tests/support/temporal.py).
SEARCH_ATTRIBUTES: dict[str, str] = {
    STAGE_SEARCH_ATTRIBUTE.name: "Keyword",
    RISK_LEVEL_SEARCH_ATTRIBUTE.name: "Keyword",
    LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name: "Keyword",
    NEXT_DEADLINE_SEARCH_ATTRIBUTE.name: "Datetime",
}

# --- workflow and schedule ids ----------------------------------------------------------------


def referral_workflow_id(referral_id: object) -> str:
    return f"referral-{referral_id}"


def missing_episode_workflow_id(episode_id: object) -> str:
    return f"missing-{episode_id}"


def meeting_schedule_id(local_authority: str, kind: MeetingKind) -> str:
    return f"meeting-schedule-{local_authority}-{kind.value}"


def meeting_cycle_workflow_id(local_authority: str, kind: MeetingKind) -> str:
    # The schedule appends the scheduled time, so each firing has its own workflow id.
    return f"meeting-cycle-{local_authority}-{kind.value}"


# The one retention schedule; each firing's workflow id is this plus the scheduled time.
RETENTION_SCHEDULE_ID = "retention-sweep"


def inbox_reescalation_workflow_id(item_id: object) -> str:
    # From the inbox item's id: a redelivered event never starts a second timer.
    return f"inbox-reescalation-{item_id}"
