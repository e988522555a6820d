"""inbox, webhooks, e-mail outbox and handled events

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
        "notifications_email_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("inbox_item_id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_notifications_email_due",
        "notifications_email_messages",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notifications_email_messages_event_id"),
        "notifications_email_messages",
        ["event_id"],
        unique=False,
    )

    op.create_table(
        "notifications_handled_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("consumer", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consumer", "event_id", name="uq_notifications_handled"),
    )
    op.create_table(
        "notifications_inbox_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("referrer_agency_id", sa.Uuid(), nullable=False),
        sa.Column("local_authority", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("ruleset_version", sa.String(length=20), nullable=False),
        sa.Column("fired_rules", sa.JSON(), nullable=False),
        sa.Column("about", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("designation", sa.String(length=40), nullable=False),
        sa.Column("agency_ref", sa.String(length=40), nullable=True),
        sa.Column("target_role", sa.String(length=40), nullable=True),
        sa.Column("target_agency_id", sa.Uuid(), nullable=True),
        sa.Column("target_agency_type", sa.String(length=40), nullable=True),
        sa.Column("target_authority", sa.String(length=40), nullable=True),
        sa.Column("reescalation_of", sa.Uuid(), nullable=True),
        sa.Column("line_step", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("actioned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actioned_by", sa.Uuid(), nullable=True),
        sa.Column("action_note", sa.Text(), nullable=True),
        sa.Column("timer_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reescalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_notifications_inbox_items_case_id"),
        "notifications_inbox_items",
        ["case_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notifications_inbox_items_created_at"),
        "notifications_inbox_items",
        ["created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notifications_inbox_items_event_id"),
        "notifications_inbox_items",
        ["event_id"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_inbox_target",
        "notifications_inbox_items",
        ["target_role", "target_agency_id"],
        unique=False,
    )

    op.create_table(
        "notifications_webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_notifications_webhook_subscriptions_agency_id"),
        "notifications_webhook_subscriptions",
        ["agency_id"],
        unique=False,
    )

    op.create_table(
        "notifications_webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["notifications_webhook_subscriptions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_notifications_delivery"),
    )
    op.create_index(
        "ix_notifications_delivery_due",
        "notifications_webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notifications_webhook_deliveries_subscription_id"),
        "notifications_webhook_deliveries",
        ["subscription_id"],
        unique=False,
    )

    op.create_table(
        "notifications_webhook_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["notifications_webhook_deliveries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_notifications_webhook_attempts_delivery_id"),
        "notifications_webhook_attempts",
        ["delivery_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_notifications_webhook_attempts_delivery_id"),
        table_name="notifications_webhook_attempts",
    )

    op.drop_table("notifications_webhook_attempts")
    op.drop_index(
        op.f("ix_notifications_webhook_deliveries_subscription_id"),
        table_name="notifications_webhook_deliveries",
    )
    op.drop_index("ix_notifications_delivery_due", table_name="notifications_webhook_deliveries")

    op.drop_table("notifications_webhook_deliveries")
    op.drop_index(
        op.f("ix_notifications_webhook_subscriptions_agency_id"),
        table_name="notifications_webhook_subscriptions",
    )

    op.drop_table("notifications_webhook_subscriptions")
    op.drop_index("ix_notifications_inbox_target", table_name="notifications_inbox_items")
    op.drop_index(
        op.f("ix_notifications_inbox_items_event_id"), table_name="notifications_inbox_items"
    )
    op.drop_index(
        op.f("ix_notifications_inbox_items_created_at"), table_name="notifications_inbox_items"
    )
    op.drop_index(
        op.f("ix_notifications_inbox_items_case_id"), table_name="notifications_inbox_items"
    )

    op.drop_table("notifications_inbox_items")
    op.drop_table("notifications_handled_events")
    op.drop_index(
        op.f("ix_notifications_email_messages_event_id"), table_name="notifications_email_messages"
    )
    op.drop_index("ix_notifications_email_due", table_name="notifications_email_messages")

    op.drop_table("notifications_email_messages")
