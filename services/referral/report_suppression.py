"""Small-number suppression for publishing a board report (docs/reports.md, "Publishing").

**Primary suppression**: every count from 1 to ``threshold - 1`` is shown as ``[c]``. Zeros
are shown (a zero names no child; the Government Statistical Service's guidance leaves them).

**Secondary suppression**, so that no ``[c]`` can be recovered by subtraction. A table's
published figures are tied by equations: in an additive table each column's total is the sum
of its rows; a ``Part`` makes a column the sum of others in every row (referred = completed +
refused + not offered + awaiting), the total row included. A suppressed cell is *recoverable*
when the equations, given the published cells, fix its value: when its unit vector lies in the
row space of the equations' coefficients over the suppressed cells (the test is exact, over
fractions). The method is the common greedy one (primary, then secondary suppression of
complementary cells), repeated until no suppressed cell is recoverable:

- find the recoverable cells (an equation with exactly one suppressed cell gives it away by
  subtraction; two equations together can give away what neither does alone);
- suppress one more published cell of a sum that ties one of them: the one after which the
  fewest stay recoverable, then not a zero, then not a total (totals are what a board reads
  first), then the smallest.

It ends, as each step suppresses one more cell of a finite table, and at worst suppresses a
whole table (nothing recoverable then). Percentages: one whose numerator or denominator is
suppressed is ``[c]``.

Out of its reach, and said in the report's notes: the same figure in two tables (each table
is protected on its own, and the reports' tables of one breakdown are suppressed alike only
where their figures are alike), and differencing between reports (an authority against the
region, or two overlapping periods). Publish one report per audience and period.

Tables that count no child (meetings held and agencies' attendance) are not suppressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from mset_contract.report_publication import (
    SUPPRESSED,
    Count,
    Percent,
    PublishedReport,
    PublishedRow,
    PublishedTable,
    Suppression,
)
from mset_contract.reports import Report, ReportName, Row, Table

DEFAULT_THRESHOLD = 5
METHOD = (
    "Counts from 1 to {last} are shown as [c]; so that none can be worked out from the "
    "totals, the smallest other cell of a row, column or total that would give one away is "
    "also shown as [c], until no suppressed figure follows from the published ones. A "
    "percentage whose numerator or denominator is suppressed is [c]. Zeros are shown."
)
# Tables of meetings and agencies, not of children: published as counted.
NOT_OF_CHILDREN = {(ReportName.attendance, "meetings_held"), (ReportName.attendance, "by_agency")}

# A cell: (row index, column key); the total row's index is -1.
Cell = tuple[int, str]
TOTAL = -1
# An equation: whole = sum(parts).
Equation = tuple[Cell, tuple[Cell, ...]]


def equations(table: Table) -> list[Equation]:
    """The equations that tie a table's published figures together."""
    eqs: list[Equation] = []
    indices = [*range(len(table.rows)), *([TOTAL] if table.total is not None else [])]
    if table.total is not None and table.additive and table.rows:
        for c in table.columns:
            eqs.append(((TOTAL, c.key), tuple((i, c.key) for i in range(len(table.rows)))))
    for p in table.parts:
        for i in indices:
            eqs.append(((i, p.whole), tuple((i, k) for k in p.parts)))
    return eqs


def value(table: Table, cell: Cell) -> int:
    i, k = cell
    row = table.total if i == TOTAL else table.rows[i]
    assert row is not None
    return row.counts[k]


def recoverable(eqs: Sequence[Equation], hidden: set[Cell]) -> set[Cell]:
    """The suppressed cells whose value the equations fix, given every other cell.

    A cell is fixed when its unit vector is in the row space of the equations restricted to
    the suppressed cells: exactly when a row of the reduced row echelon form is that unit
    vector."""
    unknowns = sorted(hidden)
    at = {c: n for n, c in enumerate(unknowns)}
    matrix: list[list[Fraction]] = []
    for whole, parts in eqs:
        row = [Fraction(0)] * len(unknowns)
        for cell, coeff in ((whole, 1), *((p, -1) for p in parts)):
            if cell in at:
                row[at[cell]] += coeff
        if any(row):
            matrix.append(row)
    reduced = _rref(matrix, len(unknowns))
    fixed = set()
    for row in reduced:
        nonzero = [j for j, x in enumerate(row) if x != 0]
        if len(nonzero) == 1:
            fixed.add(unknowns[nonzero[0]])
    return fixed


def _rref(matrix: list[list[Fraction]], width: int) -> list[list[Fraction]]:
    rows = [r[:] for r in matrix]
    lead = 0
    for col in range(width):
        pivot = next((r for r in range(lead, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            continue
        rows[lead], rows[pivot] = rows[pivot], rows[lead]
        p = rows[lead][col]
        rows[lead] = [x / p for x in rows[lead]]
        for r in range(len(rows)):
            if r != lead and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[lead], strict=True)]
        lead += 1
    return rows[:lead]


def suppressed_cells(table: Table, threshold: int) -> set[Cell]:
    """The cells of ``table`` to publish as [c]: the small counts and their complements."""
    cells: list[Cell] = [
        (i, c.key)
        for i in [*range(len(table.rows)), *([TOTAL] if table.total is not None else [])]
        for c in table.columns
    ]
    hidden = {c for c in cells if 0 < value(table, c) < threshold}
    if not hidden:
        return hidden
    eqs = equations(table)
    while True:
        fixed = recoverable(eqs, hidden)
        if not fixed:
            return hidden
        # The published cells of the sums that tie a recoverable cell; failing those (each
        # such sum all suppressed, the cell still fixed through others), of any sum.
        candidates = {
            c for w, ps in eqs if fixed & {w, *ps} for c in (w, *ps) if c not in hidden
        } or {c for w, ps in eqs for c in (w, *ps) if c not in hidden}
        if not candidates:  # every cell of every sum is suppressed: nothing is fixed by them
            return hidden

        def cost(c: Cell) -> tuple[int, bool, bool, int, Cell]:
            # The cell after which the fewest suppressed cells can still be worked out;
            # never a zero where another will do, a total last, then the smallest.
            left = len(recoverable(eqs, hidden | {c}))
            return (left, value(table, c) == 0, c[0] == TOTAL, value(table, c), c)

        hidden.add(min(candidates, key=cost))


def publish_table(table: Table, threshold: int | None) -> PublishedTable:
    hidden = set() if threshold is None else suppressed_cells(table, threshold)

    def shown(i: int, row: Row) -> PublishedRow:
        counts: dict[str, Count] = {
            k: SUPPRESSED if (i, k) in hidden else n for k, n in row.counts.items()
        }
        return PublishedRow(label=row.label, counts=counts)

    every = [*enumerate(table.rows), *([(TOTAL, table.total)] if table.total else [])]
    percentages: dict[str, dict[str, Percent]] = {}
    rates: dict[str, dict[str, tuple[Count, Count]]] = {}
    for i, row in every:
        percentages[row.label] = {}
        rates[row.label] = {}
        for r in table.ratios:
            n, d, p = table.rate(row, r)
            num = (i, r.numerator)
            den = (i, r.denominator) if r.denominator is not None else (TOTAL, r.numerator)
            n_shown: Count = SUPPRESSED if num in hidden else n
            d_shown: Count = SUPPRESSED if den in hidden else d
            gone = num in hidden or den in hidden
            percentages[row.label][r.key] = SUPPRESSED if gone else p
            rates[row.label][r.key] = (n_shown, d_shown)
    return PublishedTable(
        key=table.key,
        title=table.title,
        row_header=table.row_header,
        columns=table.columns,
        rows=[shown(i, r) for i, r in enumerate(table.rows)],
        total=shown(TOTAL, table.total) if table.total is not None else None,
        additive=table.additive,
        ratios=table.ratios,
        percentages=percentages,
        notes=table.notes,
        rates=rates,
        suppressed_cells=len(hidden),
    )


def publish(report: Report, threshold: int | None = None) -> PublishedReport:
    """The report as published: every figure (``threshold`` None), or with the counts from 1
    to ``threshold - 1`` and their complements suppressed."""
    suppression = None
    notes = list(report.notes)
    if threshold is not None:
        suppression = Suppression(threshold=threshold, method=METHOD.format(last=threshold - 1))
        notes.append(
            "Each table is protected on its own: compare no two reports (an authority with "
            "the region, or overlapping periods) to publish both."
        )
    return PublishedReport(
        name=report.name,
        title=report.title,
        scope=report.scope,
        since=report.since,
        until=report.until,
        generated_at=report.generated_at,
        tables=[
            publish_table(t, None if (report.name, t.key) in NOT_OF_CHILDREN else threshold)
            for t in report.tables
        ],
        notes=notes,
        suppression=suppression,
    )
