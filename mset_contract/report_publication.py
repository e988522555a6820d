"""A board report as it is published: the same tables, with small numbers suppressed.

A report for publication (``?suppress=true``, and every board pack made with it) shows each
count of 1 up to the threshold (5 by default: 1 to 4) as ``[c]``, and as many other cells as
it takes ("secondary suppression") so that no ``[c]`` can be worked out by subtracting the
published figures from a published total (docs/reports.md, "Publishing"). A percentage whose
numerator or denominator is suppressed is ``[c]`` too. Zeros are shown.

The same model carries an unsuppressed report (no ``[c]`` anywhere), so the CSV, the charts
and the board pack are made from one shape whichever the caller asked for.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.reports import Column, Ratio, ReportName, ReportScope

# The symbol a suppressed figure is published as (the Government Statistical Service's
# "confidential" mark).
SUPPRESSED: Final = "[c]"

Suppressed = Literal["[c]"]
Count = int | Suppressed
Percent = float | None | Suppressed


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublishedRow(_Model):
    label: str
    counts: dict[str, Count]


class PublishedTable(_Model):
    key: str
    title: str
    row_header: str
    columns: list[Column]
    rows: list[PublishedRow]
    total: PublishedRow | None = None
    additive: bool = True
    ratios: list[Ratio] = Field(default_factory=list)
    # Each row's percentages (by row label, then ratio key): computed from the counts before
    # suppression, then "[c]" where the numerator or the denominator is suppressed.
    percentages: dict[str, dict[str, Percent]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    # (numerator, denominator) of each percentage, as published ("[c]" where suppressed).
    rates: dict[str, dict[str, tuple[Count, Count]]] = Field(default_factory=dict)
    suppressed_cells: int = Field(
        default=0, ge=0, description="How many counts are shown as [c] in this table."
    )

    def every_row(self) -> list[PublishedRow]:
        return [*self.rows, *([self.total] if self.total is not None else [])]


class Suppression(_Model):
    threshold: int = Field(
        ge=1, description="Counts from 1 to threshold - 1 are suppressed; zeros are shown."
    )
    method: str


class PublishedReport(_Model):
    name: ReportName
    title: str
    scope: ReportScope
    since: datetime
    until: datetime
    generated_at: datetime
    tables: list[PublishedTable]
    notes: list[str] = Field(default_factory=list)
    suppression: Suppression | None = Field(
        default=None, description="None: every figure is shown as counted."
    )

    def to_csv(self) -> str:
        """The same lines as ``Report.to_csv``, with "[c]" for a suppressed figure (and for
        the numerator or denominator of a suppressed percentage)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(
            [
                "report",
                "scope",
                "since",
                "until",
                "table",
                "row",
                "measure",
                "value",
                "numerator",
                "denominator",
                "target_percent",
            ]
        )
        where = "region" if self.scope.region else self.scope.authorities[0]
        head = [self.name.value, where, self.since.isoformat(), self.until.isoformat()]
        for t in self.tables:
            for row in t.every_row():
                for c in t.columns:
                    w.writerow([*head, t.key, row.label, c.key, row.counts[c.key], "", "", ""])
                for r in t.ratios:
                    p = t.percentages[row.label][r.key]
                    n, d = t.rates[row.label][r.key]
                    target = "" if r.target_percent is None else r.target_percent
                    value = "" if p is None else p
                    w.writerow([*head, t.key, row.label, f"{r.key}_percent", value, n, d, target])
        return out.getvalue()
