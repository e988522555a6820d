"""read model: the exit reason of a closed case

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exit_reason", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.drop_column("exit_reason")
