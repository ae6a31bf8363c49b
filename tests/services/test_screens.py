"""services/screens.py: the measure of a message on a phone, and `paginate`, which cuts a
long text into pages of one screen each without losing anything (issue 16, point 7)."""

from __future__ import annotations

import re

from services.i18n import plain_text
from services.screens import SCREEN, lines_on_phone, paginate


def flat(text: str) -> str:
    return re.sub(r"\s+", "", plain_text(text))


def test_every_page_fits_and_every_line_is_on_one():
    lines = [f"line {n} " + "word " * (n % 13) for n in range(60)] + ["", "中" * 200]
    pages = paginate(lines, header="<b>Header</b>\n", footer="\n<i>footer</i>")
    assert len(pages) > 5
    assert all(lines_on_phone(p.text, html=True) <= SCREEN for p in pages)
    assert all(p.text.startswith("<b>Header</b>\n") for p in pages)
    assert all(p.text.endswith("\n<i>footer</i>") for p in pages)
    bodies = "".join(
        p.text.removeprefix("<b>Header</b>").removesuffix("<i>footer</i>") for p in pages
    )
    assert flat(bodies) == flat("".join(lines))
    assert sorted({i for p in pages for i in p.lines}) == [
        i for i, line in enumerate(lines) if line
    ]


def test_a_short_text_is_one_page_and_nothing_is_one_page_too():
    assert [p.text for p in paginate(["short", "", "text"])] == ["short\n\ntext"]
    assert [p.text for p in paginate([], header="<b>None</b>")] == ["<b>None</b>"]


def test_a_page_ends_at_a_paragraph_break_and_whole_entries_stay_whole():
    entry = "#1 Ganzi: WeCom group\n    https://qyapi.weixin.qq.com/…\n    ✅ last delivered"
    pages = paginate([entry] * 7, whole=True)
    assert all(p.text.count("#1 Ganzi") * 3 == p.text.count("\n") + 1 for p in pages)
    paragraphs = ["first paragraph " * 5, "", *(["an item of a list"] * 4), "", "x " * 200]
    first = paginate(paragraphs)[0].text
    assert "an item of a list" in first  # a long paragraph fills the rest of the page


def test_tags_open_at_a_cut_are_closed_and_opened_again():
    pages = paginate(["<pre>" + "\n".join(f"row {n}" for n in range(30)) + "</pre>"])
    assert len(pages) == 3
    assert all(p.text.startswith("<pre>") and p.text.endswith("</pre>") for p in pages)
    assert all(p.text.count("<pre>") == p.text.count("</pre>") == 1 for p in pages)
    bold = paginate(["<b>" + "bold words " * 80 + "</b>"])
    assert all(p.text.count("<b>") == p.text.count("</b>") == 1 for p in bold)
    assert flat("".join(p.text for p in bold)) == flat("bold words " * 80)
