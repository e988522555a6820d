"""The board pack read back as a reader's PDF viewer reads it (pypdf): OFFICIAL-SENSITIVE at
the top and bottom of every page, a cover with the authority, the period, when it was made
and the key figures, every table of every report under its section with its figures, and,
published, [c] where the reports have it and none of the small numbers."""

from __future__ import annotations

import asyncio
import functools
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from mset_contract.reports import AttendanceAggregate, Column, Ratio, ReportName, Row, Table
from services.referral import cli, report_cli
from services.referral.board_pack import (
    SECTIONS,
    board_pack_pdf,
    board_pack_reports,
    key_figures,
)
from services.referral.meetings import MeetingsUnavailable
from services.referral.report_charts import grid
from services.referral.report_suppression import publish
from services.referral.reports import ReportQuery
from tests.support.board_pack_example import (
    ANALYST,
    AUTHORITY,
    SINCE,
    UNTIL,
    ExampleMeetings,
    example_desk,
    example_reports,
)


@functools.cache
def pages(threshold: int | None = None) -> list[list[str]]:
    reader = PdfReader(io.BytesIO(board_pack_pdf(example_reports(), threshold)))
    return [[line.strip() for line in p.extract_text().splitlines()] for p in reader.pages]


def flat(lines: list[str]) -> str:
    return " ".join(lines)


def test_every_page_is_marked_top_and_bottom_and_numbered() -> None:
    for threshold in (None, 5):
        got = pages(threshold)
        assert len(got) >= 8  # the cover, seven sections, the notes
        for n, lines in enumerate(got, start=1):
            assert lines[0] == "OFFICIAL-SENSITIVE", lines[:3]
            assert lines[-2:] == ["OFFICIAL-SENSITIVE", f"Page {n} of {len(got)}"], lines[-3:]


def test_the_cover_says_where_when_and_the_key_figures() -> None:
    cover = flat(pages()[0])
    assert "MSET board pack" in cover
    assert "Local authority: sunderland" in cover
    assert "1 July 2018 to 31 December 2018" in cover
    assert "14 January 2019, 09:30 GMT" in cover
    assert "shown as counted (not for publication)" in cover
    # The scoping report's figures, as the records make them.
    assert "Risk Assessment Tools referred 274" in cover
    assert "from children's social care 249 90.9%" in cover
    assert "from partner agencies 25 9.1%" in cover
    assert "Met the criteria for MSET (conversion) 23 8.4%" in cover
    assert "Exits from MSET 67" in cover
    assert "Return Home Interviews completed (target 70%) 318 73.1%" in cover
    assert "Panel meetings held 12" in cover
    for n, (title, _) in enumerate(SECTIONS, start=1):
        assert f"{n}. {title}" in cover


def test_every_table_is_in_its_section_with_its_figures() -> None:
    text = [flat(p) for p in pages()]
    reports = {r.name: publish(r) for r in example_reports()}
    for n, (title, names) in enumerate(SECTIONS, start=1):
        start = next(i for i, p in enumerate(text) if p.count(f"{n}. {title}") and i > 0)
        section = " ".join(text[start:])
        for name in names:
            for t in reports[name].tables:
                assert t.title in section, t.title
                _, body = grid(t)
                # Each row with its figures, as the table prints them, in the order it has.
                total = body[-1]
                assert " ".join(total) in section, (t.key, total)
    rhi = " ".join(text)
    assert "2018-12 56 46 38 24 15 7 6 4 82.1% 67.9% 42.9%" in rhi
    assert "2018-07 76 72 60 59 8 5 4 0 94.7% 78.9% 77.6%" in rhi
    # The profile beside the source's: 61% and 39% at Pre-MSET, 30.4% and 69.6% at MSET.
    assert "female 167 7 60.9% 30.4%" in rhi and "male 107 16 39.1% 69.6%" in rhi


def test_published_the_small_numbers_are_c_and_cannot_be_read() -> None:
    text = " ".join(flat(p) for p in pages(5))
    assert "suppressed for publication: counts of 1 to 4 shown as [c]" in text
    assert "voluntary provider [c] [c]" in text
    assert "education [c] [c]" in text
    # December's 4 interviews awaiting their outcome: suppressed, with what gives it away.
    assert "2018-12 56 46 38 24 15 7 6 4" not in text
    reports = {r.name: publish(r, 5) for r in example_reports()}
    missing = reports[ReportName.missing]
    dec = next(t for t in missing.tables if t.key == "rhi_by_month").rows[-1]
    assert dec.counts["awaiting_outcome"] == "[c]"
    assert "Suppression: Counts from 1 to 4 are shown as [c]" in text


def test_the_cli_writes_the_pack_the_api_answers_with_the_readers_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[tuple[str, dict[str, str], dict[str, str]]] = []
    pdf = board_pack_pdf(example_reports())

    def get(url: str, params: dict[str, str], headers: dict[str, str], **_: Any) -> httpx.Response:
        asked.append((url, params, headers))
        if headers["Authorization"] != "Bearer msetu_analyst":
            return httpx.Response(403, json={"detail": "board reports are for analysts"})
        return httpx.Response(200, content=pdf)

    monkeypatch.setattr(report_cli.httpx, "get", get)
    out = tmp_path / "pack.pdf"
    args = ["report", "board-pack", "--authority", "sunderland", "--since", "2018-07-01",
            "--until", "2019-01-01", "--suppress", "--out", str(out)]  # fmt: skip
    done = CliRunner().invoke(cli.app, args, env={"MSET_TOKEN": "msetu_analyst"})
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == pdf
    url, params, _ = asked[0]
    assert url == "http://127.0.0.1:8000/v1/reports/board-pack.pdf"
    assert params == {"authority": "sunderland", "since": "2018-07-01",
                      "until": "2019-01-01", "suppress": "true"}  # fmt: skip
    refused = CliRunner().invoke(cli.app, args, env={"MSET_TOKEN": "msetu_chair"})
    assert refused.exit_code == 1 and "403" in refused.output
    both = CliRunner().invoke(cli.app, [*args, "--region"], env={"MSET_TOKEN": "x"})
    assert both.exit_code == 2 and "name one --authority, or --region" in both.output


def test_the_covers_partner_figure_is_suppressed_when_small() -> None:
    # 8 from social care, 2 from the police: "partners" is the police's 2, however the
    # table's suppression chose its complement.
    base = next(r for r in example_reports() if r.name is ReportName.referrals)
    counts = {"childrens_social_care": 8, "police": 2}
    table = Table(
        key="by_agency_type",
        title="Referrals by referring agency type",
        row_header="referring agency type",
        columns=[Column(key="referrals", label="referrals")],
        rows=[Row(label=k, counts={"referrals": n}) for k, n in counts.items()],
        total=Row(label="total", counts={"referrals": 10}),
        ratios=[Ratio(key="referrals_share", label="%", numerator="referrals")],
    )
    report = base.model_copy(update={"tables": [table]})
    shown = {f: n for f, n, _ in key_figures({ReportName.referrals: publish(report, 5)}, 5)}
    assert shown["  from partner agencies"] == "[c]"
    assert shown["Risk Assessment Tools referred"] == "10"
    plain = {f: n for f, n, _ in key_figures({ReportName.referrals: publish(report)})}
    assert plain["  from partner agencies"] == "2"


def test_without_the_meeting_service_the_pack_says_attendance_is_missing() -> None:
    class Down(ExampleMeetings):
        async def attendance(
            self, local_authority: str, since: datetime, until: datetime
        ) -> AttendanceAggregate:
            raise MeetingsUnavailable("the meeting service did not answer")

    desk = example_desk()
    desk.meetings = Down()
    query = ReportQuery(authority=AUTHORITY, region=None, since=SINCE, until=UNTIL)
    made = asyncio.run(board_pack_reports(desk, ANALYST, query))
    assert ReportName.attendance not in {r.name for r in made} and len(made) == 7
    reader = PdfReader(io.BytesIO(board_pack_pdf(made)))
    cover = " ".join(reader.pages[0].extract_text().split())
    assert "Not in this pack the meeting service did not give the attendance figures" in cover
    assert "Panel meetings held -" in cover
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages[1:])
    assert "6. Agency attendance at panels Not in this pack: the meeting service" in text
