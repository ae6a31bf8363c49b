"""Document versions in the database: uploads, answers saved as FAQ, retirements.

Every version is kept. The current version of a (document, language) is the newest row,
unless that row is retired. A shipped document counts as version 0: an upload with the
same id replaces it from version 1 on, and retiring a shipped document records a marker
row that holds the shipped text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import yaml
from sqlalchemy import func
from sqlmodel import Session, col, select

from models import KbDocument
from models.knowledge import DocumentOrigin
from services import audit, clock
from services.kb import documents
from services.kb.documents import Document


@dataclass(frozen=True)
class Added:
    row: KbDocument
    document: Document
    unchanged: bool = False  # the same text as the current version: nothing stored
    replaced: int | None = None  # the version this one supersedes (0: the shipped one)


def latest_rows(session: Session) -> list[KbDocument]:
    """The newest row of every (document, language), retired or not."""
    newest = (
        select(KbDocument.doc_id, KbDocument.language, func.max(KbDocument.version))
        .group_by(col(KbDocument.doc_id), col(KbDocument.language))
        .subquery()
    )
    query = select(KbDocument).join(
        newest,
        (col(KbDocument.doc_id) == newest.c[0])
        & (col(KbDocument.language) == newest.c[1])
        & (col(KbDocument.version) == newest.c[2]),
    )
    return list(session.exec(query))


def rows_of(session: Session, doc_id: str) -> list[KbDocument]:
    """Every version of every language of a document, newest first."""
    query = (
        select(KbDocument)
        .where(KbDocument.doc_id == doc_id)
        .order_by(col(KbDocument.language), col(KbDocument.version).desc())
    )
    return list(session.exec(query))


def get_version(session: Session, doc_id: str, language: str, version: int) -> KbDocument | None:
    query = select(KbDocument).where(
        KbDocument.doc_id == doc_id, KbDocument.language == language, KbDocument.version == version
    )
    return session.exec(query).first()


def _next_version(session: Session, doc_id: str, language: str) -> int:
    query = select(func.max(KbDocument.version)).where(
        KbDocument.doc_id == doc_id, KbDocument.language == language
    )
    return int(session.exec(query).one() or 0) + 1


def _shipped(doc_id: str, language: str) -> Document | None:
    for document in documents.shipped():
        if document.meta.doc_id == doc_id and document.meta.language == language:
            return document
    return None


def add(
    session: Session,
    text: str,
    filename: str | None,
    actor: int | None,
    origin: DocumentOrigin = DocumentOrigin.UPLOAD,
) -> Added:
    """Store a new version; raises DocumentError when the text is not a usable document."""
    document = documents.parse(text, filename)
    meta = document.meta
    current = [r for r in rows_of(session, meta.doc_id) if r.language == meta.language]
    newest = current[0] if current else None
    if newest is not None and newest.retired_at is None and newest.sha256 == document.sha256:
        return Added(newest, document, unchanged=True)
    shipped = _shipped(meta.doc_id, meta.language)
    if newest is None and shipped is not None and shipped.sha256 == document.sha256:
        raise documents.DocumentError("kb.doc.error.same_as_shipped")
    replaced: int | None = None
    if newest is not None and newest.retired_at is None:
        replaced = newest.version
    elif newest is None and shipped is not None:
        replaced = 0
    row = KbDocument(
        doc_id=meta.doc_id,
        language=meta.language,
        version=_next_version(session, meta.doc_id, meta.language),
        origin=origin,
        title=meta.title,
        issuer=meta.issuer,
        issued=meta.date,
        status=meta.status,
        content=text,
        sha256=document.sha256,
        filename=(filename or "")[:200] or None,
        created_at=clock.now(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        f"knowledge.document.{origin}",
        actor=actor,
        doc_id=meta.doc_id,
        language=meta.language,
        version=row.version,
    )
    return Added(row, document, replaced=replaced)


def retire(session: Session, doc_id: str, actor: int | None) -> int:
    """Withdraw every language of a document from answers; returns how many were live."""
    retired = 0
    now = clock.now()
    rows = rows_of(session, doc_id)
    languages = {r.language for r in rows}
    for document in documents.shipped():
        if document.meta.doc_id == doc_id:
            languages.add(document.meta.language)
    for language in sorted(languages):
        newest = next((r for r in rows if r.language == language), None)
        if newest is not None:
            if newest.retired_at is None:
                newest.retired_at, newest.retired_by = now, actor
                session.add(newest)
                retired += 1
            continue
        shipped = _shipped(doc_id, language)
        if shipped is None:
            continue
        session.add(
            KbDocument(
                doc_id=doc_id,
                language=language,
                version=1,
                origin=DocumentOrigin.SHIPPED,
                title=shipped.meta.title,
                issuer=shipped.meta.issuer,
                issued=shipped.meta.date,
                status=shipped.meta.status,
                content=shipped.text,
                sha256=shipped.sha256,
                created_at=now,
                created_by=actor,
                retired_at=now,
                retired_by=actor,
            )
        )
        retired += 1
    if retired:
        audit.record(session, "knowledge.document.retired", actor=actor, doc_id=doc_id)
    return retired


def faq_text(doc_id: str, language: str, question: str, answer: str, issuer: str, day: date) -> str:
    """A saved answer as a document: the question is the section title."""
    title = " ".join(question.split())[:190] or doc_id
    meta = {
        "id": doc_id,
        "language": language,
        "title": title,
        "issuer": str(issuer),
        "date": day.isoformat(),
        "status": "current",
        "tags": ["faq"],
    }
    header = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip()
    body = re.sub(r"(?m)^#", "＃", answer.strip())  # the reply stays one section
    return f"---\n{header}\n---\n\n## {title}\n\n{body}\n"
