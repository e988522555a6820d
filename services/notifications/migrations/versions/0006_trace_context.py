"""the trace context a webhook delivery and an inbox item were written in

The consumer keeps its span's W3C ``traceparent`` on the row, so that the work done from it
later, on another loop (the webhook POST, the item's re-escalation workflow), continues the
trace of the request that led to it (docs/observability.md).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("notifications_webhook_deliveries", "notifications_inbox_items")


def upgrade() -> None:
    # Rows written before keep NULL: their later work starts a trace of its own.
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("traceparent", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("traceparent")
