"""episode records: each missing episode's return and Return Home Interview, for the reports

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_episode_records",
        sa.Column(
            "episode_id",
            sa.Uuid(),
            sa.ForeignKey("referral_missing_episodes.id"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("located_in_authority", sa.String(40), nullable=True),
        sa.Column("rhi_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rhi_offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rhi_outcome", sa.String(40), nullable=True),
        sa.Column("rhi_deadline_breached", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_referral_episode_records_returned_at", "referral_episode_records", ["returned_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_referral_episode_records_returned_at", "referral_episode_records")
    op.drop_table("referral_episode_records")
