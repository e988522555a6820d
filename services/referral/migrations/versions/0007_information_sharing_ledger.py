"""the information-sharing ledger: append-only (UPDATE and DELETE refused by a trigger), hash-
chained; the disclosure log's rows move into it

Revision ID: 0007
Revises: 0006
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REFUSAL = "the information-sharing ledger is append-only: entries cannot be changed or deleted"

# What each purpose of the old disclosure log was, as a ledger view and purpose.
OLD_PURPOSES = {
    "status": ("case_status", "case_work"),
    "panel": ("panel_papers", "panel"),
    "meeting_who": ("case_who", "panel"),
    "action_progress": ("action_progress", "case_work"),
    "owned_actions": ("owned_actions", "case_work"),
    "pre_mset_decision": ("case_decision", "panel"),
    "mset_review": ("case_decision", "panel"),
    "exit": ("case_decision", "case_work"),
}


def upgrade() -> None:
    op.create_table(
        "referral_ledger",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("record", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("view", sa.String(length=40), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=True),
        sa.Column("recipient", sa.String(length=300), nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("lawful_basis", sa.String(length=40), nullable=False),
        sa.Column("reported_by", sa.String(length=20), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("report_id"),
        sa.UniqueConstraint("prev_hash"),
    )
    with op.batch_alter_table("referral_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_ledger_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_ledger_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_referral_ledger_agency_id"), ["agency_id"], unique=False
        )

    _move_old_log()
    op.drop_table("referral_disclosures")

    # Append-only, enforced by the database itself, whoever connects.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION referral_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER referral_ledger_no_change BEFORE UPDATE OR DELETE ON "
            "referral_ledger FOR EACH ROW EXECUTE FUNCTION referral_ledger_append_only()"
        )
        op.execute(
            "CREATE TRIGGER referral_ledger_no_truncate BEFORE TRUNCATE ON referral_ledger "
            "FOR EACH STATEMENT EXECUTE FUNCTION referral_ledger_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER referral_ledger_no_{what.lower()} BEFORE {what} ON "
                f"referral_ledger BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def _move_old_log() -> None:
    """The disclosure log's rows become the ledger's first entries, chained in time order,
    on the lawful basis their referral's tool recorded."""
    from services.referral.ledger import GENESIS, chain_hash

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT d.referral_id, d.agency_id, d.user_id, d.purpose, d.at, r.tool, "
            "r.case_referral_id FROM referral_disclosures d JOIN referral_referrals r "
            "ON r.id = d.referral_id ORDER BY d.at, d.id"
        )
    ).fetchall()
    if not rows:
        return
    ledger = sa.table(
        "referral_ledger",
        *(
            sa.column(c, t)
            for c, t in (
                ("id", sa.Uuid()),
                ("at", sa.DateTime(timezone=True)),
                ("case_id", sa.Uuid()),
                ("record", sa.String()),
                ("record_id", sa.Uuid()),
                ("view", sa.String()),
                ("fields", sa.JSON()),
                ("recipient_kind", sa.String()),
                ("user_id", sa.Uuid()),
                ("agency_id", sa.Uuid()),
                ("role", sa.String()),
                ("recipient", sa.String()),
                ("purpose", sa.String()),
                ("lawful_basis", sa.String()),
                ("reported_by", sa.String()),
                ("report_id", sa.Uuid()),
                ("prev_hash", sa.String()),
                ("entry_hash", sa.String()),
            )
        ),
    )
    import json
    from datetime import UTC, datetime

    prev = GENESIS
    for referral_id, agency_id, user_id, purpose, at, tool, case_referral_id in rows:
        if isinstance(at, str):  # SQLite without the model's type
            at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        tool = json.loads(tool) if isinstance(tool, str) else tool
        view, why = OLD_PURPOSES.get(purpose, ("case_status", "case_work"))
        service = agency_id == uuid.UUID(int=0) or str(agency_id) == str(uuid.UUID(int=0))
        content = {
            "id": uuid.uuid4(),
            "at": at,
            "case_id": _uuid(case_referral_id) or _uuid(referral_id),
            "record": "referral",
            "record_id": _uuid(referral_id),
            "view": view,
            "fields": [],
            "recipient_kind": "service" if service else ("user" if user_id else "partner_system"),
            "user_id": _uuid(user_id),
            "agency_id": _uuid(agency_id),
            "role": None,
            "recipient": None,
            "purpose": why,
            "lawful_basis": (tool.get("consent") or {}).get("lawful_basis") or "public_task",
            "reported_by": "referral",
            "report_id": None,
        }
        entry_hash = chain_hash(prev, content)
        bind.execute(ledger.insert().values(**content, prev_hash=prev, entry_hash=entry_hash))
        prev = entry_hash


def _uuid(v: object) -> uuid.UUID | None:
    if v is None or isinstance(v, uuid.UUID):
        return v
    return uuid.UUID(str(v))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER referral_ledger_no_truncate ON referral_ledger")
        op.execute("DROP TRIGGER referral_ledger_no_change ON referral_ledger")
        op.execute("DROP FUNCTION referral_ledger_append_only()")
    op.create_table(
        "referral_disclosures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referral_referrals.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_disclosures_referral_id"), ["referral_id"], unique=False
        )
    # The ledger is dropped whole (its triggers with it on SQLite): a downgrade loses it.
    op.drop_table("referral_ledger")
