"""One screen per message (issue 16, point 7): how long a text is on a phone, and a long
text cut into pages that each fit one screen.

A phone 360 px wide shows a line of about 45 Latin or 32 Chinese characters; a message a
person must act on takes at most `SCREEN` lines. `lines_on_phone` measures a text;
`paginate` is the one way to show a longer one: page by page, each page edited in place
under a "More ▶" button (the buttons: `handlers.paging.page_buttons`). A line longer than a
page is cut by the one splitter, `services.outbox.split.split_html`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.i18n import plain_text
from services.outbox.split import open_tags, split_html, visible_length

LINE = 45.0  # Latin characters a line
WIDE = LINE / 32  # a Chinese character (or an emoji) takes the room of 1.4 Latin ones
SCREEN = 12  # lines of one phone screen
FILL = 3  # a page with this many lines free takes the start of a paragraph that is too long


def width(ch: str) -> float:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") or "\ufe00" <= ch <= "\ufe0f":
        return 0.0  # combining marks, zero-width joiners, variation selectors
    if unicodedata.east_asian_width(ch) in ("W", "F") or ord(ch) >= 0x1F000:
        return WIDE
    return 1.0


_CJK = "\u3000-\u9fff\uff00-\uffef"
_WRAP = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s")  # a Chinese character, a word, a space


def _paragraph_lines(paragraph: str) -> int:
    """Word wrap: Latin words move whole to the next line; Chinese breaks anywhere."""
    lines, used = 1, 0.0
    for token in _WRAP.findall(paragraph):
        size = sum(width(ch) for ch in token)
        if token.isspace():
            used += size if used else 0.0
            continue
        if used + size > LINE and used > 0:
            lines, used = lines + 1, 0.0
        while size > LINE:  # a word longer than a line (a URL) is broken
            lines, size = lines + 1, size - LINE
        used += size
    return lines


def lines_on_phone(text: str, *, html: bool = False) -> int:
    """The lines `text` takes on the phone (`html`: Telegram HTML, measured as shown)."""
    shown = plain_text(text) if html else text
    return sum(_paragraph_lines(p) for p in shown.strip("\n").split("\n"))


@dataclass(frozen=True)
class Page:
    """One screen of a paginated text: its HTML, and which of the given lines it shows
    (whole or, for a line longer than a page, in part)."""

    text: str
    lines: tuple[int, ...]


def _closed(body: str, reopen: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """`body` after the tags open before it, closed at its end; and the tags left open."""
    opened = open_tags(body, reopen)
    prefix = "".join(tag for _, tag in reopen)
    suffix = "".join(f"</{name}>" for name, _ in reversed(opened))
    return prefix + body + suffix, opened


def paginate(
    lines: Sequence[str],
    *,
    header: str = "",
    footer: str = "",
    room: int = SCREEN,
    whole: bool = False,
    first: tuple[str, str] | None = None,
) -> list[Page]:
    """`lines` (Telegram HTML; "" is a paragraph break) as pages of at most `room` phone
    lines, each `header` + its lines + `footer` (the header and footer bring their own line
    breaks). A page ends at a paragraph break when there is one in its second half, else
    after the last line that fits; a paragraph that would leave `FILL` lines or more free
    starts on the page and goes on on the next (not with `whole`: list entries that fit a
    page stay whole); blank lines at a cut go. A line longer than a page is
    cut (at a space where possible); tags open at a cut are closed there and reopened on
    the next page. Nothing else is dropped. Always at least one page. `first`: the first
    page's header and footer, when they differ from the others'."""

    def frame() -> tuple[str, str]:
        return first if first is not None and not pages else (header, footer)

    def fits(body: str, reopen: list[tuple[str, str]], above: str = "") -> bool:
        top, bottom = frame()
        text = top + _closed(above + body, reopen)[0] + bottom
        return lines_on_phone(text, html=True) <= room

    def free(body: str, reopen: list[tuple[str, str]]) -> int:
        top, bottom = frame()
        text = top + _closed(body.rstrip("\n") or " ", reopen)[0] + bottom
        return room - lines_on_phone(text, html=True)

    queue = deque(enumerate(lines))
    pages: list[Page] = []
    reopen: list[tuple[str, str]] = []
    while queue:
        while queue and queue[0][1] == "":
            queue.popleft()
        taken: list[tuple[int, str]] = []
        paragraph = 0  # how many lines precede the last paragraph break taken
        while queue:
            index, line = queue[0]
            above = "".join(text + "\n" for _, text in taken)
            if fits((above + line).rstrip("\n"), reopen):
                taken.append(queue.popleft())
                if line == "":
                    paragraph = len(taken) - 1
                continue
            if not taken or not fits(line, reopen) or (not whole and free(above, reopen) >= FILL):
                # longer than a page on its own, or a page left half empty: as much as
                # fits here, the rest next
                head, rest = _cut(line, functools.partial(fits, reopen=reopen, above=above))
                if taken and not fits(above + head, reopen):
                    break
                queue.popleft()
                if rest:
                    queue.appendleft((index, rest))
                taken.append((index, head))
                paragraph = 0
            break
        if queue and paragraph > len(taken) // 2:
            queue.extendleft(reversed(taken[paragraph:]))
            del taken[paragraph:]
        while taken and taken[-1][1] == "":
            taken.pop()
        if not taken:
            continue
        body, reopen = _closed("\n".join(text for _, text in taken), reopen)
        indices = tuple(sorted({index for index, text in taken if text}))
        top, bottom = frame()
        pages.append(Page(top + body + bottom, indices))
    top, bottom = frame()
    return pages or [Page(top + bottom, ())]


def _cut(line: str, fits: Callable[[str], bool]) -> tuple[str, str]:
    """The longest first part of `line` that `fits` (at a line break inside it, else at a
    space where possible), and the rest; the first word or character when nothing fits.
    Tags open at the cut are closed and reopened by `paginate`."""
    rows = line.split("\n")
    if len(rows) > 1:
        for count in range(len(rows) - 1, 0, -1):
            if fits("\n".join(rows[:count])):
                return "\n".join(rows[:count]), "\n".join(rows[count:])
        head, rest = _cut(rows[0], fits)
        return head, "\n".join([rest, *rows[1:]] if rest else rows[1:])
    limit = max(1, visible_length(line) - 1)
    parts = split_html(line, limit)
    while limit > 1:
        parts = split_html(line, limit)
        if fits(parts[0]):
            break
        limit = max(1, int(limit * 0.85))
    else:
        parts = split_html(line, 1)
    return parts[0], "".join(parts[1:])
