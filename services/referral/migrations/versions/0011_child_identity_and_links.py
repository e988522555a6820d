"""child identity and same-child links: the identity sealed, its blind indexes, the links
and their append-only record (ADR 0028)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: tools accepted before this gave no identity, and are matched by the
    # agency's own child reference as before (ADR 0003).
    op.create_table(
        "referral_child_identities",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("nhs_index", sa.String(length=64), nullable=True),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_index(
        "ix_referral_child_identities_nhs_index", "referral_child_identities", ["nhs_index"]
    )
    op.create_table(
        "referral_child_block_keys",
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("referral_id", "key"),
    )
    op.create_index("ix_referral_child_block_keys_key", "referral_child_block_keys", ["key"])
    op.create_table(
        "referral_child_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("a_referral_id", sa.Uuid(), nullable=False),
        sa.Column("b_referral_id", sa.Uuid(), nullable=False),
        sa.Column("a_local_authority", sa.String(length=40), nullable=False),
        sa.Column("b_local_authority", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("basis", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("agreement", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["a_referral_id"], ["referral_referrals.id"]),
        sa.ForeignKeyConstraint(["b_referral_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("a_referral_id", "b_referral_id", name="uq_child_link"),
    )
    for column in ("a_referral_id", "b_referral_id", "a_local_authority", "b_local_authority"):
        op.create_index(f"ix_referral_child_links_{column}", "referral_child_links", [column])
    op.create_index("ix_referral_child_links_status", "referral_child_links", ["status"])
    op.create_table(
        "referral_child_link_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("by_agency_id", sa.Uuid(), nullable=True),
        sa.Column("by_role", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["referral_child_links.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ix_referral_child_link_events_link_id", "referral_child_link_events", ["link_id"]
    )


def downgrade() -> None:
    op.drop_table("referral_child_link_events")
    op.drop_table("referral_child_links")
    op.drop_table("referral_child_block_keys")
    op.drop_table("referral_child_identities")
