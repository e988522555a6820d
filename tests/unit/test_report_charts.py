"""The reports' SVG charts: well-formed XML, an image with a title and a description that
reads every figure out, a title on every bar, the target drawn and said, the two cohorts told
apart by fill as well as named; and the table beside each chart, marked up as a table. As
published, a suppressed figure is [c] in the chart and its description too."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET  # the SVG parsed is our own code's (S314: untrusted XML)

from mset_contract.reports import Report, ReportName
from services.referral.report_charts import chart_for, chart_svg, grid, report_svg
from services.referral.report_suppression import publish
from tests.support.board_pack_example import example_reports

SVG = "{http://www.w3.org/2000/svg}"


@functools.cache
def reports() -> dict[ReportName, Report]:
    return {r.name: r for r in example_reports()}


def chart(name: ReportName, key: str, threshold: int | None = None) -> ET.Element:
    published = publish(reports()[name], threshold)
    table = next(t for t in published.tables if t.key == key)
    return ET.fromstring(chart_svg(chart_for(name, table), f"{name.value}-{key}"))  # noqa: S314


def test_every_chart_is_an_accessible_image_that_reads_its_figures_out() -> None:
    for name, report in reports().items():
        published = publish(report)
        for t in published.tables:
            root = ET.fromstring(chart_svg(chart_for(name, t), f"c-{t.key}"))  # noqa: S314
            assert root.get("role") == "img"
            title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
            assert title is not None and desc is not None and desc.text
            assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
            assert title.text == t.title
            # Every bar has its own title, and every figure its label in words.
            bars = root.findall(f".//{SVG}rect[{SVG}title]")
            assert bars, t.key
            for bar in bars:
                said = bar.find(f"{SVG}title")
                assert said is not None and said.text and said.text in desc.text


def test_the_rhi_chart_draws_the_target_and_says_which_months_miss_it() -> None:
    root = chart(ReportName.missing, "rhi_by_month")
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "against a target of 70%" in desc.text
    assert "2018-12: 42.9% (24 of 56), below the 70% target" in desc.text
    assert "2018-07: 77.6% (59 of 76)" in desc.text
    assert "total: 73.1% (318 of 435)" in desc.text
    dashed = [e for e in root.iter(f"{SVG}line") if e.get("stroke-dasharray")]
    assert len(dashed) == 1
    texts = [e.text for e in root.iter(f"{SVG}text")]
    assert "- - target 70%" in texts
    assert "42.9% (24 of 56) below target" in texts


def test_two_cohorts_differ_by_fill_not_only_colour() -> None:
    root = chart(ReportName.profile, "gender")
    fills = {e.get("fill") for e in root.iter(f"{SVG}rect") if e.find(f"{SVG}title") is not None}
    assert fills == {"#1d70b8", "#ffffff"}  # solid beside outlined
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "Pre-MSET cohort: female: 60.9% (167 of 274)" in desc.text
    assert "MSET cohort: female: 30.4% (7 of 23)" in desc.text


def test_a_suppressed_figure_is_c_in_the_chart_and_its_description() -> None:
    root = chart(ReportName.referrals, "by_agency_type", threshold=5)
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "voluntary provider: suppressed (a small number)" in desc.text
    assert "voluntary provider: 3" not in desc.text
    assert "[c]" in [e.text for e in root.iter(f"{SVG}text")]
    assert "3 (1.1%)" not in [e.text for e in root.iter(f"{SVG}text")]


def test_a_report_as_svg_has_each_chart_beside_its_table() -> None:
    published = publish(reports()[ReportName.pre_mset])
    root = ET.fromstring(report_svg(published))  # noqa: S314
    charts = root.findall(f"{SVG}g/{SVG}svg")
    tables = root.findall(f".//{SVG}g[@role='table']")
    assert len(charts) == len(tables) == len(published.tables)
    for t, table in zip(published.tables, tables, strict=True):
        _, body = grid(t)
        rows = table.findall(f"{SVG}g[@role='row']")
        assert len(rows) == 1 + len(body)
        cells = [
            [
                "".join(e.itertext())
                for e in r.findall(f"{SVG}text")
                if e.get("role") in ("cell", "rowheader")
            ]
            for r in rows[1:]
        ]
        assert [c[1:] for c in cells] == [b[1:] for b in body]
        assert table.get("aria-label") == t.title
    conversion = next(t for t in published.tables if t.key == "conversion")
    assert grid(conversion)[1][-1] == ["total", "274", "274", "23", "8.4%", "8.4%"]
