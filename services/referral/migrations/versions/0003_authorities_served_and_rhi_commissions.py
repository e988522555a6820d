"""authorities served by users, agencies' authority, RHI commissions

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing agencies and users get no authority: a user with none recorded serves none
    # for authority-level escalations until an administrator records them
    # (`mset user serve`), which docs/escalation-routing.md explains.
    with op.batch_alter_table("referral_agencies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_authority", sa.String(length=40), nullable=True))
    op.create_table(
        "referral_user_authorities",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["referral_users.id"]),
        sa.PrimaryKeyConstraint("user_id", "local_authority"),
    )
    op.create_index(
        op.f("ix_referral_user_authorities_local_authority"),
        "referral_user_authorities",
        ["local_authority"],
        unique=False,
    )
    op.create_table(
        "referral_rhi_commissions",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["referral_agencies.id"]),
        sa.PrimaryKeyConstraint("agency_id", "local_authority"),
    )
    op.create_index(
        op.f("ix_referral_rhi_commissions_local_authority"),
        "referral_rhi_commissions",
        ["local_authority"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_referral_rhi_commissions_local_authority"), table_name="referral_rhi_commissions"
    )
    op.drop_table("referral_rhi_commissions")
    op.drop_index(
        op.f("ix_referral_user_authorities_local_authority"),
        table_name="referral_user_authorities",
    )
    op.drop_table("referral_user_authorities")
    with op.batch_alter_table("referral_agencies", schema=None) as batch_op:
        batch_op.drop_column("local_authority")
