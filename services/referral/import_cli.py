"""``mset import FILE``: the historic import's command (docs/import.md).

The progress bar is rich's (it comes with typer, which draws its help with it): rows done
of the file's rows, the rate in rows a second and the time left, on the terminal's stderr
so the summary on stdout stays clean to parse.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mset_platform.cases import CaseClient
from mset_platform.temporal import connect
from services.referral.child_identity import IdentityStore
from services.referral.importer import (
    HistoricImport,
    ImportRefused,
    ImportSummary,
    count_rows,
    file_format,
)
from services.referral.migrate import MIGRATIONS
from services.referral.settings import ReferralSettings
from services.referral.store import Store

# The rejected rows shown on the terminal; --rejects writes them all.
SHOWN_REJECTIONS = 20


class RateColumn(ProgressColumn):
    """Rows a second, over rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- rows/s" if speed is None else f"{speed:,.0f} rows/s", style="cyan")


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
    )


def import_command(
    path: Annotated[
        Path, typer.Argument(help="The file: JSON Lines (.jsonl) or CSV (.csv), one row a line.")
    ],
    agency: Annotated[
        str,
        typer.Option(
            help="The agency whose case system the rows come from (rows may name another "
            "with 'agency'); partner references are unique to an agency."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl or csv (by default, from the file's suffix)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate every row and write nothing.")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write every rejected row (line, field, reason) to this CSV file."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Rows a transaction.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load historic referrals and missing episodes (docs/import.md). Re-running loads
    nothing twice; an interrupted run is resumed by running it again."""
    if not path.is_file():
        typer.echo(f"error: no file {path}", err=True)
        raise typer.Exit(code=2)
    settings = ReferralSettings()
    store = Store(MIGRATIONS.open(settings.database_url))
    err = Console(stderr=True)
    try:
        summary = asyncio.run(_run(settings, store, path, agency, fmt, dry_run, batch_size, err))
    except ImportRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    finally:
        store.engine.dispose()
    if rejects is not None:
        with rejects.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["line", "field", "reason"])
            w.writerows([r.line, r.field, r.reason] for r in summary.rejected)
    _print(summary, as_json)
    if summary.rejected or summary.held:
        raise typer.Exit(code=1)


async def _run(
    settings: ReferralSettings,
    store: Store,
    path: Path,
    agency: str,
    fmt: str | None,
    dry_run: bool,
    batch_size: int,
    console: Console,
) -> ImportSummary:
    cases = None
    if not dry_run:
        client = await connect(settings)
        cases = CaseClient(client, start_timeout=timedelta(seconds=settings.start_timeout_seconds))
    identities = IdentityStore(settings.identity_cipher(), settings.identity_index())
    job = HistoricImport(
        store, cases, settings.authorities, batch_size=batch_size, identities=identities
    )
    total = count_rows(path, file_format(path, fmt))
    with progress_bar(console) as bar:
        task = bar.add_task("checking" if dry_run else "importing", total=total)
        return await job.run(
            path,
            agency,
            fmt=fmt,
            dry_run=dry_run,
            progress=lambda n: bar.advance(task, n),
        )


def _print(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        doc = {
            "dry_run": summary.dry_run,
            "rows": summary.rows,
            "loaded": summary.loaded,
            "started": summary.started,
            "skipped": summary.skipped,
            "held": summary.held,
            "rejected_rows": summary.rejected_rows,
            "rejected": [
                {"line": r.line, "field": r.field, "reason": r.reason} for r in summary.rejected
            ],
        }
        typer.echo(json.dumps(doc))
        return
    would = "would be " if summary.dry_run else ""
    out = sys.stdout
    print(f"{summary.rows} rows read", file=out)
    print(f"  {summary.loaded} closed records {would}loaded", file=out)
    print(f"  {summary.started} open cases and episodes {would}started", file=out)
    print(f"  {summary.skipped} already loaded (skipped)", file=out)
    if summary.held:
        print(f"  {summary.held} held: their workflow did not start; run again", file=out)
    print(f"  {summary.rejected_rows} rejected", file=out)
    for r in summary.rejected[:SHOWN_REJECTIONS]:
        print(f"    line {r.line}: {r.field}: {r.reason}", file=out)
    if len(summary.rejected) > SHOWN_REJECTIONS:
        print(f"    ... and {len(summary.rejected) - SHOWN_REJECTIONS} more (--rejects)", file=out)
