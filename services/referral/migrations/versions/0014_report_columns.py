"""report columns: the facts the board reports count, kept beside each record

Revision ID: 0014
Revises: 0013

The tool's facts (gender, the band of the age at referral, ethnicity, legal status, area,
exploitation types) and the read model's (the Pre-MSET decision, the exit, the days each
took) as columns of each referral, each case's plan actions as rows of their own, and the
indexes a report's period is found by; existing rows are filled from their tool and read
model the way new ones are (services/referral/report_facts.py).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from mset_platform.db import UTCDateTime
from services.referral.report_facts import action_rows, state_columns, tool_columns

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 2000
# The columns each report index carries (so on PostgreSQL a report reads the index alone), as
# at this revision.
REFERRED_REPORT_COLUMNS = (
    "case_referral_id",
    "workflow_started",
    "agency_id",
    "origin",
    "referrer_level",
    "suggested_level",
    "record_seq",
    "report_gender",
    "report_age_band",
    "report_legal_status",
    "report_ethnicity",
    "report_area",
    "report_exploitation",
    "pre_mset_outcome",
    "pre_mset_level",
    "pre_mset_days",
)
EXITED_REPORT_COLUMNS = ("case_referral_id", "workflow_started", "exit_reason", "mset_days")
EPISODE_REPORT_COLUMNS = (
    "workflow_started",
    "agency_child_ref",
    "agency_id",
    "report_returned_at",
)
RETURN_REPORT_COLUMNS = (
    "workflow_started",
    "reported_at",
    "report_rhi_offered_at",
    "report_rhi_outcome",
)
UPDATED_REPORT_COLUMNS = ("id", "case_referral_id", "workflow_started")

COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("report_gender", sa.String(40)),
    ("report_age_band", sa.String(20)),
    ("report_ethnicity", sa.String(120)),
    ("report_legal_status", sa.String(40)),
    ("report_area", sa.String(120)),
    ("pre_mset_outcome", sa.String(40)),
    ("pre_mset_level", sa.String(10)),
    ("pre_mset_decided_at", sa.DateTime(timezone=True)),
    ("pre_mset_days", sa.Integer()),
    ("exited_at", sa.DateTime(timezone=True)),
    ("mset_days", sa.Integer()),
]


def upgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(
            sa.Column("report_exploitation", sa.String(400), nullable=False, server_default="")
        )
    op.create_table(
        "referral_case_actions",
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("referral_referrals.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("owner_agency_id", sa.Uuid(), nullable=False),
        sa.Column("aim", sa.String(40), nullable=False),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at_exit", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_referral_case_actions_created_at", "referral_case_actions", ["created_at"])
    with op.batch_alter_table("referral_missing_episodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("report_returned_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("report_rhi_offered_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("report_rhi_outcome", sa.String(40), nullable=True))
    _backfill()
    # Each episode's return and interview, as its record holds them.
    op.execute(
        "UPDATE referral_missing_episodes SET "
        "report_returned_at = (SELECT r.returned_at FROM referral_episode_records r "
        "WHERE r.episode_id = referral_missing_episodes.id), "
        "report_rhi_offered_at = (SELECT r.rhi_offered_at FROM referral_episode_records r "
        "WHERE r.episode_id = referral_missing_episodes.id), "
        "report_rhi_outcome = (SELECT r.rhi_outcome FROM referral_episode_records r "
        "WHERE r.episode_id = referral_missing_episodes.id)"
    )
    op.create_index(
        "ix_referral_referrals_la_submitted",
        "referral_referrals",
        ["local_authority", "submitted_at"],
        postgresql_include=list(REFERRED_REPORT_COLUMNS),
    )
    op.create_index(
        "ix_referral_referrals_la_exited",
        "referral_referrals",
        ["local_authority", "exited_at"],
        postgresql_include=list(EXITED_REPORT_COLUMNS),
    )
    op.create_index(
        "ix_referral_referrals_la_updated",
        "referral_referrals",
        ["local_authority", "updated_at"],
        postgresql_include=list(UPDATED_REPORT_COLUMNS),
    )
    op.create_index(
        "ix_referral_missing_la_reported",
        "referral_missing_episodes",
        ["local_authority", "reported_at"],
        postgresql_include=list(EPISODE_REPORT_COLUMNS),
    )
    op.create_index(
        "ix_referral_missing_la_returned",
        "referral_missing_episodes",
        ["local_authority", "report_returned_at"],
        postgresql_include=list(RETURN_REPORT_COLUMNS),
    )


def _backfill() -> None:
    """Every existing referral's columns and actions, from its tool and read model."""
    conn = op.get_bind()
    referrals = sa.table(
        "referral_referrals",
        sa.column("id", sa.Uuid()),
        sa.column("origin", sa.String()),
        sa.column("tool", sa.JSON()),
        sa.column("state", sa.JSON()),
        sa.column("submitted_at", UTCDateTime()),
        *(sa.column(n, UTCDateTime() if n.endswith("_at") else t) for n, t in COLUMNS),
        sa.column("report_exploitation", sa.String()),
    )
    actions = sa.table(
        "referral_case_actions",
        *(
            sa.column(n, t)
            for n, t in list[tuple[str, sa.types.TypeEngine[Any]]](
                [
                    ("case_id", sa.Uuid()),
                    ("seq", sa.Integer()),
                    ("owner_agency_id", sa.Uuid()),
                    ("aim", sa.String()),
                    ("target", sa.String()),
                    ("created_at", UTCDateTime()),
                    ("due_at", UTCDateTime()),
                    ("completed_at", UTCDateTime()),
                    ("ended_at_exit", sa.Boolean()),
                ]
            )
        ),
    )
    names = [n for n, _ in COLUMNS] + ["report_exploitation"]
    update = (
        referrals.update()
        .where(referrals.c.id == sa.bindparam("b_id"))
        .values({n: sa.bindparam(f"b_{n}") for n in names})
    )
    after = None
    while True:
        q = sa.select(
            referrals.c.id,
            referrals.c.origin,
            referrals.c.tool,
            referrals.c.state,
            referrals.c.submitted_at,
        ).order_by(referrals.c.id)
        if after is not None:
            q = q.where(referrals.c.id > after)
        batch = conn.execute(q.limit(BATCH)).all()
        if not batch:
            return
        params: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for id_, origin, tool, state, submitted_at in batch:
            cols = {
                **tool_columns(tool or {}, origin, submitted_at),
                **state_columns(state, submitted_at),
            }
            params.append({"b_id": id_, **{f"b_{k}": v for k, v in cols.items()}})
            rows.extend(action_rows(id_, state))
        conn.execute(update, params)
        if rows:
            conn.execute(actions.insert(), rows)
        after = batch[-1][0]


def downgrade() -> None:
    op.drop_index("ix_referral_missing_la_returned", "referral_missing_episodes")
    op.drop_index("ix_referral_missing_la_reported", "referral_missing_episodes")
    with op.batch_alter_table("referral_missing_episodes", schema=None) as batch_op:
        batch_op.drop_column("report_rhi_outcome")
        batch_op.drop_column("report_rhi_offered_at")
        batch_op.drop_column("report_returned_at")
    op.drop_index("ix_referral_referrals_la_updated", "referral_referrals")
    op.drop_index("ix_referral_referrals_la_exited", "referral_referrals")
    op.drop_index("ix_referral_referrals_la_submitted", "referral_referrals")
    op.drop_index("ix_referral_case_actions_created_at", "referral_case_actions")
    op.drop_table("referral_case_actions")
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.drop_column("report_exploitation")
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
