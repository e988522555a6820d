"""Board reports: tables of counts whose figures cannot disagree with themselves.

The partnerships' hand-built profiles printed a risk mix summing to 281 against 274
referrals, and one month's RHI rate two ways. Here a table is a model whose validator refuses
what does not reconcile, so no code path can build or send such a table:

- every row has a count (a non-negative integer) for every column;
- an *additive* table's rows add up, column by column, to its total row ("unknown" or "not
  recorded" is a row of its own, never left out); a table whose rows may overlap (a child
  with several exploitation types) is not additive, and then no row may exceed the total;
- a column declared as the sum of others (``Part``: referred = completed + refused + ...) is
  that sum in every row, and a column declared no greater than another (``Bound``: offered
  within 72 hours <= offered) is so in every row;
- percentages are never sent in: each ``Ratio`` names its numerator and denominator columns
  (or the column's total, for a share), and the percentage is computed from the counts beside
  it, rounded to one decimal place, none when the denominator is 0.

A report is a few such tables for one local authority or the partnership's region, for a
period. The same model is written as JSON and as CSV (one line a figure, ``to_csv``).

Aggregates other services send to make a report (the meeting service's attendance) are models
here too: counts by agency, never a child's record.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator


class ReportName(StrEnum):
    """The reports ``GET /v1/reports/{name}`` serves."""

    referrals = "referrals"  # by referring agency type; risk level at referral
    pre_mset = "pre-mset"  # outcomes, conversion to MSET by level, time to decision
    profile = "profile"  # the Pre-MSET cohort beside the MSET cohort
    exits = "exits"  # by reason; time in MSET
    missing = "missing"  # missing episodes and Return Home Interviews by month
    actions = "actions"  # by aim, target and owning agency; on time or overdue
    attendance = "attendance"  # agencies at panels (the meeting service's figures)
    data_quality = "data-quality"  # what is missing or unknown in the period's records


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Model):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str


class Ratio(_Model):
    """A percentage: ``numerator`` over ``denominator`` (both column keys), or over the
    numerator column's total when ``denominator`` is None (a row's share of the total)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    numerator: str
    denominator: str | None = None
    target_percent: float | None = Field(
        default=None, ge=0, le=100, description="A target the rate is judged against."
    )


class Part(_Model):
    """In every row, column ``whole`` equals the sum of columns ``parts``."""

    whole: str
    parts: list[str] = Field(min_length=1)


class Bound(_Model):
    """In every row, column ``lesser`` is no greater than column ``greater``."""

    lesser: str
    greater: str


class Row(_Model):
    label: str
    counts: dict[str, int]


def percent(numerator: int, denominator: int) -> float | None:
    """The percentage the reports print: one decimal place; none of nothing."""
    if denominator == 0:
        return None
    return round(100 * numerator / denominator, 1)


class Table(_Model):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    row_header: str = Field(description="What the rows are (e.g. 'referring agency type').")
    columns: list[Column] = Field(min_length=1)
    rows: list[Row]
    total: Row | None = Field(
        default=None, description="The total row; none for a table of independent rows."
    )
    additive: bool = Field(
        default=True,
        description="The rows add up to the total, column by column. False where a record "
        "may be in several rows (then no row exceeds the total).",
    )
    ratios: list[Ratio] = Field(default_factory=list)
    parts: list[Part] = Field(default_factory=list)
    bounds: list[Bound] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"table {self.key}: column keys repeat")
        labels = [r.label for r in self.rows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"table {self.key}: row labels repeat")
        for ref in [
            *(r.numerator for r in self.ratios),
            *(r.denominator for r in self.ratios if r.denominator is not None),
            *(k for p in self.parts for k in (p.whole, *p.parts)),
            *(k for b in self.bounds for k in (b.lesser, b.greater)),
        ]:
            if ref not in keys:
                raise ValueError(f"table {self.key}: no column {ref!r}")
        if self.total is None and any(r.denominator is None for r in self.ratios):
            raise ValueError(f"table {self.key}: a share of the total needs a total row")
        every = [*self.rows, *([self.total] if self.total is not None else [])]
        for row in every:
            if set(row.counts) != set(keys):
                raise ValueError(
                    f"table {self.key}, row {row.label!r}: counts for {sorted(row.counts)}, "
                    f"columns are {sorted(keys)}"
                )
            for k, n in row.counts.items():
                if n < 0:
                    raise ValueError(f"table {self.key}, row {row.label!r}: {k} is negative")
            for p in self.parts:
                parts = sum(row.counts[k] for k in p.parts)
                if parts != row.counts[p.whole]:
                    raise ValueError(
                        f"table {self.key}, row {row.label!r}: {p.whole} is "
                        f"{row.counts[p.whole]} but {' + '.join(p.parts)} is {parts}"
                    )
            for b in self.bounds:
                if row.counts[b.lesser] > row.counts[b.greater]:
                    raise ValueError(
                        f"table {self.key}, row {row.label!r}: {b.lesser} "
                        f"({row.counts[b.lesser]}) exceeds {b.greater} ({row.counts[b.greater]})"
                    )
        if self.total is not None:
            for k in keys:
                whole = self.total.counts[k]
                if self.additive:
                    summed = sum(r.counts[k] for r in self.rows)
                    if summed != whole:
                        raise ValueError(
                            f"table {self.key}: the rows' {k} add up to {summed}, the total "
                            f"is {whole} (every record belongs to one row; 'unknown' is a row)"
                        )
                else:
                    for r in self.rows:
                        if r.counts[k] > whole:
                            raise ValueError(
                                f"table {self.key}, row {r.label!r}: {k} ({r.counts[k]}) "
                                f"exceeds the total ({whole})"
                            )
        return self

    def rate(self, row: Row, ratio: Ratio) -> tuple[int, int, float | None]:
        """(numerator, denominator, percentage) of ``ratio`` in ``row``."""
        n = row.counts[ratio.numerator]
        if ratio.denominator is not None:
            d = row.counts[ratio.denominator]
        else:
            assert self.total is not None
            d = self.total.counts[ratio.numerator]
        return n, d, percent(n, d)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percentages(self) -> dict[str, dict[str, float | None]]:
        """Each row's percentages (by row label, then ratio key), computed from its counts."""
        every = [*self.rows, *([self.total] if self.total is not None else [])]
        return {row.label: {r.key: self.rate(row, r)[2] for r in self.ratios} for row in every}


class ReportScope(_Model):
    authorities: list[str] = Field(min_length=1)
    region: bool = Field(description="Rolled up across the partnership's authorities.")


class Report(_Model):
    name: ReportName
    title: str
    scope: ReportScope
    since: datetime
    until: datetime
    generated_at: datetime
    tables: list[Table]
    notes: list[str] = Field(default_factory=list)

    def to_csv(self) -> str:
        """One line a figure: every count, and every percentage with its numerator and
        denominator beside it, so a spreadsheet recomputes it."""
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
            for row in [*t.rows, *([t.total] if t.total is not None else [])]:
                for c in t.columns:
                    w.writerow([*head, t.key, row.label, c.key, row.counts[c.key], "", "", ""])
                for r in t.ratios:
                    n, d, p = t.rate(row, r)
                    target = "" if r.target_percent is None else r.target_percent
                    w.writerow(
                        [
                            *head,
                            t.key,
                            row.label,
                            f"{r.key}_percent",
                            "" if p is None else p,
                            n,
                            d,
                            target,
                        ]
                    )
        return out.getvalue()


# --- aggregates the owning services answer ---------------------------------------------------


class AgencyAttendanceCount(_Model):
    agency_name: str
    attended: int = Field(ge=0, description="Meetings the agency was present at.")
    sent_apologies: int = Field(ge=0, description="Meetings it sent apologies to, not present.")


class AttendanceAggregate(_Model):
    """The meeting service's answer for a report: meetings held in [since, until) in one
    authority, and each agency's attendance at them. No person is named."""

    local_authority: str
    since: datetime
    until: datetime
    meetings: int = Field(ge=0)
    agencies: list[AgencyAttendanceCount]

    @model_validator(mode="after")
    def _within_meetings(self) -> Self:
        for a in self.agencies:
            if a.attended + a.sent_apologies > self.meetings:
                raise ValueError(
                    f"{a.agency_name}: attended and apologies exceed the {self.meetings} meetings"
                )
        return self
