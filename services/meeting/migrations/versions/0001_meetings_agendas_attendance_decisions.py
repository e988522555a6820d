"""meetings, agenda items, attendance, actions, lmaps referrals, disclosures

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
        "meeting_meetings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("called_by_schedule", sa.Boolean(), nullable=False),
        sa.Column("called_by", sa.Uuid(), nullable=True),
        sa.Column("agenda_built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chair_name", sa.String(length=120), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("origin"),
    )
    with op.batch_alter_table("meeting_meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_meetings_held_at"), ["held_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_meeting_meetings_local_authority"), ["local_authority"], unique=False
        )

    op.create_table(
        "meeting_agenda_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("lmaps_referral_id", sa.Uuid(), nullable=True),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("claimed_by", sa.Uuid(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "referral_id", name="uq_meeting_item_referral"),
    )
    with op.batch_alter_table("meeting_agenda_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_agenda_items_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_agenda_items_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "meeting_attendees",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("person_name", sa.String(length=120), nullable=False),
        sa.Column("agency_name", sa.String(length=120), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("capacity", sa.String(length=20), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meeting_attendees", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_attendees_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "meeting_disclosures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("what", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meeting_disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_disclosures_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "meeting_lmaps_referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("raised_meeting_id", sa.Uuid(), nullable=False),
        sa.Column("raised_item_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.Uuid(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("considered_meeting_id", sa.Uuid(), nullable=True),
        sa.Column("considered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["raised_meeting_id"],
            ["meeting_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("raised_item_id"),
    )
    with op.batch_alter_table("meeting_lmaps_referrals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_lmaps_referrals_local_authority"),
            ["local_authority"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_lmaps_referrals_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "meeting_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("owner_agency_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("aim", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["meeting_agenda_items.id"],
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referral_id", "action_id", name="uq_meeting_action"),
    )
    with op.batch_alter_table("meeting_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_actions_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_actions_owner_agency_id"), ["owner_agency_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_actions_owner_agency_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_actions_meeting_id"))

    op.drop_table("meeting_actions")
    with op.batch_alter_table("meeting_lmaps_referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_lmaps_referrals_referral_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_lmaps_referrals_local_authority"))

    op.drop_table("meeting_lmaps_referrals")
    with op.batch_alter_table("meeting_disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_disclosures_meeting_id"))

    op.drop_table("meeting_disclosures")
    with op.batch_alter_table("meeting_attendees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_attendees_meeting_id"))

    op.drop_table("meeting_attendees")
    with op.batch_alter_table("meeting_agenda_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_agenda_items_referral_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_agenda_items_meeting_id"))

    op.drop_table("meeting_agenda_items")
    with op.batch_alter_table("meeting_meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_meetings_local_authority"))
        batch_op.drop_index(batch_op.f("ix_meeting_meetings_held_at"))

    op.drop_table("meeting_meetings")
