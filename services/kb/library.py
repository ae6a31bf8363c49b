"""The knowledge base as the bot sees it: shipped documents overlaid by the database.

`build` makes the index once (at start-up or on the first question); `refresh` updates it
for one document after an upload, a retirement or a saved FAQ, without a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from models import KbDocument
from services.kb import documents, store
from services.kb.documents import DocumentError
from services.kb.index import KnowledgeBase, Source

log = logging.getLogger(__name__)


def _source(row: KbDocument) -> Source | None:
    try:
        document = documents.parse(row.content, row.filename)
    except DocumentError:  # stored versions were valid when stored; never fail a start
        log.warning("stored document %s v%s no longer parses", row.doc_id, row.version)
        return None
    return Source(document, row.version, str(row.origin), row.created_at)


def sources(session: Session, doc_id: str | None = None) -> list[Source]:
    """Current sources: shipped ones, replaced or retired by the newest database rows."""
    found: dict[tuple[str, str], Source] = {}
    for document in documents.shipped():
        if doc_id is None or document.meta.doc_id == doc_id:
            found[(document.meta.doc_id, document.meta.language)] = Source(document)
    rows = store.rows_of(session, doc_id) if doc_id else store.latest_rows(session)
    seen: set[tuple[str, str]] = set()
    for row in rows:  # rows_of is newest first per language: the first one wins
        key = (row.doc_id, row.language)
        if key in seen:
            continue
        seen.add(key)
        if row.retired_at is not None:
            found.pop(key, None)
            continue
        source = _source(row)
        if source is not None:
            found[key] = source
    return list(found.values())


def build(session: Session, kb: KnowledgeBase | None = None) -> KnowledgeBase:
    kb = kb or KnowledgeBase()
    kb.load(sources(session))
    return kb


def refresh(session: Session, kb: KnowledgeBase, doc_id: str) -> None:
    kb.replace(doc_id, sources(session, doc_id))


@dataclass(frozen=True)
class Version:
    language: str
    version: int
    origin: str
    created_at: datetime | None
    state: str  # current | replaced | retired


def history(session: Session, doc_id: str) -> list[Version]:
    """Every version of a document, per language, newest first (for /kb show)."""
    rows = store.rows_of(session, doc_id)
    shipped = {d.meta.language for d in documents.shipped() if d.meta.doc_id == doc_id}
    versions: list[Version] = []
    for language in sorted(shipped | {r.language for r in rows}):
        mine = [r for r in rows if r.language == language]  # newest first
        for index, row in enumerate(mine):
            if row.retired_at is not None:
                state = "retired"
            else:
                state = "current" if index == 0 else "replaced"
            versions.append(Version(language, row.version, str(row.origin), row.created_at, state))
        if language in shipped and not any(r.origin == "shipped" for r in mine):
            state = "current" if not mine else "replaced"
            versions.append(Version(language, 0, "shipped", None, state))
    return versions
