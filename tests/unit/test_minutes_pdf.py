"""The minutes PDF read back as a reader's PDF viewer reads it (pypdf): the protective
marking at the top and bottom of every page, page numbers, agencies by their directory
names, cases by who they are about, and the decisions and actions as tables, whichever API
recorded them (issue 10, defects 2 and 6)."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests.support.minutes_example import AGENCIES, EDUCATION, HEALTH, POLICE, example_pdf


def _pages() -> list[list[str]]:
    reader = PdfReader(io.BytesIO(example_pdf()))
    return [[line.strip() for line in p.extract_text().splitlines()] for p in reader.pages]


def test_every_page_is_marked_top_and_bottom_and_numbered() -> None:
    pages = _pages()
    assert len(pages) >= 2  # the example runs over a page: the second is marked too
    for n, lines in enumerate(pages, start=1):
        assert lines[0] == "OFFICIAL-SENSITIVE", lines[:3]
        assert lines[-2:] == ["OFFICIAL-SENSITIVE", f"Page {n} of {len(pages)}"], lines[-3:]


def test_the_title_block_and_agencies_by_their_directory_names() -> None:
    text = "\n".join("\n".join(p) for p in _pages())
    assert "Minutes: MSET operational group, northshire" in text
    assert "Held 27 November 2026, 10:00 GMT. Minutes final." in text
    # The chair's agency as the directory names it, not as typed into the attendance.
    assert "Northshire Police: DI Sam Okafor (chair)" in text
    for name in AGENCIES.values():
        assert name in text
    for agency_id in (POLICE, HEALTH, EDUCATION):
        assert str(agency_id) not in text


def test_cases_are_named_by_who_they_are_about_and_every_decision_is_listed() -> None:
    text = "\n".join("\n".join(p) for p in _pages())
    assert "1. NCSC-48213: age 14, female, looked after (s20), Riverside ward" in text
    assert "Referral 5a0e4f8c-1b2d-4e6f-8a9b-000000000001." in text  # the id, as reference
    assert "10:40 GMT through the referral API." in text
    assert "Not decided: carried over to the next MSET operational group" in text


def test_decisions_and_actions_are_tables_row_by_row() -> None:
    lines = [line for p in _pages() for line in p]
    # Cases by the partner's child reference; each decision says which API recorded it (the
    # second came through the referral API with the meeting's id: issue 10, defect 6).
    at = lines.index("Item Child Decision Level Case now Recorded via")
    assert lines[at + 1 : at + 3] == [
        "1 NCSC-48213 reviewed high active plan meeting",
        "2 NP-PERSON-55120 reviewed high active plan referral API",
    ]
    at = lines.index("Action Item Owner Aim / target Due What")
    assert lines[at + 1 : at + 6] == [
        "act-1a 1 Northshire Police remove / location 11 December 2026 Closure notice for the flat",
        "act-1b 1 Northshire Police avoid / perpetrator 18 December 2026 Child abduction warning "
        "notice",
        "act-1c 1 Northshire Integrated Care Board reduce / victim 07 December 2026 Sexual health "
        "appointment offered",
        "act-2a 2 Riverside Academy Trust reduce / victim 04 December 2026 Daily check-in with a "
        "named adult",
        "act-2b 2 Northshire Police remove / perpetrator 25 December 2026 Disruption visit",
    ]
