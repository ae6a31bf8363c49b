"""The knowledge base's services: documents, analysers, the index and its incremental
updates, stored versions, the question log, handoffs and reminders."""

from __future__ import annotations

import filecmp
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from models import AuditEntry, HandoffStatus, KbDocument
from models.knowledge import DocumentOrigin
from services import clock, people
from services.i18n import LANGUAGES, catalog
from services.kb import documents, handoffs, library, questions, render, store
from services.kb.analysis import default_analyzer
from services.kb.answering import Outcome, Result, ask
from services.kb.documents import DocumentError
from services.kb.index import KnowledgeBase, Source
from services.kb.text import redact
from tests.support import factories

ROOT = Path(__file__).resolve().parents[2]

DOC = """---
id: test-doc
language: en
title: A test document
issuer: Test Bureau
date: 2024-01-02
---
# A test document

Introduction before any section.

## Snow chains {#chains}

Every car above 3,000 m carries **snow chains** from November.

## Radio checks {#radio}

Drivers call the county office by radio every two hours.
"""


# --- documents ---------------------------------------------------------------------------


def test_the_packaged_documents_are_the_knowledge_folder():
    names = sorted(p.name for p in (ROOT / "knowledge").glob("*.md") if p.name != "README.md")
    assert names == sorted(p.name for p in (ROOT / "services/knowledge_base").glob("*.md"))
    for name in names:
        assert filecmp.cmp(ROOT / "knowledge" / name, ROOT / "services/knowledge_base" / name)


def test_shipped_documents_exist_in_both_languages_with_paired_sections():
    shipped = documents.shipped()
    by_id: dict[str, dict[str, documents.Document]] = {}
    for document in shipped:
        by_id.setdefault(document.meta.doc_id, {})[document.meta.language] = document
    assert set(by_id) == {"key-tasks-2022", "bot-guide"}
    for versions in by_id.values():
        assert set(versions) == {"zh-Hans", "en"}
        anchors = [[s.anchor for s in d.sections] for d in versions.values()]
        assert anchors[0] == anchors[1]
    tasks = by_id["key-tasks-2022"]["en"].meta
    assert tasks.issuer == "Organization Department of the Sichuan Provincial Party Committee"
    assert tasks.date == "2022-04-01" and "27 April 2022" in tasks.source


def test_the_key_tasks_carry_the_article_s_figures_and_no_others():
    text = "\n".join(d.text for d in documents.shipped() if d.meta.doc_id == "key-tasks-2022")
    for fact in ("150", "50", "10", "Red Boat", "红船", "一对一", "one-to-one", "供氧"):
        assert fact in text
    figures = set(re.findall(r"\d+", text))
    assert figures <= {"2022", "04", "01", "150", "50", "10", "1", "4", "27", "120"}


def test_parsing_sections_anchors_and_metadata():
    document = documents.parse(DOC, "whatever.md")
    assert document.meta.doc_id == "test-doc" and document.meta.date == "2024-01-02"
    assert [s.anchor for s in document.sections] == ["intro", "chains", "radio"]
    assert document.sections[1].title == "Snow chains"
    assert document.sections[0].title == "A test document"


def test_a_plain_text_file_is_cut_into_parts_and_named_after_the_file():
    text = "---\ntitle: Notes\nissuer: Someone\n---\n" + "\n\n".join(
        f"Paragraph {n} " + "word " * 60 for n in range(6)
    )
    document = documents.parse(text, "county-notes.txt")
    assert document.meta.doc_id == "county-notes" and document.meta.language == "en"
    assert len(document.sections) > 1 and document.sections[0].title.startswith("Notes (1/")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "kb.doc.error.empty"),
        ("---\ntitle: x\n---\n## A\ntext", "kb.doc.error.missing"),
        ("---\ntitle: [unclosed\n---\ntext", "kb.doc.error.front_matter"),
        ("---\ntitle: T\nissuer: I\nid: Bad Id!\n---\n## A\ntext", "kb.doc.error.id"),
        ("---\ntitle: T\nissuer: I\nstatus: draft\n---\n## A\ntext", "kb.doc.error.status"),
    ],
)
def test_unusable_documents_say_why(text, key):
    with pytest.raises(DocumentError) as raised:
        documents.parse(text, "x.md")
    assert raised.value.key == key
    assert all(raised.value.key in catalog(lang) for lang in LANGUAGES)


def test_decoding_uploads():
    assert documents.decode("中文".encode("gb18030")) == "中文"
    assert documents.decode(b"\xef\xbb\xbfhello\r\n") == "hello\n"
    with pytest.raises(DocumentError):
        documents.decode(b"x" * (documents.MAX_BYTES + 1))


# --- analysers ---------------------------------------------------------------------------


def test_domain_terms_stay_whole_and_concepts_cross_languages():
    analyzer = default_analyzer()
    tokens = analyzer.document_tokens("选派科级干部到浙江挂职，在低海拔地区轮休，享受绿色通道")
    for word in ("挂职", "科级", "低海拔", "绿色通道"):
        assert word in tokens
    english = analyzer.query("oxygen supply for the plateau")
    chinese = analyzer.query("高原供氧")
    assert {"~oxygen", "~high_altitude"} <= set(english.tokens) & set(chinese.tokens)


def test_english_is_stemmed_and_stop_words_dropped():
    query = default_analyzer().query("What are the examinations of the cadres?")
    assert [s.word for s in query.slots] == ["examin", "cadr"]


def test_small_talk_is_recognised_but_not_inside_a_real_question():
    analyzer = default_analyzer()
    assert analyzer.small_talk_rest("Hello!") == ""
    assert analyzer.small_talk_rest("你是机器人吗") is not None
    assert analyzer.small_talk_rest("hello, how do I use sos") is None


def test_readings_are_redacted_from_logged_text():
    text = redact("My SpO2 is 85% and temperature 38.5℃, BP 150/95, what should I do?")
    assert "85" not in text and "38.5" not in text and "150/95" not in text
    assert "what should I do" in text


# --- index -----------------------------------------------------------------------------


def shipped_kb() -> KnowledgeBase:
    kb = KnowledgeBase()
    kb.load(Source(d) for d in documents.shipped())
    return kb


def test_an_added_document_is_found_and_a_removed_one_is_gone_without_a_rebuild():
    kb = shipped_kb()
    before = kb.size
    kb.replace("test-doc", [Source(documents.parse(DOC), 1, "upload")])
    assert kb.size == before + 3
    result = ask(kb, "Do cars need snow chains?")
    assert result.outcome == Outcome.ANSWER and result.best.topic.anchor == "chains"
    kb.replace("test-doc", [])
    assert kb.size == before and ask(kb, "Do cars need snow chains?").outcome != Outcome.ANSWER


def test_supersedes_labels_the_older_document_and_ranks_it_lower():
    kb = shipped_kb()
    old = documents.parse(DOC)
    new = documents.parse(
        DOC.replace("id: test-doc", "id: test-doc-2\nsupersedes: test-doc").replace(
            "from November", "from October"
        )
    )
    kb.replace("test-doc", [Source(old, 1, "upload")])
    kb.replace("test-doc-2", [Source(new, 1, "upload")])
    best = ask(kb, "Do cars need snow chains?").best
    assert best.topic.doc_id == "test-doc-2"
    old_topic = next(t for t in kb.topics_of("test-doc") if t.anchor == "chains")
    text = render.answer(kb, "en", old_topic)
    assert "superseded by “A test document”" in text


def test_an_answer_in_the_other_language_says_so_and_stays_within_limits():
    kb = shipped_kb()
    long = DOC.replace("Drivers call", "Drivers call " + "& <very> long " * 400)
    kb.replace("test-doc", [Source(documents.parse(long), 1, "upload")])
    topic = next(t for t in kb.topics_of("test-doc") if t.anchor == "radio")
    text = render.answer(kb, "zh-Hans", topic)
    assert "该文件只有英文版本" in text and "&amp; &lt;very&gt;" in text and "…" in text
    assert len(text) < 4096 and text.count("<b>") == text.count("</b>")


# --- stored versions ------------------------------------------------------------------


def test_uploads_keep_every_version(db):
    first = db.call(store.add, DOC, "test-doc.md", 9001)
    assert first.row.version == 1 and first.replaced is None
    assert db.call(store.add, DOC, "test-doc.md", 9001).unchanged
    second = db.call(store.add, DOC.replace("November", "October"), "test-doc.md", 9001)
    assert second.row.version == 2 and second.replaced == 1
    history = db.call(library.history, "test-doc")
    assert [(v.version, v.state) for v in history] == [(2, "current"), (1, "replaced")]
    kb = db.call(library.build)
    topic = next(t for t in kb.topics_of("test-doc") if t.anchor == "chains")
    assert "October" in topic.passage("en").section.body


def test_replacing_and_retiring_a_shipped_document(db):
    shipped = next(d for d in documents.shipped() if d.meta.doc_id == "bot-guide")
    with pytest.raises(DocumentError):
        db.call(store.add, shipped.text, "bot-guide.en.md", 9001)
    changed = shipped.text.replace("Send /help at any time", "Send /help whenever you like")
    added = db.call(store.add, changed, "bot-guide.en.md", 9001)
    assert added.replaced == 0 and added.row.version == 1
    assert db.call(store.retire, "bot-guide", 9001) == 2
    kb = db.call(library.build)
    assert kb.topics_of("bot-guide") == []
    states = {(v.language, v.version): v.state for v in db.call(library.history, "bot-guide")}
    assert states[("en", 1)] == "retired" and states[("zh-Hans", 1)] == "retired"
    assert states[("en", 0)] == "replaced"
    with db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEntry))]
    assert "knowledge.document.retired" in actions


def test_refresh_updates_one_document(db):
    kb = db.call(library.build)
    db.call(store.add, DOC, "test-doc.md", 9001)
    assert kb.topics_of("test-doc") == []
    db.call(library.refresh, kb, "test-doc")
    assert len(kb.topics_of("test-doc")) == 3


def test_a_saved_answer_becomes_a_document(db):
    text = store.faq_text(
        "faq-7", "en", "Can I bring my car?", "## Yes\nif it has chains.", "admins", clock.now()
    )
    document = documents.parse(text)
    assert [s.title for s in document.sections] == ["Can I bring my car?"]
    assert "＃# Yes" in document.sections[0].body or "＃" in document.sections[0].body


# --- questions and handoffs ---------------------------------------------------------------


def test_logged_questions_feedback_stats_and_export(db):
    person = factories.person(db, 1001)
    kb = shipped_kb()
    result = ask(kb, "How can I delete my personal data? My SpO2 is 84%")
    row = db.call(questions.log, person.id, "en", "How can I delete my data? SpO2 84%", result)
    assert "84" not in row.text and row.doc_ref.startswith("bot-guide#")
    assert db.call(questions.set_feedback, row.id, person.id, -1)
    assert not db.call(questions.set_feedback, row.id, person.id + 1, 1)
    db.call(questions.log, person.id, "en", "football?", Result(Outcome.NOT_SURE))
    db.call(questions.log, person.id, "en", "Football?!", Result(Outcome.NOT_SURE))
    stats = db.call(questions.stats)
    assert stats.total == 3 and stats.not_helpful == 1
    assert stats.top_unanswered[0][1] == 2
    exported = db.call(questions.export_for_person, person.id)
    assert len(exported["questions"]) == 3


def test_handoffs_remind_after_a_while_until_answered(db):
    person = factories.person(db, 1001)
    admin = factories.admin(db)
    row = db.call(questions.log, person.id, "en", "Canteen?", Result(Outcome.NOT_SURE))
    handoff, created = db.call(handoffs.open_handoff, row.id, person)
    assert created and not db.call(handoffs.open_handoff, row.id, person)[1]
    stranger = factories.person(db, 1002)
    assert db.call(handoffs.open_handoff, row.id, stranger) is None
    now = clock.now()
    assert db.call(handoffs.due_reminders, now) == []
    first = now + handoffs.FIRST_REMINDER
    assert [h.id for h in db.call(handoffs.due_reminders, first)] == [handoff.id]
    db.call(handoffs.mark_reminded, [handoff.id], first)
    assert db.call(handoffs.due_reminders, first + timedelta(hours=1)) == []
    again = first + handoffs.REPEAT_REMINDER
    assert len(db.call(handoffs.due_reminders, again)) == 1
    answered = db.call(handoffs.answer, handoff.id, admin, "Yes, at noon.")
    assert answered.status == HandoffStatus.ANSWERED
    assert db.call(handoffs.due_reminders, again) == []


def test_deleting_a_person_deletes_their_questions_and_handoffs(db):
    person = factories.person(db, 1001)
    row = db.call(questions.log, person.id, "en", "Canteen?", Result(Outcome.NOT_SURE))
    db.call(handoffs.open_handoff, row.id, person)
    db.call(people.delete_own_data, 1001)
    with db.session() as session:
        assert session.exec(select(KbDocument)).all() == []
        assert db.call(handoffs.open_handoffs) == []
        assert db.call(questions.get, row.id) is None


def test_dynamic_catalog_keys_exist():
    keys = [f"kb.docs.status.{s}" for s in documents.STATUSES]
    keys += [f"kb.docs.origin.{o}" for o in ("shipped", "upload", "faq")]
    keys += [f"kb.docs.state.{s}" for s in ("current", "replaced", "retired")]
    keys += [f"kb.doc.error.{e}" for e in ("too_big", "encoding", "same_as_shipped", "too_many")]
    for lang in LANGUAGES:
        assert [k for k in keys if k not in catalog(lang)] == []


def test_an_answer_saved_from_a_deleted_persons_question_stays_without_their_words(db):
    """/deleteme reaches the knowledge base: an admin's saved answer stays for everyone,
    retitled "FAQ n", and its text no longer carries the person's question."""
    person = factories.person(db, 1001)
    admin = factories.admin(db)
    asked = "Does the Kangding canteen near Zhuoma's office serve tsampa?"
    row = db.call(questions.log, person.id, "en", asked, Result(Outcome.NOT_SURE))
    handoff, _ = db.call(handoffs.open_handoff, row.id, person)
    db.call(handoffs.answer, handoff.id, admin, "Yes, every morning from 7 to 9.")
    doc_id = f"faq-{handoff.id}"
    text = store.faq_text(
        doc_id, "en", asked, "Yes, every morning from 7 to 9.", "admins", date(2026, 11, 26)
    )
    db.call(store.add, text, f"{doc_id}.md", admin.telegram_id, DocumentOrigin.FAQ)
    db.call(handoffs.mark_saved, handoff.id, doc_id, admin)

    erased = db.call(people.erase_person, 1001)

    assert erased is not None and erased.faqs == [doc_id]
    with db.session() as session:
        (doc,) = session.exec(select(KbDocument).where(KbDocument.doc_id == doc_id)).all()
    assert doc.title == f"FAQ {handoff.id}"
    assert "Zhuoma" not in doc.content and "tsampa" not in doc.content
    assert "every morning from 7 to 9" in doc.content
    assert documents.parse(doc.content, doc.filename).meta.title == doc.title
