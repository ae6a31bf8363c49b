"""Policy documents: Markdown with YAML front matter, cut into answerable sections.

    ---
    id: key-tasks-2022            # the same id for every language version of a document
    language: en                  # zh-Hans or en (guessed from the text when missing)
    title: Key Tasks ... in 2022
    issuer: Organization Department of the Sichuan Provincial Party Committee
    date: 2022-04-01              # as given by the source; free text is kept as written
    date_label: reported 1 April 2022   # optional: how the date is shown
    status: current               # current | superseded
    supersedes: [old-id]          # optional: documents this one replaces
    tags: [quotas, health]
    source: where the text comes from
    ---
    ## A question-sized section {#anchor}
    Text...

Each ``##`` heading starts a section. The optional ``{#anchor}`` pairs a section with the
same section in the other language. A document without ``##`` headings is cut into
paragraph-sized parts. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

import frontmatter
import yaml

from services.i18n import normalize_language
from services.kb.text import guess_language, slugify

EXAMPLE = """---
id: example-document
language: zh-Hans
title: 文件标题 Title of the document
issuer: 发文单位 Issuing body
date: 2023-03-01
status: current
supersedes: [key-tasks-2022]
---
## 一个章节 A section {#anchor}
正文 Text"""
STATUSES = ("current", "superseded")
MAX_BYTES = 256 * 1024
MAX_SECTIONS = 300
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
_ANCHOR = re.compile(r"\s*\{#([A-Za-z0-9_-]{1,48})\}\s*$")
_PART_CHARS = 700


class DocumentError(ValueError):
    """A document that cannot be used; `key` is a catalog key (kb.doc.error.*)."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str  # Markdown


@dataclass(frozen=True)
class Meta:
    doc_id: str
    language: str
    title: str
    issuer: str
    date: str
    date_label: str
    status: str = "current"
    supersedes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Document:
    meta: Meta
    sections: tuple[Section, ...]
    text: str = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def decode(data: bytes) -> str:
    """An uploaded file's text: UTF-8 (with or without BOM), else GB 18030 (Chinese Windows)."""
    if len(data) > MAX_BYTES:
        raise DocumentError("kb.doc.error.too_big", limit=MAX_BYTES // 1024)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
    raise DocumentError("kb.doc.error.encoding")


def parse(text: str, filename: str | None = None) -> Document:
    """Parse a document; raises DocumentError with a catalog key saying what is wrong."""
    try:
        post = frontmatter.loads(text)
    except (yaml.YAMLError, ValueError) as error:
        raise DocumentError("kb.doc.error.front_matter", detail=str(error)[:200]) from None
    data: dict[str, Any] = dict(post.metadata)
    body = post.content.strip()
    if not body:
        raise DocumentError("kb.doc.error.empty")
    first_heading = _first_heading(body)
    title = _text(data.get("title")) or first_heading
    issuer = _text(data.get("issuer") or data.get("issued_by"))
    if not title or not issuer:
        raise DocumentError("kb.doc.error.missing", fields="title, issuer")
    doc_id = _text(data.get("id")) or _id_from(filename) or slugify(title)
    doc_id = doc_id.lower()
    if not _ID.match(doc_id):
        raise DocumentError("kb.doc.error.id", doc_id=doc_id)
    raw_language = _text(data.get("language") or data.get("lang"))
    language = normalize_language(raw_language, guess_language(body)) if raw_language else ""
    language = language or guess_language(body)
    status = (_text(data.get("status")) or "current").lower()
    if status not in STATUSES:
        raise DocumentError("kb.doc.error.status", status=status)
    when = _text(data.get("date") or data.get("effective") or data.get("issued"))
    meta = Meta(
        doc_id=doc_id,
        language=language,
        title=title[:200],
        issuer=issuer[:200],
        date=when[:40],
        date_label=(_text(data.get("date_label")) or when)[:80],
        status=status,
        supersedes=tuple(s.lower() for s in _list(data.get("supersedes")) if s),
        tags=tuple(_list(data.get("tags"))),
        source=_text(data.get("source"))[:500],
    )
    sections = _sections(body, title)
    if not sections:
        raise DocumentError("kb.doc.error.empty")
    if len(sections) > MAX_SECTIONS:
        raise DocumentError("kb.doc.error.too_many", limit=MAX_SECTIONS)
    return Document(meta, tuple(sections), text)


@cache
def shipped() -> tuple[Document, ...]:
    """The documents that ship with the bot (services/knowledge_base/*.md)."""
    folder = resources.files("services") / "knowledge_base"
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".md") and not path.name.startswith(("_", "README")):
            found.append(parse(path.read_text(encoding="utf-8"), path.name))
    return tuple(found)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return " ".join(str(value).split())


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _id_from(filename: str | None) -> str:
    """key-tasks-2022.en.md -> key-tasks-2022 (a language suffix is not part of the id)."""
    if not filename:
        return ""
    stem = filename.rsplit("/", 1)[-1]
    for suffix in (".md", ".markdown", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    for language in (".zh-hans", ".zh", ".en"):
        if stem.lower().endswith(language):
            stem = stem[: -len(language)]
    slug = slugify(stem)
    return slug if _ID.match(slug) else ""


def _first_heading(body: str) -> str:
    for line in body.splitlines():
        match = _HEADING.match(line)
        if match:
            return _ANCHOR.sub("", match.group(2)).strip()
    return ""


def _sections(body: str, doc_title: str) -> list[Section]:
    """## headings start sections; text before the first one is an introduction."""
    sections: list[Section] = []
    title, anchor = "", ""
    lines: list[str] = []
    has_level_two = any(line.startswith("## ") for line in body.splitlines())

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section(anchor, title or doc_title, text))

    for line in body.splitlines():
        match = _HEADING.match(line)
        level = len(match.group(1)) if match else 0
        if level == 1:
            continue  # the document's own title
        if level == 2 and match is not None:
            flush()
            heading = match.group(2)
            explicit = _ANCHOR.search(heading)
            title = _ANCHOR.sub("", heading).strip()
            anchor = explicit.group(1) if explicit else slugify(title)
            lines = []
            continue
        lines.append(line)
    flush()
    if not has_level_two:
        sections = _parts(sections, doc_title)
    return _unique_anchors(sections)


def _parts(sections: list[Section], doc_title: str) -> list[Section]:
    """A document without ## headings: paragraph-sized parts."""
    text = "\n\n".join(s.body for s in sections)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    parts: list[str] = []
    for paragraph in paragraphs:
        if parts and len(parts[-1]) + len(paragraph) < _PART_CHARS:
            parts[-1] += "\n\n" + paragraph
        else:
            parts.append(paragraph)
    if len(parts) == 1:
        return [Section("part-1", doc_title, parts[0])]
    return [
        Section(f"part-{n}", f"{doc_title} ({n}/{len(parts)})", part)
        for n, part in enumerate(parts, 1)
    ]


def _unique_anchors(sections: list[Section]) -> list[Section]:
    seen: dict[str, int] = {}
    result = []
    for section in sections:
        anchor = section.anchor or "intro"
        count = seen.get(anchor, 0) + 1
        seen[anchor] = count
        if count > 1:
            anchor = f"{anchor}-{count}"
        result.append(Section(anchor, section.title, section.body))
    return result
