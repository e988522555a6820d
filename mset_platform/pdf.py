"""The house's PDFs (the meeting's minutes, the board pack): fpdf2, pure Python, A4, the
protective marking at the top and bottom of every page and "Page n of N" at the foot.

One way of making PDFs: both documents are ``MarkedPdf`` and pass their text through
``latin1`` (the PDF core fonts are Latin-1; no font files to ship or embed).
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

# The Government Security Classification marking.
PROTECTIVE_MARKING = "OFFICIAL-SENSITIVE"

_PDF_REPLACE = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u2264": "<=",
    }
)


def latin1(text: str) -> str:
    """Text the core fonts can print: anything outside Latin-1 is replaced rather than
    failing the export."""
    return text.translate(_PDF_REPLACE).encode("latin-1", "replace").decode("latin-1")


class MarkedPdf(FPDF):
    """A4, the protective marking at the top and bottom of every page, and the page number
    ("Page n of N") at the foot."""

    def header(self) -> None:
        self.set_font("helvetica", "B", 9)
        self.set_text_color(160, 0, 0)
        self.cell(0, 5, PROTECTIVE_MARKING, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("helvetica", "B", 9)
        self.set_text_color(160, 0, 0)
        self.cell(0, 5, PROTECTIVE_MARKING, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.set_font("helvetica", "", 8)
        self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="C")
