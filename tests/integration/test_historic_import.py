"""The historic import against a real database (SQLite and PostgreSQL), and with the real
workflows on the Temporal dev server: bad rows reported by line, field and reason with
nothing of them written; a re-run loads nothing twice; an interrupted run is completed by
running it again; a dry run writes nothing; an open case carries on at its stage; and the
board reports count what was imported."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from mset_contract.referral_workflow import ReferralState
from mset_contract.temporal import REFERRAL_STATE_QUERY, referral_workflow_id
from mset_contract.types import DEFAULT_AUTHORITIES
from mset_contract.vocab import AgencyType, Role, Stage
from mset_platform.cases import CaseClient
from mset_platform.field_crypto import DEV_FIELD_KEYRING, DEV_INDEX_KEY, BlindIndex, FieldCipher
from services.referral.child_identity import ChildIdentity, IdentityStore
from services.referral.episode_records import EpisodeRecord
from services.referral.identity import Identity
from services.referral.importer import HistoricImport, ImportSummary
from services.referral.store import MissingEpisode, Referral, Store
from tests.integration.conftest import Intake
from tests.support.wait import poll

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "import" / "example.jsonl"
CSC = "Northshire Children's Social Care"
POLICE = "Northshire Police"


def example_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]


def closed_rows() -> list[dict[str, Any]]:
    """The example's closed records (three cases, three episodes): no workflow needed."""
    rows = example_rows()
    return [rows[i] for i in (0, 1, 2, 4, 5, 6)]


def write(path: Path, rows: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def agencies(identity: Identity) -> None:
    identity.create_agency(CSC, AgencyType.childrens_social_care, authority="northshire")
    identity.create_agency(POLICE, AgencyType.police)


def counts(store: Store) -> tuple[int, int, int]:
    with store.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Referral)) or 0,
            s.scalar(select(func.count()).select_from(MissingEpisode)) or 0,
            s.scalar(select(func.count()).select_from(EpisodeRecord)) or 0,
        )


async def run(store: Store, path: Path, **kw: Any) -> ImportSummary:
    batch = kw.pop("batch_size", 500)
    cases = kw.pop("cases", None)
    job = HistoricImport(store, cases, DEFAULT_AUTHORITIES, batch_size=batch)
    return await job.run(path, CSC, **kw)


async def test_bad_rows_are_reported_by_line_field_and_reason_and_nothing_of_them_is_written(
    referral_store: Store, tmp_path: Path
) -> None:
    agencies(Identity(referral_store))
    good = example_rows()[1]
    bad_gender = copy.deepcopy(good)
    bad_gender["tool"]["partner_reference"] = "CSC-BAD-1"
    bad_gender["tool"]["child"]["gender"] = "unknown-code"
    unaccounted = copy.deepcopy(example_rows()[0])
    unaccounted["exit"]["actions"] = []
    elsewhere = copy.deepcopy(good)
    elsewhere["tool"]["partner_reference"] = "CSC-BAD-3"
    elsewhere["tool"]["child"]["local_authority"] = "westvale"
    no_return = copy.deepcopy(example_rows()[4])
    del no_return["returned"]
    path = write(
        tmp_path / "rows.jsonl",
        [good, bad_gender, unaccounted, "{not json", elsewhere, good, no_return],
    )

    summary = await run(referral_store, path)

    got = {(r.line, r.field) for r in summary.rejected}
    assert got == {
        (2, "tool.child.gender"),
        (3, "exit.actions"),
        (4, "(line)"),
        (5, "tool.child.local_authority"),
        (6, "tool.partner_reference"),  # the same reference as line 1
        (7, "rhi"),  # an interview with no return
    }
    reasons = {r.line: r.reason for r in summary.rejected}
    assert "A-101-2" in reasons[3] and "line 1" in reasons[6]
    assert (summary.loaded, summary.rejected_rows) == (1, 6)
    # Only the good row: nothing of a rejected one (not its episode record either).
    assert counts(referral_store) == (1, 0, 0)


async def test_a_rerun_loads_nothing_twice_and_refuses_a_changed_row(
    referral_store: Store, tmp_path: Path
) -> None:
    agencies(Identity(referral_store))
    path = write(tmp_path / "rows.jsonl", closed_rows())
    first = await run(referral_store, path)
    assert (first.loaded, first.skipped, first.rejected) == (6, 0, [])
    assert counts(referral_store) == (3, 3, 3)

    again = await run(referral_store, path)
    assert (again.loaded, again.skipped, again.rejected) == (0, 6, [])
    assert counts(referral_store) == (3, 3, 3)

    changed = closed_rows()
    changed[0]["exit"]["reason"] = "other"
    changed[0]["exit"]["detail"] = "Typed differently the second time."
    third = await run(referral_store, write(tmp_path / "changed.jsonl", changed))
    assert [(r.line, r.field) for r in third.rejected] == [(1, "tool.partner_reference")]
    assert counts(referral_store) == (3, 3, 3)


async def test_an_interrupted_import_is_completed_by_running_it_again(
    referral_store: Store, tmp_path: Path
) -> None:
    agencies(Identity(referral_store))
    path = write(tmp_path / "rows.jsonl", closed_rows())
    done = 0

    def interrupt(n: int) -> None:
        nonlocal done
        done += n
        if done == 3:  # mid-file, mid-batch: the second batch is not committed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await run(referral_store, path, batch_size=2, progress=interrupt)
    assert counts(referral_store) == (2, 0, 0)  # the first batch, whole

    resumed = await run(referral_store, path, batch_size=2)
    assert (resumed.skipped, resumed.loaded, resumed.rejected) == (2, 4, [])
    assert counts(referral_store) == (3, 3, 3)


async def test_a_dry_run_checks_every_row_and_writes_nothing(
    referral_store: Store, tmp_path: Path
) -> None:
    agencies(Identity(referral_store))
    rows: list[dict[str, Any] | str] = [*example_rows(), "[]"]
    summary = await run(referral_store, write(tmp_path / "rows.jsonl", rows), dry_run=True)
    assert (summary.loaded, summary.started) == (6, 2)
    assert [(r.line, r.field) for r in summary.rejected] == [(9, "(line)")]
    assert counts(referral_store) == (0, 0, 0)


async def case_state(client: Client, case_id: uuid.UUID) -> ReferralState:
    handle = client.get_workflow_handle(referral_workflow_id(case_id))
    return await handle.query(REFERRAL_STATE_QUERY, result_type=ReferralState)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_open_cases_carry_on_at_their_stage_and_the_reports_count_the_imported(
    intake: Intake, tmp_path: Path
) -> None:
    agencies(intake.identity)
    analyst = intake.new_user("Import Analyst", Role.analyst, CSC, ("northshire", "eastmoor"))
    cases = CaseClient(intake.client)

    summary = await run(intake.store, EXAMPLE, cases=cases)
    assert (summary.loaded, summary.started, summary.held, summary.rejected) == (6, 2, 0, [])

    with intake.store.session() as s:
        open_case = s.scalar(
            select(Referral).where(Referral.partner_reference == "CSC-2025-000012")
        )
        episode = s.scalar(
            select(MissingEpisode).where(MissingEpisode.partner_reference == "MFH-2025-0031")
        )
    assert open_case is not None and episode is not None
    assert open_case.workflow_started and episode.workflow_started

    # The case's workflow carries on where the case system left it: awaiting its first MSET
    # review, with the Pre-MSET decision it had, its rules asked again (a triage, deadlines).
    state = await poll(
        lambda: case_state(intake.client, open_case.id),
        lambda st: st.triage is not None,
        what="the imported case triaged by its workflow",
    )
    assert state.stage is Stage.awaiting_mset
    assert state.pre_mset is not None and state.pre_mset.decided_at.year == 2025
    # The episode's workflow has its return, and the interview's deadline from it.
    ep = await poll(
        lambda: cases.episode_state(episode.id),
        lambda e: e.rhi_due_at is not None,
        what="the open episode's return recorded",
    )
    assert ep.returned_at is not None and ep.returned_at.year == 2025

    async with intake.http(analyst) as http:
        period = {"since": "2024-01-01T00:00:00Z", "until": "2025-12-31T00:00:00Z"}
        resp = await http.get("/v1/reports/referrals", params={**period, "region": "all"})
        assert resp.status_code == 200, resp.text
        tables = {t["key"]: t for t in resp.json()["tables"]}
        by_agency = next(iter(tables.values()))
        assert by_agency["total"]["counts"] == {"referrals": 4}
        exits = await http.get("/v1/reports/exits", params={**period, "region": "all"})
        assert exits.status_code == 200, exits.text
        reasons = {
            r["label"]: r["counts"]
            for r in next(iter(exits.json()["tables"]))["rows"]
            if any(r["counts"].values())
        }
        assert set(reasons) == {"sufficiently_safe", "moved_out_of_area"}, reasons
        missing = await http.get(
            "/v1/reports/missing", params={**period, "authority": "northshire"}
        )
        assert missing.status_code == 200, missing.text


async def test_a_childs_identity_in_an_import_is_held_sealed_never_in_clear(
    referral_store: Store, tmp_path: Path
) -> None:
    """An import row may carry the child's name, NHS number and postcode, as a tool sent
    through the API may: they are sealed apart from the tool (ADR 0028), never stored in
    clear; an import that has no keys to seal them with refuses the row."""
    agencies(Identity(referral_store))
    row = copy.deepcopy(example_rows()[1])
    row["tool"]["child"] |= {
        "name": {"given": "Zebediah", "family": "Quillfeather"},
        "nhs_number": "943 476 5919",
        "postcode": "NT1 2AB",
    }
    path = write(tmp_path / "rows.jsonl", [row])

    refused = await run(referral_store, path)
    assert [(r.line, r.field) for r in refused.rejected] == [(1, "tool.child.name")]
    assert counts(referral_store) == (0, 0, 0)

    identities = IdentityStore(FieldCipher(DEV_FIELD_KEYRING), BlindIndex(DEV_INDEX_KEY))
    job = HistoricImport(referral_store, None, DEFAULT_AUTHORITIES, identities=identities)
    summary = await job.run(path, CSC)
    assert (summary.loaded, summary.rejected_rows) == (1, 0)
    with referral_store.session() as s:
        stored = s.scalars(select(Referral)).one()
        sealed = s.scalars(select(ChildIdentity)).one()
        assert sealed.referral_id == stored.id
        held = json.dumps(stored.tool) + repr(
            [getattr(sealed, c.key) for c in ChildIdentity.__table__.columns]
        )
    for clear in ("Zebediah", "Quillfeather", "9434765919", "943 476 5919", "NT1 2AB"):
        assert clear not in held
    assert "name" not in stored.tool["child"] and "nhs_number" not in stored.tool["child"]
