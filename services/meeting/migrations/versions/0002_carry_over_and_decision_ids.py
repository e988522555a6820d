"""agenda items carried over to the next meeting; the decision id a case holds an item's
decision under

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_agenda_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carried_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("carried_to_meeting_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("carried_from_item_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("decision_id", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_meeting_agenda_items_carried_at"), ["carried_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting_agenda_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_agenda_items_carried_at"))
        batch_op.drop_column("decision_id")
        batch_op.drop_column("carried_from_item_id")
        batch_op.drop_column("carried_to_meeting_id")
        batch_op.drop_column("carried_at")
