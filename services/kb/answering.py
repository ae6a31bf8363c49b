"""Deciding what to do with a question: answer, not sure, out of scope, small talk, too short.

The confidence of an answer is the coverage of the question by the best topic (see
`KnowledgeBase.coverage`). `CONFIDENCE_THRESHOLD` was calibrated on the development set
(tests/data/qa-dev.json) with `services.kb.evaluation.calibrate` and checked on the held-out
questions (tests/data/qa-extra.json); docs/knowledge.md explains how to recalibrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.kb.index import Hit, KnowledgeBase
from services.kb.text import grouping_key, meaningful_length

CONFIDENCE_THRESHOLD = 0.37
TOPICS_OFFERED = 3
SOS_EMOJI = "🆘"


class Outcome(StrEnum):
    ANSWER = "answer"
    NOT_SURE = "not_sure"
    OUT_OF_SCOPE = "out_of_scope"
    SMALL_TALK = "small_talk"
    TOO_SHORT = "too_short"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    hits: tuple[Hit, ...] = ()
    confidence: float = 0.0

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def ask(kb: KnowledgeBase, text: str, threshold: float = CONFIDENCE_THRESHOLD) -> Result:
    """What the bot should do with `text`. Never raises on any input."""
    text = (text or "").strip()
    if SOS_EMOJI in text:
        text = text.replace(SOS_EMOJI, " SOS ")
    if meaningful_length(text) < 2:
        return Result(Outcome.TOO_SHORT)
    rest = kb.analyzer.small_talk_rest(text)
    if rest is not None and not kb.knows_any(kb.analyse(rest)):
        return Result(Outcome.SMALL_TALK)
    query = kb.analyse(text)
    hits = tuple(kb.search(query, TOPICS_OFFERED, exact=grouping_key(text)))
    confidence = hits[0].confidence if hits else 0.0
    if hits and confidence >= threshold:
        return Result(Outcome.ANSWER, hits, confidence)
    if not query.slots or not kb.knows_any(query):
        return Result(Outcome.OUT_OF_SCOPE, (), confidence)
    return Result(Outcome.NOT_SURE, hits, confidence)
