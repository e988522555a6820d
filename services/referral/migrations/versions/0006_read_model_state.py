"""read model: the case's state as status reads show it, and its record number

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        # Filled by the case's next record; until then a read shows the columns above.
        batch_op.add_column(sa.Column("state", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("record_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.drop_column("record_seq")
        batch_op.drop_column("state")
