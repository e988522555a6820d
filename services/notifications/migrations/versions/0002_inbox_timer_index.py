"""inbox: index for the re-escalation timer outbox

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_inbox_timer",
        "notifications_inbox_items",
        ["timer_started_at", "urgency"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_inbox_timer", table_name="notifications_inbox_items")
