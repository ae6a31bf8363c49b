"""Long texts: the one HTML splitter (`split_html`, for direct replies and the outbox
alike) and the Bot API calls that deliver one outbox message (`parts_of`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.i18n import plain_text

TEXT_LIMIT = 4096  # characters of a message after entity parsing
CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class Part:
    """One Bot API call of a message: long texts and captions become several."""

    kind: str  # text | photo | document | location | edit
    text: str | None
    last: bool


def parts_of(kind: str, payload: dict[str, Any]) -> list[Part]:
    """The calls that deliver one outbox message, in order; the reply markup goes on the
    last. Deterministic, so that a restart resumes after the parts already sent."""
    if kind == "text":
        chunks = split_html(payload.get("text") or "", TEXT_LIMIT)
        return [Part("text", c, i == len(chunks) - 1) for i, c in enumerate(chunks)]
    if kind in ("photo", "document"):
        caption = payload.get("caption") or payload.get("text")
        if not caption:
            return [Part(kind, None, True)]
        chunks = split_html(caption, TEXT_LIMIT, first_limit=CAPTION_LIMIT)
        parts = [Part(kind, chunks[0], len(chunks) == 1)]
        parts += [Part("text", c, i == len(chunks) - 2) for i, c in enumerate(chunks[1:])]
        return parts
    if kind == "edit":
        text = payload.get("text") or ""
        return [Part("edit", split_html(text, TEXT_LIMIT)[0], True)]
    return [Part(kind, None, True)]


# A tag, a character reference as Telegram's HTML parser reads it (&lt; &gt; &amp; &quot;,
# the ';' optional; decimal and hexadecimal numbers), a surrogate pair, or one character.
_TOKEN = re.compile(
    r"<[^>]*>|&(?:lt|gt|amp|quot)(?![A-Za-z]);?|&#(?:x[0-9a-fA-F]*|[0-9]*);?"
    r"|[\ud800-\udbff][\udc00-\udfff]|.",
    re.S,
)
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][\w-]*)")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _width(token: str) -> int:
    """UTF-16 code units of visible text (how Telegram counts): a character reference counts
    as the character it stands for, tags count nothing."""
    if token.startswith("<") and token.endswith(">") and len(token) > 1:
        return 0
    if token.startswith("&") and len(token) > 1:
        return _units(_reference(token))
    return _units(token)


def _reference(token: str) -> str:
    """The text Telegram shows for a character reference token (itself when not decoded)."""
    body = token[1:].removesuffix(";")
    if body in _NAMED:
        return _NAMED[body]
    digits = body[2:] if body.startswith("#x") else body[1:]
    if not digits or len(token.removesuffix(";")) >= 10:
        return token
    code = int(digits, 16 if body.startswith("#x") else 10)
    return chr(code) if 0 < code < 0x10FFFF and not 0xD800 <= code < 0xE000 else token


def visible_length(text: str) -> int:
    return sum(_width(token) for token in _TOKEN.findall(text))


def split_html(text: str, limit: int = TEXT_LIMIT, *, first_limit: int | None = None) -> list[str]:
    """Split Telegram HTML into parts whose visible text fits `limit` (the first part
    `first_limit`, e.g. a caption), at line breaks where possible, then at spaces. Tags open
    at a split are closed at the end of the part and opened again at the start of the next,
    so every part is valid HTML on its own. Nothing is dropped."""
    first = first_limit or limit
    if len(text) <= first // 2 or visible_length(text) <= first:  # 2 units at most per char
        return [text]
    tokens = _TOKEN.findall(text)
    chunks: list[str] = []
    start = 0
    reopen: list[tuple[str, str]] = []  # (name, opening tag) open at the split
    while start < len(tokens):
        budget = first if not chunks else limit
        stack = list(reopen)
        length = 0
        index = start
        newline: tuple[int, list[tuple[str, str]]] | None = None
        space: tuple[int, list[tuple[str, str]]] | None = None
        while index < len(tokens):
            token = tokens[index]
            width = _width(token)
            if width and length + width > budget:
                break
            length += width
            _track(stack, token)
            index += 1
            if token == "\n":
                newline = (index, list(stack))
            elif token in (" ", "\t"):
                space = (index, list(stack))
        if index >= len(tokens):
            cut, open_at_cut = index, stack
        else:
            # Prefer a line break in the second half of the part, else a space, else here.
            half = start + (index - start) // 2
            if newline and newline[0] > half:
                cut, open_at_cut = newline
            elif space and space[0] > half:
                cut, open_at_cut = space
            elif newline:
                cut, open_at_cut = newline
            elif space:
                cut, open_at_cut = space
            else:
                cut, open_at_cut = index, stack
            if cut <= start:  # one token wider than the budget: cannot happen for text
                cut, open_at_cut = start + 1, stack
        body = "".join(tokens[start:cut])
        prefix = "".join(tag for _, tag in reopen)
        suffix = "".join(f"</{name}>" for name, _ in reversed(open_at_cut))
        chunk = prefix + body + suffix
        if plain_text(chunk).strip():
            chunks.append(chunk)
        reopen = open_at_cut
        start = cut
    return chunks or [text]


def _track(stack: list[tuple[str, str]], token: str) -> None:
    match = _TAG.match(token) if token.startswith("<") else None
    if match is None:
        return
    closing, name = match.group(1), match.group(2).lower()
    if token.rstrip().endswith("/>"):
        return
    if not closing:
        stack.append((name, token))
        return
    for position in range(len(stack) - 1, -1, -1):
        if stack[position][0] == name:
            del stack[position:]
            return
