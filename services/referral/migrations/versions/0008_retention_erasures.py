"""retention: the record of each erasure; the disclosure log outlives the referrals it names

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode names the reflected one by this convention.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_referral_disclosures_referral_id_referral_referrals"


def upgrade() -> None:
    op.create_table(
        "referral_retention_erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("policy", sa.String(length=80), nullable=False),
        sa.Column("keep_until_age", sa.Integer(), nullable=False),
        sa.Column("years_after_closure", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("referral_ids", sa.JSON(), nullable=False),
        sa.Column("episode_ids", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_retention_erasures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_retention_erasures_started_at"), ["started_at"], unique=False
        )
    _disclosures_outlive_referrals()


def _disclosures_outlive_referrals() -> None:
    """The disclosure log records who was shown a child's record: it is kept when the record
    is erased (it names a random id, never the child), so its rows must not hold the
    referral's row in place. (Where a later migration has replaced the log, nothing to do.)"""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "referral_disclosures" not in inspector.get_table_names():
        return
    fks = [
        fk
        for fk in inspector.get_foreign_keys("referral_disclosures")
        if fk["referred_table"] == "referral_referrals"
    ]
    if not fks:
        return
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("referral_disclosures", naming_convention=NAMING) as batch_op:
            batch_op.drop_constraint(SQLITE_FK, type_="foreignkey")
    else:
        for fk in fks:
            assert fk["name"] is not None  # PostgreSQL names every constraint
            op.drop_constraint(fk["name"], "referral_disclosures", type_="foreignkey")


def downgrade() -> None:
    # The foreign key is not put back: erased referrals' disclosures would break it.
    with op.batch_alter_table("referral_retention_erasures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_retention_erasures_started_at"))
    op.drop_table("referral_retention_erasures")
