"""The information-sharing ledger cannot be changed or deleted, by the service or by anyone
with a connection to its database: the database itself refuses UPDATE and DELETE (a trigger,
on SQLite and PostgreSQL), and the hash chain shows an entry edited around the trigger. Real
databases of both kinds (issue 11, "nobody can change or delete an entry")."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_platform.db import make_engine
from services.referral.ledger import GENESIS, Disclosed, Ledger
from services.referral.migrate import MIGRATIONS
from services.referral.store import Store


def _entry(case_id: uuid.UUID) -> Disclosed:
    return Disclosed(
        case_id=case_id,
        view=DisclosureView.case_status,
        purpose=DisclosurePurpose.case_work,
        recipient_kind="partner_system",
        agency_id=uuid.uuid4(),
    )


def test_the_database_refuses_to_change_or_delete_an_entry(referral_store: Store) -> None:
    ledger = Ledger(referral_store)
    case_id = uuid.uuid4()
    ledger.record([_entry(case_id), _entry(case_id)])
    assert ledger.verify() is None

    for sql in (
        "UPDATE referral_ledger SET purpose = 'panel'",
        "UPDATE referral_ledger SET agency_id = NULL WHERE seq = 1",
        "DELETE FROM referral_ledger WHERE seq = 2",
        "DELETE FROM referral_ledger",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with referral_store.engine.begin() as conn:
                conn.execute(text(sql))
    if referral_store.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            with referral_store.engine.begin() as conn:
                conn.execute(text("TRUNCATE referral_ledger"))

    # Both entries are still there, unchanged, and the chain holds.
    entries = ledger.all(case_ids=[case_id])
    assert [e.purpose for e in entries] == ["case_work", "case_work"]
    assert entries[0].prev_hash == GENESIS
    assert entries[1].prev_hash == entries[0].entry_hash
    assert ledger.verify() is None


def test_an_entry_edited_around_the_trigger_breaks_the_chain(referral_store: Store) -> None:
    ledger = Ledger(referral_store)
    case_id = uuid.uuid4()
    ledger.record([_entry(case_id) for _ in range(3)])
    # Someone with the database owner's rights drops the trigger and edits an entry.
    with referral_store.engine.begin() as conn:
        if referral_store.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE referral_ledger DISABLE TRIGGER USER"))
            conn.execute(text("UPDATE referral_ledger SET purpose = 'panel' WHERE seq = 2"))
            conn.execute(text("ALTER TABLE referral_ledger ENABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER referral_ledger_no_update"))
            conn.execute(text("UPDATE referral_ledger SET purpose = 'panel' WHERE seq = 2"))
    assert ledger.verify() == 2


def test_concurrent_appends_keep_one_chain(referral_store: Store) -> None:
    ledger = Ledger(referral_store)
    case_id = uuid.uuid4()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: ledger.record([_entry(case_id)]), range(20)))
    entries = ledger.all(case_ids=[case_id])
    assert len(entries) == 20
    assert len({e.prev_hash for e in entries}) == 20
    assert ledger.verify() is None


def test_the_old_disclosure_log_moves_into_the_ledger(database_url: str) -> None:
    """Migration 0007: each row of the disclosure log becomes an entry, on the lawful basis
    its referral's tool recorded, chained in time order."""
    engine = make_engine(database_url)
    cfg = MIGRATIONS.config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0006")
        rid, agency, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        agencies = sa.table(
            "referral_agencies",
            sa.column("id", sa.Uuid()),
            sa.column("name", sa.String()),
            sa.column("type", sa.String()),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        referrals = sa.table(
            "referral_referrals",
            *(
                sa.column(c, sa.String())
                for c in (
                    "partner_reference",
                    "agency_child_ref",
                    "local_authority",
                    "stage",
                    "referrer_level",
                    "workflow_id",
                    "origin",
                )
            ),
            sa.column("id", sa.Uuid()),
            sa.column("agency_id", sa.Uuid()),
            sa.column("workflow_started", sa.Boolean()),
            sa.column("open_actions", sa.Integer()),
            sa.column("tool", sa.JSON()),
            sa.column("submitted_at", sa.DateTime(timezone=True)),
            sa.column("updated_at", sa.DateTime(timezone=True)),
        )
        log = sa.table(
            "referral_disclosures",
            sa.column("id", sa.Uuid()),
            sa.column("referral_id", sa.Uuid()),
            sa.column("agency_id", sa.Uuid()),
            sa.column("user_id", sa.Uuid()),
            sa.column("purpose", sa.String()),
            sa.column("at", sa.DateTime(timezone=True)),
        )
        with engine.begin() as conn:
            conn.execute(
                agencies.insert().values(
                    id=agency, name="CSC", type="childrens_social_care", created_at=now
                )
            )
            conn.execute(
                referrals.insert().values(
                    id=rid,
                    agency_id=agency,
                    partner_reference="P-1",
                    agency_child_ref="C-1",
                    local_authority="northshire",
                    stage="submitted",
                    referrer_level="low",
                    workflow_id=f"referral-{rid}",
                    workflow_started=True,
                    origin="tool",
                    open_actions=0,
                    tool={"consent": {"lawful_basis": "vital_interests"}},
                    submitted_at=now,
                    updated_at=now,
                )
            )
            for purpose, minutes in (("status", 2), ("panel", 1)):
                conn.execute(
                    log.insert().values(
                        id=uuid.uuid4(),
                        referral_id=rid,
                        agency_id=agency,
                        user_id=user if purpose == "panel" else None,
                        purpose=purpose,
                        at=now - timedelta(minutes=minutes),
                    )
                )
        MIGRATIONS.upgrade(engine)
        ledger = Ledger(Store(engine))
        entries = ledger.all(case_ids=[rid])
        assert [(e.view, e.purpose, e.recipient_kind) for e in entries] == [
            ("case_status", "case_work", "partner_system"),
            ("panel_papers", "panel", "user"),
        ]
        assert {e.lawful_basis for e in entries} == {"vital_interests"}
        assert ledger.verify() is None
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM referral_ledger"))
    finally:
        engine.dispose()
