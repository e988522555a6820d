"""``mset import``: a partnership's history loaded from its case systems (docs/import.md).

Each row is validated with the API's own models (``mset_contract.historic_import``) and its
decisions checked in order (``historic``); a row that fails is reported (line, field,
reason) and nothing of it is written. Rows are written a batch at a time, one transaction a
batch, and a row is one referral, or one missing episode with its record: there is nothing
of a row to half-write.

Idempotent by partner reference (per agency, the API's own unique constraint): a row whose
reference is recorded already, with the same content, is skipped; with other content it is
rejected. So a re-run loads nothing twice, and an interrupted run is resumed by running it
again: the batches it committed are skipped, the rest loaded.

Closed cases (exited, or closed at Pre-MSET) and closed episodes (returned, interview outcome
recorded) are stored as records, with their stage history and exit reason, without a
workflow. Open ones are written undelivered (``workflow_started`` false: shown to no one,
counted nowhere), their workflow is started — a case from its imported state
(``StartReferralInput.carried``: at its stage, with its deadlines), an episode as reported,
then its return — and only then are they marked delivered. A start that fails leaves the
row held; the next run starts it (the start joins a workflow already running).
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mset_contract.historic_import import (
    HISTORIC_CONTEXT,
    IMPORT_ROW,
    HistoricAction,
    ImportMissingEpisode,
    ImportReferral,
)
from mset_contract.referral_workflow import (
    ReferralState,
    ReturnInput,
    StartMissingEpisodeInput,
    StartReferralInput,
)
from mset_contract.temporal import missing_episode_workflow_id, referral_workflow_id
from mset_contract.vocab import AgencyType
from mset_platform.cases import CaseClient
from mset_platform.clock import Clock, utcnow
from mset_platform.idempotency import body_hash, canonical
from mset_platform.settings import authority_refusal
from services.referral.child_identity import IdentityStore, has_identity
from services.referral.domain import CLOSED_STAGES
from services.referral.entities import as_stored
from services.referral.episode_records import EpisodeRecord, episode_report_columns
from services.referral.historic import RowRefused, historic_case, historic_episode
from services.referral.report_facts import action_rows, state_columns, tool_columns
from services.referral.store import CaseActionFact, MissingEpisode, Referral, Store

Format = Literal["jsonl", "csv"]
Row = ImportReferral | ImportMissingEpisode
BATCH = 500
# Workflows started at once after a batch: enough to keep Temporal busy, few enough not to
# swamp a small cluster with a history's worth of open cases at once.
START_CONCURRENCY = 16


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str
    reason: str


@dataclass
class ImportSummary:
    """What a run did. ``loaded``: closed records written; ``started``: open cases and
    episodes whose workflow was started; ``skipped``: rows loaded by an earlier run;
    ``held``: open rows written whose workflow could not be started (run again)."""

    dry_run: bool
    rows: int = 0
    loaded: int = 0
    started: int = 0
    skipped: int = 0
    held: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({r.line for r in self.rejected})


class ImportRefused(Exception):
    """The import cannot start (its file or agency): nothing was read."""


# --- reading -----------------------------------------------------------------------------


def file_format(path: Path, fmt: str | None) -> Format:
    chosen = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    if chosen not in ("jsonl", "csv"):
        raise ImportRefused(f"unknown format {chosen!r}: 'jsonl' or 'csv'")
    return "csv" if chosen == "csv" else "jsonl"


def count_rows(path: Path, fmt: Format) -> int:
    """The rows in the file (for the progress bar's total)."""
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "csv":
            return sum(1 for _ in csv.reader(f)) - 1
        return sum(1 for line in f if line.strip())


def read_rows(path: Path, fmt: Format) -> Iterator[tuple[int, dict[str, Any] | Rejection]]:
    """(line number, the row as data) for each row, or the reason it cannot be read."""
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield n, Rejection(n, "(line)", f"not JSON: {exc.msg} at column {exc.colno}")
                    continue
                if not isinstance(doc, dict):
                    yield n, Rejection(n, "(line)", "a row is a JSON object")
                    continue
                yield n, doc
            return
        reader = csv.DictReader(f)
        start = 2
        for rec in reader:
            n, start = start, reader.line_num + 1
            try:
                yield n, unflatten(rec)
            except ValueError as exc:
                yield n, Rejection(n, "(line)", str(exc))


def unflatten(rec: dict[str | None, Any]) -> dict[str, Any]:
    """A CSV line as the row it stands for: each column is a dotted path
    (``tool.child.gender``); an empty cell is an absent field; a cell holding a JSON array
    or object (``tool.indicators``), or true/false/null, is that value."""
    out: dict[str, Any] = {}
    for key, cell in rec.items():
        if key is None:
            raise ValueError("more cells than the header has columns")
        if cell is None or cell == "":
            continue
        value: Any = cell
        text = cell.strip()
        if text[:1] in "[{" or text in ("true", "false", "null"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"column {key}: not JSON: {exc.msg}") from exc
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ValueError(f"column {key}: {p} is given as a value and as an object")
            node = nxt
        node[parts[-1]] = value
    return out


def validate(line: int, doc: dict[str, Any]) -> Row | list[Rejection]:
    """The row, validated by the API's models; or every field that is wrong."""
    try:
        return IMPORT_ROW.validate_python(doc, context=HISTORIC_CONTEXT)
    except ValidationError as exc:
        out = []
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err["loc"]]
            if loc and loc[0] in ("referral", "missing_episode"):
                loc = loc[1:]  # the union's tag: the row's kind, not a field
            out.append(Rejection(line, ".".join(loc) or "(row)", err["msg"]))
        return out


# --- writing -----------------------------------------------------------------------------


@dataclass
class _Valid:
    line: int
    row: Row
    agency_id: uuid.UUID
    agency_type: AgencyType
    hash: str


@dataclass
class _ToStart:
    """An open row written (or found held from an earlier run) whose workflow to start."""

    row_id: uuid.UUID
    valid: _Valid
    start: StartReferralInput | StartMissingEpisodeInput


Progress = Callable[[int], None]


class HistoricImport:
    def __init__(
        self,
        store: Store,
        cases: CaseClient | None,
        authorities: Collection[str],
        clock: Clock = utcnow,
        batch_size: int = BATCH,
        identities: IdentityStore | None = None,
    ) -> None:
        self.store = store
        # The child's name, NHS number and postcode are sealed apart from the tool, as at
        # intake (ADR 0028); None: an import with no keys for them refuses rows that carry
        # them, rather than store them in clear.
        self.identities = identities
        self.cases = cases
        self.authorities = frozenset(authorities)
        self.clock = clock
        self.batch_size = batch_size
        self._agencies: dict[str, tuple[uuid.UUID, AgencyType] | None] = {}

    def agency(self, name: str) -> tuple[uuid.UUID, AgencyType] | None:
        if name not in self._agencies:
            with self.store.session() as s:
                a = self.store.agency_by_name(s, name)
            self._agencies[name] = (a.id, AgencyType(a.type)) if a else None
        return self._agencies[name]

    async def run(
        self,
        path: Path,
        agency: str,
        *,
        fmt: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportSummary:
        """Import the file for ``agency`` (the agency of every row that names none)."""
        if self.agency(agency) is None:
            raise ImportRefused(f"no agency named {agency!r}: create it with `mset agency create`")
        kind = file_format(path, fmt)
        summary = ImportSummary(dry_run=dry_run)
        seen: dict[tuple[str, uuid.UUID, str], int] = {}  # (kind, agency, ref) -> first line
        batch: list[_Valid] = []
        for line, doc in read_rows(path, kind):
            summary.rows += 1
            valid = self._check(line, doc, agency, seen, summary)
            if valid is not None:
                batch.append(valid)
            if len(batch) >= self.batch_size:
                await self._flush(batch, summary, dry_run)
                batch = []
            if progress is not None:
                progress(1)
        if batch:
            await self._flush(batch, summary, dry_run)
        return summary

    def _check(
        self,
        line: int,
        doc: dict[str, Any] | Rejection,
        default_agency: str,
        seen: dict[tuple[str, uuid.UUID, str], int],
        summary: ImportSummary,
    ) -> _Valid | None:
        if isinstance(doc, Rejection):
            summary.rejected.append(doc)
            return None
        got = validate(line, doc)
        if isinstance(got, list):
            summary.rejected.extend(got)
            return None
        row = got
        name = row.agency or default_agency
        agency = self.agency(name)
        if agency is None:
            summary.rejected.append(
                Rejection(line, "agency", f"no agency named {name!r}: create it first")
            )
            return None
        child = row.tool.child if isinstance(row, ImportReferral) else row.report.child
        prefix = "tool" if isinstance(row, ImportReferral) else "report"
        why = authority_refusal(child.local_authority, self.authorities)
        if why is not None:
            summary.rejected.append(Rejection(line, f"{prefix}.child.local_authority", why))
            return None
        key = (row.kind, agency[0], row.partner_reference)
        if key in seen:
            summary.rejected.append(
                Rejection(
                    line,
                    f"{prefix}.partner_reference",
                    f"the same reference as line {seen[key]}: a reference is one record",
                )
            )
            return None
        seen[key] = line
        return _Valid(line, row, agency[0], agency[1], body_hash(canonical(row)))

    async def _flush(self, batch: list[_Valid], summary: ImportSummary, dry_run: bool) -> None:
        try:
            starts = self._write(batch, summary, dry_run)
        except IntegrityError:
            # Another import wrote one of these meanwhile: this batch was rolled back whole;
            # write its rows one by one, so only the clashing rows are refused.
            starts = []
            for v in batch:
                try:
                    starts += self._write([v], summary, dry_run)
                except IntegrityError:
                    summary.rejected.append(
                        Rejection(
                            v.line,
                            "partner_reference",
                            "recorded meanwhile by another run; run the import again",
                        )
                    )
        if starts and self.cases is None:
            summary.held += len(starts)  # no Temporal given: held for a run that has it
        elif starts:
            await self._start_all(starts, summary)

    def _write(self, batch: list[_Valid], summary: ImportSummary, dry_run: bool) -> list[_ToStart]:
        """Write the batch's rows in one transaction; the open ones to start."""
        counts = {"loaded": 0, "skipped": 0}
        rejected: list[Rejection] = []
        starts: list[_ToStart] = []
        with self.store.session() as s:
            earlier = self._earlier(s, batch)
            owners = self._known_agencies(s, batch)
            cases = self._known_cases(s, batch)
            open_children: set[tuple[uuid.UUID, str, str]] = set()
            actions: list[dict[str, Any]] = []
            for v in batch:
                try:
                    done = earlier.get((v.row.kind, v.agency_id, v.row.partner_reference))
                    if done is not None:
                        row_id, digest, started = done
                        if digest != v.hash:
                            raise RowRefused(
                                f"{_prefix(v.row)}.partner_reference",
                                "recorded already with other content (by an earlier import "
                                "or through the API): a reference is one record",
                            )
                        counts["skipped"] += 1
                        if not started:  # held by an earlier run: start it now
                            starts.append(self._held(s, row_id, v))
                        continue
                    if isinstance(v.row, ImportReferral):
                        start = self._referral(s, v, owners, open_children, actions, dry_run)
                    else:
                        start = self._episode(s, v, cases, dry_run)
                    if start is None:
                        counts["loaded"] += 1
                    else:
                        starts.append(start)
                except RowRefused as exc:
                    rejected.append(Rejection(v.line, exc.field, exc.reason))
            if dry_run:
                s.rollback()
            elif actions:
                s.flush()
                s.execute(insert(CaseActionFact), actions)
        summary.loaded += counts["loaded"]
        summary.skipped += counts["skipped"]
        summary.rejected += rejected
        if dry_run:
            summary.started += len(starts)
            return []
        return starts

    def _earlier(
        self, s: Session, batch: list[_Valid]
    ) -> dict[tuple[str, uuid.UUID, str], tuple[uuid.UUID, str | None, bool]]:
        """The batch's references recorded already: (kind, agency, ref) -> (id, hash,
        delivered)."""
        out: dict[tuple[str, uuid.UUID, str], tuple[uuid.UUID, str | None, bool]] = {}
        for kind, model in (("referral", Referral), ("missing_episode", MissingEpisode)):
            keys = [(v.agency_id, v.row.partner_reference) for v in batch if v.row.kind == kind]
            if not keys:
                continue
            rows = s.execute(
                select(
                    model.agency_id,
                    model.partner_reference,
                    model.id,
                    model.request_hash,
                    model.workflow_started,
                ).where(tuple_(model.agency_id, model.partner_reference).in_(keys))
            )
            for agency_id, ref, id_, digest, started in rows:
                out[(kind, agency_id, ref)] = (id_, digest, started)
        return out

    def _known_agencies(self, s: Session, batch: list[_Valid]) -> set[uuid.UUID]:
        ids = {
            a.owner_agency_id
            for v in batch
            if isinstance(v.row, ImportReferral)
            for r in v.row.reviews
            for a in r.actions
            if a.owner_agency_id is not None
        }
        return self.store.known_agencies(s, ids)

    def _owner(self, known: set[uuid.UUID]) -> Callable[[HistoricAction], uuid.UUID | None]:
        def owner_of(a: HistoricAction) -> uuid.UUID | None:
            if a.owner_agency_id is not None:
                return a.owner_agency_id if a.owner_agency_id in known else None
            assert a.owner_agency is not None
            found = self.agency(a.owner_agency)
            return found[0] if found else None

        return owner_of

    def _known_cases(self, s: Session, batch: list[_Valid]) -> set[uuid.UUID]:
        ids = [
            v.row.report.case_referral_id
            for v in batch
            if isinstance(v.row, ImportMissingEpisode) and v.row.report.case_referral_id
        ]
        if not ids:
            return set()
        return set(
            s.scalars(
                select(Referral.id).where(
                    Referral.id.in_(ids),
                    Referral.case_referral_id.is_(None),
                    Referral.workflow_started.is_(True),
                )
            )
        )

    def _referral(
        self,
        s: Session,
        v: _Valid,
        owners: set[uuid.UUID],
        open_children: set[tuple[uuid.UUID, str, str]],
        actions: list[dict[str, Any]],
        dry_run: bool,
    ) -> _ToStart | None:
        row = v.row
        assert isinstance(row, ImportReferral)
        referral_id = uuid.uuid4()
        case = historic_case(row, referral_id, v.agency_id, self._owner(owners))
        child = row.tool.child
        if has_identity(row.tool) and self.identities is None:
            raise RowRefused(
                "tool.child.name",
                "this import has no keys to seal the child's identity with: it is never "
                "stored in clear",
            )
        if case.open:
            # One child, one open case (as intake makes a second tool a reassessment).
            who = (v.agency_id, child.agency_child_ref, child.local_authority)
            existing = self.store.open_case_for_child(s, *who)
            if who in open_children or (
                existing is not None and existing.stage not in CLOSED_STAGES
            ):
                raise RowRefused(
                    "tool.child.agency_child_ref",
                    "the child has an open case already: a child has one open case (import "
                    "the earlier ones closed)",
                )
            open_children.add(who)
        state = case.state
        if not dry_run:
            # The identity is held sealed, apart (ADR 0028); an import makes no entities (ADR
            # 0030): who and where are not kept.
            stored_tool = as_stored(canonical(row.tool))
            recorded = state.model_dump(mode="json")
            s.add(
                Referral(
                    id=referral_id,
                    agency_id=v.agency_id,
                    partner_reference=row.partner_reference,
                    request_hash=v.hash,
                    agency_child_ref=child.agency_child_ref,
                    local_authority=child.local_authority,
                    stage=state.stage.value,
                    referrer_level=row.tool.referrer_judgement.level.value,
                    suggested_level=row.suggested_level.value if row.suggested_level else None,
                    level=state.level.value if state.level else None,
                    open_actions=sum(1 for a in state.actions if a.open),
                    exit_reason=state.exit.reason.value if state.exit else None,
                    next_deadline=state.next_deadline,
                    state=recorded,
                    record_seq=0,
                    workflow_id=referral_workflow_id(referral_id),
                    # A closed case is a record, delivered as it is; an open one once its
                    # workflow has it.
                    workflow_started=not case.open,
                    origin="tool",
                    tool=stored_tool,
                    submitted_at=row.submitted_at,
                    updated_at=case.last_event_at,
                    **tool_columns(stored_tool, "tool", row.submitted_at),
                    **state_columns(recorded, row.submitted_at),
                )
            )
            if self.identities is not None and has_identity(row.tool):
                s.flush()  # the identity's row refers to the referral's
                self.identities.seal_and_link(
                    s, referral_id, child.local_authority, row.tool, row.submitted_at
                )
            # The case's actions for the reports, as its workflow would record them (written
            # after the batch's referrals, which they refer to).
            actions.extend(action_rows(referral_id, recorded))
        if not case.open:
            return None
        return _ToStart(referral_id, v, _start_referral(state, v.agency_type))

    def _episode(
        self, s: Session, v: _Valid, cases: set[uuid.UUID], dry_run: bool
    ) -> _ToStart | None:
        row = v.row
        assert isinstance(row, ImportMissingEpisode)
        rep = row.report
        made = historic_episode(row)
        case_id = rep.case_referral_id
        if case_id is not None and case_id not in cases:
            raise RowRefused("report.case_referral_id", "no case with this id")
        if case_id is None and made.open:
            # An open episode is linked to the child's open case, as one reported through
            # the API is (its workflow tells the case of the return).
            case = self.store.open_case_for_child(
                s, v.agency_id, rep.child.agency_child_ref, rep.child.local_authority
            )
            if case is not None and case.stage not in CLOSED_STAGES:
                case_id = case.id
        episode_id = uuid.uuid4()
        if not dry_run:
            s.add(
                MissingEpisode(
                    id=episode_id,
                    agency_id=v.agency_id,
                    partner_reference=rep.partner_reference,
                    request_hash=v.hash,
                    local_authority=rep.child.local_authority,
                    agency_child_ref=rep.child.agency_child_ref,
                    case_referral_id=case_id,
                    workflow_id=missing_episode_workflow_id(episode_id),
                    workflow_started=not made.open,
                    reported_at=rep.reported_at,
                    report=canonical(rep),
                    created_at=self.clock(),
                    **episode_report_columns(made.record or {}),
                )
            )
            if made.record is not None:
                s.flush()  # the record's foreign key needs the episode first
                s.add(EpisodeRecord(episode_id=episode_id, **made.record))
        if not made.open:
            return None
        return _ToStart(
            episode_id,
            v,
            StartMissingEpisodeInput(
                episode_id=episode_id,
                reporting_agency_id=v.agency_id,
                local_authority=rep.child.local_authority,
                reported_at=rep.reported_at,
                case_referral_id=case_id,
            ),
        )

    def _held(self, s: Session, row_id: uuid.UUID, v: _Valid) -> _ToStart:
        """An open row an earlier run wrote but could not start: its start, from the row."""
        if isinstance(v.row, ImportReferral):
            ref = s.get(Referral, row_id)
            assert ref is not None and ref.state is not None
            state = ReferralState.model_validate(ref.state)
            return _ToStart(row_id, v, _start_referral(state, v.agency_type))
        ep = s.get(MissingEpisode, row_id)
        assert ep is not None
        return _ToStart(
            row_id,
            v,
            StartMissingEpisodeInput(
                episode_id=ep.id,
                reporting_agency_id=ep.agency_id,
                local_authority=ep.local_authority,
                reported_at=ep.reported_at,
                case_referral_id=ep.case_referral_id,
            ),
        )

    async def _start_all(self, starts: list[_ToStart], summary: ImportSummary) -> None:
        assert self.cases is not None
        cases = self.cases
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def one(t: _ToStart) -> bool:
            async with gate:
                try:
                    if isinstance(t.start, StartReferralInput):
                        await cases.start_referral(t.start)
                        await asyncio.to_thread(self.store.mark_started, Referral, t.row_id)
                        return True
                    else:
                        await cases.start_episode(t.start)
                        row = t.valid.row
                        assert isinstance(row, ImportMissingEpisode)
                        if row.returned is not None:
                            await cases.record_return(
                                t.row_id,
                                ReturnInput(
                                    returned_at=row.returned.returned_at,
                                    located_in_authority=row.returned.located_in_authority,
                                ),
                            )
                except Exception:
                    return False  # held: the next run starts it
                await asyncio.to_thread(self.store.mark_started, MissingEpisode, t.row_id)
                return True

        done = await asyncio.gather(*(one(t) for t in starts))
        summary.started += sum(done)
        summary.held += sum(not d for d in done)


def _prefix(row: Row) -> str:
    return "tool" if isinstance(row, ImportReferral) else "report"


def _start_referral(state: ReferralState, agency_type: AgencyType) -> StartReferralInput:
    """The open case's start: its workflow carries on from the imported state, as a run
    continued-as-new carries on from the run before (the rules are asked again at once, so
    its timers and deadlines are set from where the case is)."""
    return StartReferralInput(
        referral_id=state.referral_id,
        agency_id=state.agency_id,
        agency_type=agency_type,
        local_authority=state.local_authority,
        submitted_at=state.submitted_at,
        referrer_level=state.referrer_level,
        previous_referral_id=state.previous_referral_id,
        carried=state,
    )
