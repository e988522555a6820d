"""persons of concern and locations as entities: the mentions sealed, their blind indexes,
suggested matches and their append-only record, actions aimed at them, shares (ADR 0030)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "referral_entities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("location_kind", sa.String(length=20), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("referral_entities", "kind", "referral_id", "case_id", "local_authority", "created_at")
    op.create_table(
        "referral_entity_keys",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["referral_entities.id"]),
        sa.PrimaryKeyConstraint("entity_id", "key"),
    )
    _index("referral_entity_keys", "key")
    op.create_table(
        "referral_entity_matches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("a_entity_id", sa.Uuid(), nullable=False),
        sa.Column("b_entity_id", sa.Uuid(), nullable=False),
        sa.Column("a_local_authority", sa.String(length=40), nullable=False),
        sa.Column("b_local_authority", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("agreement", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["a_entity_id"], ["referral_entities.id"]),
        sa.ForeignKeyConstraint(["b_entity_id"], ["referral_entities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("a_entity_id", "b_entity_id", name="uq_entity_match"),
    )
    _index(
        "referral_entity_matches",
        "a_entity_id",
        "b_entity_id",
        "a_local_authority",
        "b_local_authority",
        "status",
    )
    op.create_table(
        "referral_entity_match_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("by_agency_id", sa.Uuid(), nullable=True),
        sa.Column("by_role", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["match_id"], ["referral_entity_matches.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    _index("referral_entity_match_events", "match_id")
    op.create_table(
        "referral_entity_actions",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("aim", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", "action_id"),
    )
    _index("referral_entity_actions", "entity_id")
    op.create_table(
        "referral_entity_shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("to_authority", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["referral_entities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entity_id", "to_authority", name="uq_entity_share"),
    )
    _index("referral_entity_shares", "entity_id", "to_authority")


def downgrade() -> None:
    for table in (
        "referral_entity_shares",
        "referral_entity_actions",
        "referral_entity_match_events",
        "referral_entity_matches",
        "referral_entity_keys",
        "referral_entities",
    ):
        op.drop_table(table)
