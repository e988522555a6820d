"""identity, referrals and disclosures

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "referral_agencies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "referral_api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["referral_agencies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("referral_api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_api_keys_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "referral_referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("partner_reference", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("agency_child_ref", sa.String(length=64), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("referrer_level", sa.String(length=10), nullable=False),
        sa.Column("suggested_level", sa.String(length=10), nullable=True),
        sa.Column("next_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("workflow_started", sa.Boolean(), nullable=False),
        sa.Column("tool", sa.JSON(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["referral_agencies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "idempotency_key", name="uq_referral_idempotency_key"),
        sa.UniqueConstraint("agency_id", "partner_reference", name="uq_referral_partner_ref"),
        sa.UniqueConstraint("workflow_id"),
    )
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_referrals_agency_child_ref"), ["agency_child_ref"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_referrals_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_referrals_local_authority"), ["local_authority"], unique=False
        )

    op.create_table(
        "referral_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["referral_agencies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_users_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "referral_disclosures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral_referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_disclosures_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "referral_user_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["referral_users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("referral_user_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_user_tokens_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("referral_user_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_user_tokens_user_id"))

    op.drop_table("referral_user_tokens")
    with op.batch_alter_table("referral_disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_disclosures_referral_id"))

    op.drop_table("referral_disclosures")
    with op.batch_alter_table("referral_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_users_agency_id"))

    op.drop_table("referral_users")
    with op.batch_alter_table("referral_referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_referrals_local_authority"))
        batch_op.drop_index(batch_op.f("ix_referral_referrals_agency_id"))
        batch_op.drop_index(batch_op.f("ix_referral_referrals_agency_child_ref"))

    op.drop_table("referral_referrals")
    with op.batch_alter_table("referral_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_api_keys_agency_id"))

    op.drop_table("referral_api_keys")
    op.drop_table("referral_agencies")
