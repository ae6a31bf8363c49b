"""How long a message is on a phone: the lines it takes on a 360-px-wide screen, where a
line holds about 45 Latin or 32 Chinese characters (issue 16: one screen per message, at
most about 12 lines for a message a person must act on)."""

from __future__ import annotations

import re
import unicodedata

from services.i18n import plain_text

LINE = 45.0  # Latin characters a line
WIDE = LINE / 32  # a Chinese character (or an emoji) takes the room of 1.4 Latin ones
SCREEN = 12  # lines of one phone screen


def width(ch: str) -> float:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") or "\ufe00" <= ch <= "\ufe0f":
        return 0.0  # combining marks, zero-width joiners, variation selectors
    if unicodedata.east_asian_width(ch) in ("W", "F") or ord(ch) >= 0x1F000:
        return WIDE
    return 1.0


_CJK = "\u3000-\u9fff\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s")  # a Chinese character, a word, a space


def _paragraph_lines(paragraph: str) -> int:
    """Word wrap: Latin words move whole to the next line; Chinese breaks anywhere."""
    lines, used = 1, 0.0
    for token in _TOKEN.findall(paragraph):
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
