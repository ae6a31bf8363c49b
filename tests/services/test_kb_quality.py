"""Answer quality on the development set and on held-out questions, and the calibration.

tests/data/qa-dev.json is a copy of the project's development set; qa-extra.json holds
questions written for cadre-bot that were not used to tune anything (paraphrases, both
languages, mixed-language questions and typos).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kb import answering, documents, evaluation
from services.kb.answering import Outcome, ask
from services.kb.index import KnowledgeBase, Source

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    base = KnowledgeBase()
    base.load(Source(d) for d in documents.shipped())
    return base


@pytest.fixture(scope="module")
def dev() -> list[evaluation.Question]:
    return evaluation.load(DATA / "qa-dev.json")


@pytest.fixture(scope="module")
def extra() -> list[evaluation.Question]:
    return evaluation.load(DATA / "qa-extra.json")


def test_recall_at_1_on_the_development_set(kb, dev):
    report = evaluation.evaluate(kb, dev)
    misses = [j.question.text for j in report.in_scope if j.rank != 1]
    assert report.recall_at(1) >= 0.9, misses
    # ...and those answers are given, not hidden behind "not sure"
    assert report.answered_correctly >= 0.9


def test_every_out_of_scope_question_of_the_development_set_gets_no_policy_answer(kb, dev):
    report = evaluation.evaluate(kb, dev)
    assert report.out_of_scope
    for judged in report.out_of_scope:
        assert judged.outcome in (Outcome.NOT_SURE, Outcome.OUT_OF_SCOPE, Outcome.SMALL_TALK)


def test_held_out_questions(kb, extra):
    report = evaluation.evaluate(kb, extra)
    assert len(report.in_scope) >= 20 and len(report.out_of_scope) >= 10
    assert {q.language for q in extra} == {"en", "zh-Hans"}
    assert report.recall_at(1) >= 0.85
    assert report.recall_at(3) >= 0.95
    assert report.rejected == 1.0, [j.question.text for j in report.out_of_scope]


def test_the_threshold_is_the_one_calibrated_on_the_development_set(kb, dev):
    """If this fails after a change to the documents or the analysers, recalibrate:
    run benchmarks/kb_bench.py and copy its calibrated threshold to
    services/kb/answering.py (see docs/knowledge.md)."""
    assert evaluation.calibrate(kb, dev) == pytest.approx(answering.CONFIDENCE_THRESHOLD, abs=0.03)


def test_calibration_picks_the_middle_of_the_widest_gap():
    assert evaluation.threshold_between([0.8, 0.6], [0.2]) == 0.4
    # not separable: 3 of 4 right either at 0.15 or at 0.6; the wider gap wins
    assert evaluation.threshold_between([0.9, 0.7, 0.3], [0.5]) == 0.15


def test_metrics():
    def judged(in_scope, rank, outcome=Outcome.ANSWER):
        question = evaluation.Question("q", "en", in_scope, ())
        return evaluation.Judged(question, outcome, 0.5, rank, "")

    report = evaluation.Report(
        (judged(True, 1), judged(True, 2), judged(True, None), judged(False, None))
    )
    assert report.recall_at(1) == pytest.approx(1 / 3)
    assert report.recall_at(3) == pytest.approx(2 / 3)
    assert report.mrr == pytest.approx((1 + 0.5) / 3)
    assert report.rejected == 0.0


@pytest.mark.parametrize(
    ("question", "anchor"),
    [
        ("oxygen 怎么申请", "oxygen"),  # mixed languages
        ("How do I get oxigen?", "oxygen"),  # a typo
        ("绿色通道 for daily health", "green-channel"),
        ("Which acadamies help train Sichuan cadres?", "academies"),
        ("我头疼怎么办", "unwell"),
        ("🆘", "sos"),
        ("<b>How do I raise an SOS?</b>", "sos"),
    ],
)
def test_understanding_beyond_the_exact_words(kb, question, anchor):
    result = ask(kb, question)
    assert result.outcome == Outcome.ANSWER
    assert result.best is not None and result.best.topic.anchor == anchor


@pytest.mark.parametrize(
    "question",
    ["", " ", "x", "氧", "??", "😀😀😀", "' OR 1=1; --", "<script>alert(1)</script>"],
)
def test_bad_input_never_gets_a_policy_passage(kb, question):
    assert ask(kb, question).outcome != Outcome.ANSWER


def test_a_very_long_question_is_handled(kb):
    result = ask(kb, "How do I raise an SOS? " + "blah " * 800)
    assert result.outcome in set(Outcome)
