"""case links, read model level, missing episodes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_missing_episodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("partner_reference", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("agency_child_ref", sa.String(length=64), nullable=False),
        sa.Column("case_referral_id", sa.Uuid(), nullable=True),
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("workflow_started", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["referral_agencies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "partner_reference", name="uq_missing_partner_ref"),
        sa.UniqueConstraint("workflow_id"),
    )
    with op.batch_alter_table("referral_missing_episodes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_missing_episodes_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_missing_episodes_agency_child_ref"),
            ["agency_child_ref"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_referral_missing_episodes_case_referral_id"),
            ["case_referral_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_referral_missing_episodes_local_authority"),
            ["local_authority"],
            unique=False,
        )

    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("level", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("origin", sa.String(length=20), nullable=False, server_default="tool")
        )
        batch_op.add_column(
            sa.Column("open_actions", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("case_referral_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("previous_referral_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_referral_referrals_case_referral_id"), ["case_referral_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_referrals_case_referral_id"))
        batch_op.drop_column("previous_referral_id")
        batch_op.drop_column("case_referral_id")
        batch_op.drop_column("open_actions")
        batch_op.drop_column("origin")
        batch_op.drop_column("level")

    with op.batch_alter_table("referral_missing_episodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_missing_episodes_local_authority"))
        batch_op.drop_index(batch_op.f("ix_referral_missing_episodes_case_referral_id"))
        batch_op.drop_index(batch_op.f("ix_referral_missing_episodes_agency_id"))

    op.drop_table("referral_missing_episodes")
