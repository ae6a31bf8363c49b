"""Measuring answers against a question set, and calibrating the confidence threshold.

A question set is JSON: ``{"questions": [{"q", "lang", "in_scope", "must_contain"}]}``.
An in-scope question is answered correctly at rank k when the k-th topic's answer (its
text in the asker's language, with the document's title, issuer and date) contains at
least one string of every ``must_contain`` group, ignoring case.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.i18n import plain_text
from services.kb import render
from services.kb.answering import Outcome, ask
from services.kb.index import KnowledgeBase, Topic


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    in_scope: bool
    must_contain: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Judged:
    question: Question
    outcome: Outcome
    confidence: float
    rank: int | None  # 1-based rank of the first correct topic among the top 3, if any
    best: str  # anchor of the best topic, for reports


@dataclass(frozen=True)
class Report:
    judged: tuple[Judged, ...]

    @property
    def in_scope(self) -> list[Judged]:
        return [j for j in self.judged if j.question.in_scope]

    @property
    def out_of_scope(self) -> list[Judged]:
        return [j for j in self.judged if not j.question.in_scope]

    def recall_at(self, k: int) -> float:
        items = self.in_scope
        return sum(1 for j in items if j.rank is not None and j.rank <= k) / max(len(items), 1)

    @property
    def mrr(self) -> float:
        items = self.in_scope
        return sum(1 / j.rank for j in items if j.rank) / max(len(items), 1)

    @property
    def answered_correctly(self) -> float:
        """Share of in-scope questions that get an answer (not 'not sure') that is right."""
        items = self.in_scope
        good = sum(1 for j in items if j.outcome == Outcome.ANSWER and j.rank == 1)
        return good / max(len(items), 1)

    @property
    def rejected(self) -> float:
        """Share of out-of-scope questions that get no policy answer."""
        items = self.out_of_scope
        return sum(1 for j in items if j.outcome != Outcome.ANSWER) / max(len(items), 1)


def load(path: str | Path) -> list[Question]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        Question(
            text=q["q"],
            language=q.get("lang", "zh-Hans"),
            in_scope=bool(q.get("in_scope", True)),
            must_contain=tuple(tuple(group) for group in q.get("must_contain", [])),
        )
        for q in data["questions"]
    ]


def answer_text(kb: KnowledgeBase, topic: Topic, language: str) -> str:
    """What the asker reads (the rendered answer without markup): the section in their
    language, the document's title, issuer and date, and any warning."""
    return plain_text(render.answer(kb, language, topic))


def is_correct(question: Question, text: str) -> bool:
    lowered = text.lower()
    return all(any(s.lower() in lowered for s in group) for group in question.must_contain)


def judge(kb: KnowledgeBase, question: Question, threshold: float | None = None) -> Judged:
    result = ask(kb, question.text) if threshold is None else ask(kb, question.text, threshold)
    hits = result.hits or tuple(kb.search(kb.analyse(question.text), 3))
    rank = None
    if question.in_scope:
        for position, hit in enumerate(hits, 1):
            if is_correct(question, answer_text(kb, hit.topic, question.language)):
                rank = position
                break
    confidence = hits[0].confidence if hits else 0.0
    best = hits[0].topic.anchor if hits else ""
    return Judged(question, result.outcome, confidence, rank, best)


def evaluate(
    kb: KnowledgeBase, questions: list[Question], threshold: float | None = None
) -> Report:
    return Report(tuple(judge(kb, q, threshold) for q in questions))


def calibrate(kb: KnowledgeBase, questions: list[Question]) -> float:
    """The threshold that best separates right answers from out-of-scope questions, from
    the confidences the base gives the questions (see `threshold_between`)."""
    report = evaluate(kb, questions, threshold=2.0)  # nothing passes: raw confidences only
    good = [j.confidence for j in report.in_scope if j.rank == 1]
    bad = [j.confidence for j in report.out_of_scope]
    return threshold_between(good, bad)


def threshold_between(good: list[float], bad: list[float]) -> float:
    """Candidates are the midpoints between the observed confidences. Each is scored by the
    right answers it lets through plus the out-of-scope questions it stops; among equally
    good thresholds the middle of the widest gap wins (the largest safety margin)."""
    points = sorted({0.0, 1.0, *good, *bad})
    best: tuple[int, float, float] | None = None
    for low, high in itertools.pairwise(points):
        threshold = (low + high) / 2
        score = sum(1 for c in good if c >= threshold) + sum(1 for c in bad if c < threshold)
        candidate = (score, high - low, threshold)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return round(best[2], 3) if best else 0.5
