"""dead letters: which consumer group dead-lettered a message, of what type, when (counts for
the ops dashboard; the message stays on the dead-letter topic)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications_dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer_group", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=120), nullable=True),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications_dead_letters") as batch:
        batch.create_index("ix_notifications_dead_letters_at", ["dead_lettered_at"])


def downgrade() -> None:
    op.drop_table("notifications_dead_letters")
