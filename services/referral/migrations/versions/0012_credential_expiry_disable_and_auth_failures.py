"""credentials: staff token expiry, disabled users, failed authentication attempts

Revision ID: 0012
Revises: 0011
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Tokens issued before expiry existed: valid for this long after the upgrade, then refused
# (an administrator issues new ones with `mset user token`), rather than cut off mid-shift.
LEGACY_TOKEN_GRACE = timedelta(hours=12)


def upgrade() -> None:
    with op.batch_alter_table("referral_user_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("referral_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    tokens = sa.table("referral_user_tokens", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().values(expires_at=datetime.now(UTC) + LEGACY_TOKEN_GRACE))
    op.create_table(
        "referral_auth_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_referral_auth_failures_source_at", "referral_auth_failures", ["source", "at"]
    )
    op.create_index("ix_referral_auth_failures_at", "referral_auth_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_referral_auth_failures_at", table_name="referral_auth_failures")
    op.drop_index("ix_referral_auth_failures_source_at", table_name="referral_auth_failures")
    op.drop_table("referral_auth_failures")
    with op.batch_alter_table("referral_users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
    with op.batch_alter_table("referral_user_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
