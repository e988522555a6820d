"""disclosure reports: each webhook delivery, e-mail and inbox read, noted before it is made and
relayed to the referral service's information-sharing ledger

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications_disclosure_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications_disclosure_reports") as batch:
        batch.create_index("ix_notifications_disclosure_unsent", ["sent_at", "created_at"])


def downgrade() -> None:
    op.drop_table("notifications_disclosure_reports")
