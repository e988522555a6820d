"""The historic import's rows (``mset import``, docs/import.md): a partnership's years of
referrals and missing episodes from its case systems, one row a record.

A row is built from the models the API takes, so it is validated as strictly as the API: a
referral row holds the Risk Assessment Tool (``ReferralCreate``) with the Pre-MSET decision
(``PreMsetDecisionRequest``), the MSET reviews and their actions (``MsetReviewRequest``,
``NewAction``) and the exit (``ExitRequest``) it had, each with the moment it was taken; a
missing-episode row holds the police report (``MissingReportCreate``) with the return
(``ReturnCreate``) and the Return Home Interview's outcome (``RhiOutcomeCreate``). What the
API's workflow would check when each decision was taken (its order, the stage it needs, the
rationale a level change needs) is checked by ``services.referral.historic`` on the whole
row. The JSON Schema in docs/import/ is generated from these models (a test keeps it so).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from mset_contract.cases import ExitRequest, MsetReviewRequest, NewAction, PreMsetDecisionRequest
from mset_contract.referral import (
    MissingReportCreate,
    ReferralCreate,
    ReturnCreate,
    RhiOutcomeCreate,
)
from mset_contract.types import ActionId, Instant, ShortText
from mset_contract.vocab import RiskLevel

# The context every row is validated in: the child's age is judged on the day of the
# referral or report (``services.referral.historic``), not today (a child referred in 2019
# may be an adult now); every other check of the API's models applies as it is.
HISTORIC_CONTEXT = {"historic": True}


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HistoricPreMset(PreMsetDecisionRequest):
    """The Pre-MSET panel's decision, as recorded then (the latest, if it decided twice)."""

    decided_at: Instant = Field(description="When the panel decided: not in the future.")


class HistoricAction(NewAction):
    """A plan action the review agreed, and what became of it."""

    action_id: ActionId = Field(
        description="The case system's id for the action; an exit names it (exit.actions)."
    )
    owner_agency_id: UUID | None = Field(  # type: ignore[assignment]
        default=None, description="The owning agency's id; or name it in owner_agency."
    )
    owner_agency: ShortText | None = Field(
        default=None,
        description="The owning agency's name as registered (mset agency create), when its "
        "id is not known to the case system.",
    )
    completed_at: Instant | None = Field(
        default=None, description="When it was completed, if it was: not in the future."
    )
    # A case system knows no MSET entity ids (ADR 0030): an imported action names none.
    entity_id: None = Field(default=None, description="Not taken in an import: always null.")

    @model_validator(mode="after")
    def _one_owner(self) -> HistoricAction:
        if (self.owner_agency_id is None) == (self.owner_agency is None):
            raise ValueError("name the owning agency once: owner_agency_id or owner_agency")
        return self


class HistoricReview(MsetReviewRequest):
    """An MSET review, as recorded then: the level, the rationale, the actions agreed."""

    decided_at: Instant = Field(description="When the MSET group reviewed: not in the future.")
    actions: list[HistoricAction] = Field(default_factory=list, max_length=50)  # type: ignore[assignment]
    # An LMAPS referral is the meeting service's record: not imported here.
    raise_lmaps: None = Field(default=None, exclude=True)


class HistoricExit(ExitRequest):
    """The exit from MSET, as recorded then; each action still open at the exit is named in
    ``actions`` as 'closed' or 'carried' on by the case holder, as the API requires."""

    exited_at: Instant = Field(description="When the case exited: not in the future.")


class ImportReferral(_Row):
    """One referral (a case) from the partnership's case system."""

    kind: Literal["referral"] = "referral"
    agency: ShortText | None = Field(
        default=None,
        description="The referring agency's name as registered (mset agency create); the "
        "import's --agency when absent. Its partner references are unique to it.",
    )
    submitted_at: Instant = Field(description="When the referral was made: not in the future.")
    tool: ReferralCreate
    suggested_level: RiskLevel | None = Field(
        default=None,
        description="The level the case system's triage suggested, where it recorded one.",
    )
    pre_mset: HistoricPreMset | None = None
    reviews: list[HistoricReview] = Field(default_factory=list, max_length=200)
    exit: HistoricExit | None = None

    @property
    def partner_reference(self) -> str:
        return self.tool.partner_reference


class ImportMissingEpisode(_Row):
    """One missing episode from the police's system, with its return and interview."""

    kind: Literal["missing_episode"] = "missing_episode"
    agency: ShortText | None = Field(
        default=None,
        description="The reporting agency's name as registered; the import's --agency when absent.",
    )
    report: MissingReportCreate
    returned: ReturnCreate | None = Field(
        default=None, description="The child's return, if they have returned."
    )
    rhi: RhiOutcomeCreate | None = Field(
        default=None, description="The Return Home Interview's outcome, once recorded."
    )

    @property
    def partner_reference(self) -> str:
        return self.report.partner_reference


ImportRow = Annotated[ImportReferral | ImportMissingEpisode, Field(discriminator="kind")]
IMPORT_ROW = TypeAdapter[ImportReferral | ImportMissingEpisode](ImportRow)

SCHEMA_ID = "https://mset-flow.example/schemas/import-row.schema.json"


def import_row_schema() -> dict[str, Any]:
    """The JSON Schema of one row (docs/import/import-row.schema.json is this, written out)."""
    schema = IMPORT_ROW.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "MSET Flow historic import row",
        "description": "One line of a JSON Lines import file (or one CSV line, its columns the "
        "dotted paths of these fields): a referral with its decisions, or a missing episode "
        "with its return and Return Home Interview. docs/import.md says more.",
        **schema,
    }
