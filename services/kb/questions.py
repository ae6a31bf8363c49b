"""The question log: what was asked, what the bot did, and whether it helped.

Question text is stored without readings that look like vital signs (`text.redact`), and
at most 1,000 characters of it. Rows belong to the asker and are erased with them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import HandoffStatus, KbHandoff, KbQuestion
from services import clock
from services.kb.answering import Result
from services.kb.text import grouping_key, redact

MAX_TEXT = 1000
UNANSWERED = ("not_sure", "out_of_scope")


def log(
    session: Session, person_id: int | None, language: str, text: str, result: Result
) -> KbQuestion:
    best = result.best
    doc_ref = None
    if best is not None:
        passage = best.topic.passage(language)
        doc_ref = f"{best.topic.doc_id}#{best.topic.anchor} v{passage.source.version}"[:120]
    clean = redact(text.strip())[:MAX_TEXT]
    row = KbQuestion(
        person_id=person_id,
        language=language,
        text=clean,
        grouping=grouping_key(clean),
        outcome=str(result.outcome),
        confidence=round(result.confidence, 4),
        topic_key=best.topic.key if best else None,
        doc_ref=doc_ref,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, question_id: int) -> KbQuestion | None:
    return session.get(KbQuestion, question_id)


def owned(session: Session, question_id: int, person_id: int) -> KbQuestion | None:
    """The question, if `person_id` asked it (buttons can be forged)."""
    row = session.get(KbQuestion, question_id)
    return row if row is not None and row.person_id == person_id else None


def set_feedback(session: Session, question_id: int, person_id: int, value: int) -> bool:
    row = owned(session, question_id, person_id)
    if row is None or value not in (1, -1):
        return False
    row.feedback, row.feedback_at = value, clock.now()
    session.add(row)
    return True


def choose_topic(session: Session, question_id: int, person_id: int, topic_key: str) -> bool:
    """The asker picked one of the topics offered when the bot was not sure."""
    row = owned(session, question_id, person_id)
    if row is None:
        return False
    row.chosen_topic = topic_key[:16]
    session.add(row)
    return True


@dataclass(frozen=True)
class Stats:
    since: datetime
    total: int
    by_outcome: dict[str, int]
    helpful: int
    not_helpful: int
    handoffs_open: int
    handoffs_answered: int
    median_answer_minutes: float | None
    top_unanswered: list[tuple[str, int]]
    top_downvoted: list[tuple[str, int]]


def stats(session: Session, days: int = 30, top: int = 5) -> Stats:
    """For /kbstats: the last `days` days."""
    since = clock.now() - timedelta(days=days)
    recent = col(KbQuestion.created_at) >= since
    counts = session.exec(
        select(KbQuestion.outcome, func.count()).where(recent).group_by(col(KbQuestion.outcome))
    ).all()
    by_outcome = {str(outcome): int(n) for outcome, n in counts}
    feedback = dict(
        session.exec(
            select(KbQuestion.feedback, func.count())
            .where(recent, col(KbQuestion.feedback).is_not(None))
            .group_by(col(KbQuestion.feedback))
        ).all()
    )
    handoffs = list(session.exec(select(KbHandoff).where(col(KbHandoff.created_at) >= since)))
    waits = [
        (h.answered_at - h.created_at).total_seconds() / 60
        for h in handoffs
        if h.answered_at is not None
    ]
    return Stats(
        since=since,
        total=sum(by_outcome.values()),
        by_outcome=by_outcome,
        helpful=int(feedback.get(1, 0)),
        not_helpful=int(feedback.get(-1, 0)),
        handoffs_open=sum(1 for h in handoffs if h.status == HandoffStatus.OPEN),
        handoffs_answered=sum(1 for h in handoffs if h.status == HandoffStatus.ANSWERED),
        median_answer_minutes=round(statistics.median(waits), 1) if waits else None,
        top_unanswered=_top(session, [recent, col(KbQuestion.outcome).in_(UNANSWERED)], top),
        top_downvoted=_top(session, [recent, col(KbQuestion.feedback) == -1], top),
    )


def _top(session: Session, where: list[Any], limit: int) -> list[tuple[str, int]]:
    """The most frequent questions (grouped by their normalised text) matching `where`."""
    rows = session.exec(
        select(KbQuestion.grouping, func.count(), func.max(KbQuestion.text))
        .where(*where)
        .group_by(col(KbQuestion.grouping))
        .order_by(func.count().desc(), col(KbQuestion.grouping))
        .limit(limit)
    ).all()
    return [(str(text), int(n)) for _, n, text in rows]


def export_for_person(session: Session, person_id: int) -> dict[str, Any]:
    """The person's questions and handoffs, for /mydata (PIPL art. 45)."""
    asked = session.exec(
        select(KbQuestion).where(KbQuestion.person_id == person_id).order_by(col(KbQuestion.id))
    )
    handed = session.exec(
        select(KbHandoff).where(KbHandoff.person_id == person_id).order_by(col(KbHandoff.id))
    )
    return {
        "questions": [q.model_dump(mode="json", exclude={"person_id"}) for q in asked],
        "handoffs": [
            h.model_dump(mode="json", exclude={"person_id", "admin_messages", "asker_telegram_id"})
            for h in handed
        ],
    }
