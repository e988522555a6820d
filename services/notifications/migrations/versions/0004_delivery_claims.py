"""a claim token on webhook deliveries and e-mails: the attempt that holds the row

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
    for table in ("notifications_webhook_deliveries", "notifications_email_messages"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claim_token", sa.Uuid(), nullable=True))


def downgrade() -> None:
    for table in ("notifications_webhook_deliveries", "notifications_email_messages"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claim_token")
