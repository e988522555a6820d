"""random webhook secrets, stored sealed, and the previous one during a rotation's overlap

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("secret_sealed", sa.String(300)),
    ("previous_secret_sealed", sa.String(300)),
    ("previous_secret_until", sa.DateTime(timezone=True)),
    ("secret_rotated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Existing subscriptions keep NULL: their secret stays the derived one until rotated.
    with op.batch_alter_table("notifications_webhook_subscriptions") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications_webhook_subscriptions") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
