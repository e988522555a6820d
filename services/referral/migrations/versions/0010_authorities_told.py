"""authorities told: a case shared with another authority once that authority was told

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: an authority told before this was recorded (its coordinators hold the
    # inbox item) does not see the case through the API until the case tells it again.
    op.create_table(
        "referral_authorities_told",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("case_id", "local_authority"),
    )


def downgrade() -> None:
    op.drop_table("referral_authorities_told")
