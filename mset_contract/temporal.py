"""Temporal names shared by workflows and services: task queues, activity names, search
attributes. Workflows call activities *by name* so they never import service code."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# Task queues: one per owner (DESIGN.md §2).
WORKFLOWS_TASK_QUEUE = "mset-workflows"
REFERRAL_TASK_QUEUE = "mset-referral"
TRIAGE_TASK_QUEUE = "mset-triage"
MEETING_TASK_QUEUE = "mset-meeting"
NOTIFICATIONS_TASK_QUEUE = "mset-notifications"

# Activity names.
TRIAGE_EVALUATE_ACTIVITY = "triage.evaluate"
REFERRAL_RECORD_STAGE_ACTIVITY = "referral.record_stage"

# Search attributes. No PII: ids, stages, levels, authority codes and deadlines only.
SA_STAGE = SearchAttributeKey.for_keyword("MsetStage")
SA_RISK_LEVEL = SearchAttributeKey.for_keyword("MsetRiskLevel")
SA_LOCAL_AUTHORITY = SearchAttributeKey.for_keyword("MsetLocalAuthority")
SA_NEXT_DEADLINE = SearchAttributeKey.for_datetime("MsetNextDeadline")

SEARCH_ATTRIBUTES: dict[str, str] = {
    SA_STAGE.name: "Keyword",
    SA_RISK_LEVEL.name: "Keyword",
    SA_LOCAL_AUTHORITY.name: "Keyword",
    SA_NEXT_DEADLINE.name: "Datetime",
}


def referral_workflow_id(referral_id: object) -> str:
    return f"referral-{referral_id}"
