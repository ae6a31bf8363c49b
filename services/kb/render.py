"""Answers as Telegram HTML: the section, its source (title, issuer, date) and warnings.

Sections are Markdown; the little that is used (paragraphs, lists, ``**bold**``,
```code```, ``###`` headings) becomes Telegram's HTML subset. Everything else is escaped.
The bot shows an answer a phone screen at a time (`answer_pages`), each page with the
source; `answer` is the whole of it in one text (within Telegram's 4,096 characters).
"""

from __future__ import annotations

import re
import sys

from services.i18n import Html, escape, t
from services.kb.index import KnowledgeBase, Passage, Topic
from services.kb.text import CJK, short
from services.screens import paginate

BODY_BUDGET = 3000  # characters of HTML for the section text: with the framing (titles cut
# to 200 characters) an answer stays well within Telegram's 4,096
BUTTON_CHARS = 48
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HEADING = re.compile(r"^#{3,6}\s+(.*)$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`\n]+)`")
_ANCHOR = re.compile(r"\s*\{#[A-Za-z0-9_-]+\}\s*$")
_LANGUAGE_KEYS = {"zh-Hans": "kb.lang.zh", "en": "kb.lang.en"}


def inline(text: str) -> str:
    html = escape(text)
    html = _CODE.sub(r"<code>\1</code>", html)
    return _BOLD.sub(r"<b>\1</b>", html)


def _join(left: str, right: str) -> str:
    """Unwrap a hard-wrapped line: no space between two Chinese characters."""
    if left and right and CJK.match(left[-1]) and CJK.match(right[0]):
        return left + right
    return f"{left} {right}" if left else right


def blocks(markdown: str) -> list[tuple[str, str]]:
    """Paragraphs, list items and headings of a section, unwrapped: (kind, Markdown)."""
    result: list[tuple[str, str]] = []
    current: list[str] | None = None  # [kind, text]
    for raw in markdown.splitlines():
        line = raw.strip()
        heading = _HEADING.match(line)
        item = _ITEM.match(line)
        if not line or heading or item:
            if current is not None:
                result.append((current[0], current[1]))
            current = None
        if heading:
            result.append(("heading", heading.group(1)))
        elif item:
            marker = "•" if line[0] in "-*+" else item.group().strip()
            current = ["item", f"{marker} {line[item.end() :]}"]
        elif line:
            if current is None:
                current = ["para", line]
            else:
                current[1] = _join(current[1], line)
    if current is not None:
        result.append((current[0], current[1]))
    return result


def _html(kind: str, text: str) -> str:
    return f"<b>{inline(text)}</b>" if kind == "heading" else inline(text)


def markdown_html(markdown: str, budget: int = BODY_BUDGET) -> str:
    """The section as HTML, cut after the last whole block that fits in `budget` (a first
    block longer than that is shortened)."""
    parts: list[str] = []
    used = 0
    previous = ""
    for kind, text in blocks(markdown):
        html = _html(kind, text)
        separator = "" if not parts else "\n" if kind == previous == "item" else "\n\n"
        if used + len(separator) + len(html) > budget:
            if not parts:  # escaping can only lengthen: shorten the source, then convert
                parts.append(_html(kind, short(text, budget // 5)))
            parts.append(("\n" if parts else "") + "…")
            break
        parts.append(separator + html)
        used += len(separator) + len(html)
        previous = kind
    return "".join(parts)


def _date(language: str, passage: Passage) -> str:
    meta = passage.source.document.meta
    return meta.date_label or meta.date or t(language, "kb.answer.undated")


def answer(kb: KnowledgeBase, language: str, topic: Topic) -> str:
    """The whole answer: section, source, warnings; HTML, within Telegram's limit. The
    bot shows it a screen at a time (`answer_pages`)."""
    return _framed(kb, language, topic, Html(markdown_html(topic.passage(language).section.body)))


_BODY = "\x00"  # where the section goes in the frame


def answer_pages(kb: KnowledgeBase, language: str, topic: Topic) -> list[str]:
    """The answer a phone screen at a time (issue 16): every page has the section's title
    on top and its source and warnings below, so no part of an answer is shown without its
    source: in full on the first page (document, issuer, date), by the document's title on
    the next ones. The whole section is shown, over as many pages as it takes."""
    first = _framed(kb, language, topic, Html(_BODY)).split(_BODY)
    header, footer = _framed(kb, language, topic, Html(_BODY), "kb.answer.more").split(_BODY)
    body = markdown_html(topic.passage(language).section.body, budget=sys.maxsize)
    pages = paginate(body.split("\n"), header=header, footer=footer, first=(first[0], first[1]))
    return [page.text for page in pages]


def _framed(
    kb: KnowledgeBase, language: str, topic: Topic, body: Html, key: str = "kb.answer"
) -> str:
    passage = topic.passage(language)
    meta = passage.source.document.meta
    issuer = meta.issuer
    if passage.source.origin == "faq":
        issuer = t(language, "kb.faq.issuer")
    text = t(
        language,
        key,
        title=short(_ANCHOR.sub("", passage.section.title), 200),
        body=body,
        document=short(meta.title, 200),
        issuer=short(issuer, 200),
        date=short(_date(language, passage), 80),
    )
    notes = []
    if passage.source.superseded:
        newer = kb.topics_of(passage.source.superseded_by)
        if newer:
            title = newer[0].passage(language).source.document.meta.title
            notes.append(t(language, "kb.answer.superseded_by", title=short(title, 200)))
        else:
            notes.append(t(language, "kb.answer.superseded"))
    if passage.source.language != language:
        key = _LANGUAGE_KEYS.get(passage.source.language, "kb.lang.zh")
        notes.append(t(language, "kb.answer.other_language", name=t(language, key)))
    if notes:
        text = "\n\n".join([text, *notes])
    return text


def topic_label(language: str, topic: Topic) -> str:
    """A topic as a button label (plain text, short)."""
    return short(_ANCHOR.sub("", topic.title(language)), BUTTON_CHARS)
