"""Policy questions: answers with sources, feedback, "Ask a person", and the admins' side.

Anyone with `Action.ASK` asks with free text (the free-text fallback calls
`answer_question`) or ``/ask <question>``, and uses the buttons under the answers. With
`Action.MANAGE_KB`: ``/kb`` (list, show, retire, upload), a .md or .txt file sent to the
bot, ``/questions``, ``/kbstats``, and Reply / Save as FAQ on handed-over questions. An
admin's reply is the next text they send after pressing Reply, or a Telegram reply to the
handed-over question.

Callback data (all well under 64 bytes):

    kb:up:<question id> / kb:dn:<question id>   feedback on an answer
    kb:ho:<question id>                        Ask a person
    kb:t:<question id>:<topic key>             open one of the topics offered
    kb:rp:<handoff id>                         admin: reply to a handed-over question
    kb:rc                                      admin: cancel the reply
    kb:faq:<handoff id>                        admin: save the reply as an FAQ
    kb:pg:<question id>:<topic key>:<page>     the next or previous page of an answer
    kb:dl:<page> / kb:uh:<page> / kb:st:<page>  admin: a page of /kb, /kb upload, /kbstats
    kb:qs:<page>                               admin: a page of /questions
    kb:sv:<document reference>:<page>          admin: a page of /kb show (the reference: a
                                               short hash, as a document id may be 64 long)

An answer, the document list, the upload help and /kbstats are shown a phone screen at a
time (services.screens.paginate), the buttons under them turning the page in place.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    answer_stale,
    buttons,
    drop_keyboard,
    edit_or_reply,
    guarded,
    refuse,
    reply,
    set_keyboard,
)
from handlers.context import deps_of
from handlers.paging import Page, page_buttons, turn
from models import KbHandoff, Person
from models.knowledge import DocumentOrigin
from services import clock, people
from services.i18n import Html, escape, t
from services.kb import answering, documents, handoffs, library, questions, render, store
from services.kb.answering import Outcome, Result
from services.kb.documents import DocumentError
from services.kb.index import KnowledgeBase, Source, Topic
from services.kb.text import short
from services.permissions import Action, check
from services.screens import Page as ScreenPage
from services.screens import paginate

_KB = "kb_index"
_KB_LOCK = "kb_index_lock"
_REPLYING = "kb_reply"  # user_data: [handoff id, ISO time] while an admin types a reply
REPLY_WINDOW = timedelta(minutes=30)
RELATED_SCORE = 0.75  # a second topic scoring this close to the best is offered as a button


# --- the index ------------------------------------------------------------------------------


async def knowledge(context: Context) -> KnowledgeBase:
    """The index, built on first use (or by `warm_up`) and kept in bot_data."""
    return await _knowledge(context.application)


async def _knowledge(application: Application) -> KnowledgeBase:
    data = application.bot_data
    kb = data.get(_KB)
    if kb is None:
        lock = data.setdefault(_KB_LOCK, asyncio.Lock())
        async with lock:
            kb = data.get(_KB)
            if kb is None:
                kb = await deps_of(application).db.run(library.build)
                data[_KB] = kb
    return kb


async def warm_up(application: Application) -> None:
    """Build the index at start-up (post_init), so that the first question is quick."""
    await _knowledge(application)


def forget_knowledge(application: Application) -> None:
    """Drop the index built so far: the next use (or `warm_up`) builds it again from the
    database. A standby's index misses what the leader changed meanwhile (documents
    uploaded or retired, FAQ entries): only the process that makes a change updates its
    own index."""
    application.bot_data.pop(_KB, None)


# --- asking ---------------------------------------------------------------------------------


async def answer_question(update: Update, context: Context, person: Person, text: str) -> None:
    """Answer free text from `person` (the fallback for text outside any conversation).

    An admin who pressed Reply, or who replies in Telegram to a handed-over question, is
    answering that question instead.
    """
    text = text or ""
    if await _admin_reply(update, context, person, text):
        return
    denial = check(person, Action.ASK)
    if denial is not None:
        await refuse(update, context, person, Action.ASK, denial)
        return
    await _answer(update, context, person, text)


@guarded(Action.ASK)
async def ask_command(update: Update, context: Context, person: Person) -> None:
    text = " ".join(context.args or [])
    if not text.strip():
        await reply(update, t(person.language, "kb.ask.usage"))
        return
    await _answer(update, context, person, text)


async def _answer(update: Update, context: Context, person: Person, text: str) -> None:
    kb = await knowledge(context)
    result = await asyncio.to_thread(answering.ask, kb, text)
    lang = person.language
    row = await context.db.run(questions.log, person.id, lang, text, result)
    assert row.id is not None
    message, markup = _response(kb, lang, result, row.id)
    await reply(update, message, reply_markup=markup)


def _feedback_rows(lang: str, question_id: int) -> list[list[tuple[str, str]]]:
    return [
        [
            (t(lang, "kb.button.up"), f"kb:up:{question_id}"),
            (t(lang, "kb.button.down"), f"kb:dn:{question_id}"),
        ]
    ]


def _answer_page(
    kb: KnowledgeBase, lang: str, topic: Topic, question_id: int, page: int
) -> tuple[str, list[list[tuple[str, str]]]] | None:
    """A page of the answer to a question, and the row that turns its pages (none for an
    answer of one page); None for a page the answer does not have."""
    pages = render.answer_pages(kb, lang, topic)
    if not 0 <= page < len(pages):
        return None
    row = page_buttons(
        lang, page, len(pages), lambda number: f"kb:pg:{question_id}:{topic.key}:{number}"
    )
    return pages[page], [row] if row else []


def _response(
    kb: KnowledgeBase, lang: str, result: Result, question_id: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    person_row = [(t(lang, "kb.button.person"), f"kb:ho:{question_id}")]
    best = result.best
    if result.outcome == Outcome.ANSWER and best is not None:
        first = _answer_page(kb, lang, best.topic, question_id, 0)
        assert first is not None
        text, rows = first
        rows += _feedback_rows(lang, question_id)
        for hit in result.hits[1:2]:
            if hit.score >= RELATED_SCORE * best.score:
                label = "→ " + render.topic_label(lang, hit.topic)
                rows.append([(label, f"kb:t:{question_id}:{hit.topic.key}")])
        return text, buttons([*rows, person_row])
    if result.outcome == Outcome.NOT_SURE:
        rows = [
            [(render.topic_label(lang, hit.topic), f"kb:t:{question_id}:{hit.topic.key}")]
            for hit in result.hits[: answering.TOPICS_OFFERED]
        ]
        return t(lang, "kb.not_sure"), buttons([*rows, person_row])
    if result.outcome == Outcome.OUT_OF_SCOPE:
        return t(lang, "kb.out_of_scope"), buttons([person_row])
    if result.outcome == Outcome.SMALL_TALK:
        return t(lang, "kb.small_talk"), None
    return t(lang, "kb.too_short"), None


async def _stale(update: Update, lang: str, key: str = "form.stale") -> None:
    await answer(update.callback_query, t(lang, key), alert=True)


@guarded(Action.ASK)
async def on_feedback(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)  # kb:up|dn:<question>
    query, lang, db = press.query, person.language, context.db
    question_id = press.number(2)
    value = 1 if press.step == "up" else -1
    if question_id is None or not await db.run(
        questions.set_feedback, question_id, person.id, value
    ):
        await _stale(update, lang)
        return
    await answer(query, t(lang, "kb.feedback.thanks" if value > 0 else "kb.feedback.sorry"))
    markup = query.message.reply_markup if query.message else None
    if markup is None:
        return
    kept = [
        [
            (button.text, str(button.callback_data))
            for button in row
            if not str(button.callback_data).startswith(("kb:up:", "kb:dn:"))
        ]
        for row in markup.inline_keyboard
    ]
    await set_keyboard(update, buttons([row for row in kept if row]))


@guarded(Action.ASK)
async def on_topic(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)  # kb:t:<question>:<topic>
    query, lang = press.query, person.language
    question_id = press.number(2)
    kb = await knowledge(context)
    topic = kb.topic(press.word(3)) if question_id is not None else None
    if question_id is None or topic is None:
        await _stale(update, lang)
        return
    if not await context.db.run(questions.choose_topic, question_id, person.id, topic.key):
        await _stale(update, lang)
        return
    await answer(query)
    first = _answer_page(kb, lang, topic, question_id, 0)
    assert first is not None
    text, rows = first
    rows += [
        *_feedback_rows(lang, question_id),
        [(t(lang, "kb.button.person"), f"kb:ho:{question_id}")],
    ]
    await reply(update, text, reply_markup=buttons(rows))


@guarded(Action.ASK)
async def on_answer_page(update: Update, context: Context, person: Person) -> None:
    """kb:pg:<question id>:<topic key>:<page>: another page of an answer, in place. The
    buttons under it stay as they are (feedback given stays given); only the row that
    turns the pages changes."""
    query = update.callback_query
    assert query is not None
    _, _, raw_id, key, raw_page = (query.data or "").split(":")
    kb = await knowledge(context)
    topic = kb.topic(key)
    question = await context.db.run(questions.owned, int(raw_id), person.id)
    shown = (
        _answer_page(kb, person.language, topic, int(raw_id), int(raw_page))
        if topic is not None and question is not None
        else None
    )
    if shown is None:
        await answer_stale(update, context)
        return
    await answer(query)
    text, rows = shown
    markup = query.message.reply_markup if query.message else None
    kept = [
        [(button.text, str(button.callback_data)) for button in row]
        for row in (markup.inline_keyboard if markup else ())
        if not any(str(button.callback_data).startswith("kb:pg:") for button in row)
    ]
    await edit_or_reply(update, text, buttons([*rows, *kept]))


@guarded(Action.ASK)
async def on_handoff(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)  # kb:ho:<question>
    query, lang, db = press.query, person.language, context.db
    question_id = press.number(2)
    opened = None
    if question_id is not None:
        question = await db.run(questions.owned, question_id, person.id)
        kb = await knowledge(context)
        topic = kb.topic(question.topic_key) if question and question.topic_key else None
        opened = await db.run(
            handoffs.open_handoff,
            question_id,
            person,
            topic.key if topic else None,
            topic.title(lang) if topic else None,
        )
    if opened is None:
        await _stale(update, lang)
        return
    handoff, created = opened
    await answer(query)
    if not created:
        await reply(update, t(lang, "kb.handoff.already"))
        return
    await _send_to_admins(context, handoff, person)
    await reply(update, t(lang, "kb.handoff.sent"))


# --- the admins' side of a handoff ------------------------------------------------------------


_name = handoffs.asker_name  # the asker's or admin's name in the handoff texts


async def _send_to_admins(context: Context, handoff: KbHandoff, asker: Person) -> None:
    await context.db.run(handoffs.queue_to_admins, handoff, asker)


async def _pressed_handoff(update: Update, context: Context) -> KbHandoff | None:
    """The handoff a button's data names (``kb:<what>:<id>``), or None if stale or forged."""
    handoff_id = pressed(update).number(2)
    return await context.db.run(handoffs.get, handoff_id) if handoff_id is not None else None


@guarded(Action.MANAGE_KB)
async def on_reply_button(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None
    lang = admin.language
    db = context.db
    handoff = await _pressed_handoff(update, context)
    if handoff is None:
        await _stale(update, lang, "kb.handoff.gone")
        return
    await answer(query)
    asker = await db.run(people.get, handoff.person_id)
    context.user_data[_REPLYING] = [handoff.id, clock.now().isoformat()]  # type: ignore[index]
    question = handoff.question
    if handoffs.shortened(lang, handoff, asker):  # shortened on the card: whole, to read, first
        await reply(update, t(lang, "kb.handoff.full_question", id=handoff.id, question=question))
        question = short(question, handoffs.SCREEN_QUESTION)
    text = t(lang, "kb.handoff.prompt", id=handoff.id, name=_name(asker), question=question)
    await reply(update, text, reply_markup=buttons([[(t(lang, "kb.button.cancel"), "kb:rc")]]))


@guarded(Action.MANAGE_KB)
async def on_reply_cancel(update: Update, context: Context, admin: Person) -> None:
    context.user_data.pop(_REPLYING, None)  # type: ignore[union-attr]
    await answer(update.callback_query)
    await reply(update, t(admin.language, "kb.handoff.cancelled"))


async def _admin_reply(update: Update, context: Context, person: Person, text: str) -> bool:
    """Treat the text as a reply to a handed-over question, if that is what it is."""
    if check(person, Action.MANAGE_KB) is not None:
        return False
    db = context.db
    message = update.effective_message
    replied = message.reply_to_message if message else None
    handoff_id = None
    if message is not None and replied is not None:
        found = await db.run(
            handoffs.by_admin_message, message.chat.id, replied.message_id, replied.text
        )
        handoff_id = found.id if found else None
    pending = (context.user_data or {}).get(_REPLYING)
    if handoff_id is None and pending:
        if clock.now() - datetime.fromisoformat(pending[1]) <= REPLY_WINDOW:
            handoff_id = int(pending[0])
    if handoff_id is None:
        return False
    if not text.strip():
        await reply(update, t(person.language, "kb.handoff.empty_reply"))
        return True
    context.user_data.pop(_REPLYING, None)  # type: ignore[union-attr]
    await _deliver(update, context, person, handoff_id, text)
    return True


async def _deliver(
    update: Update, context: Context, admin: Person, handoff_id: int, text: str
) -> None:
    lang = admin.language
    sent = await context.db.run(handoffs.reply, handoff_id, admin, text)
    if sent is None:
        await reply(update, t(lang, "kb.handoff.gone"))
        return
    handoff, asker = sent
    confirmation = t(lang, "kb.handoff.reply_sent", name=_name(asker))
    save = buttons([[(t(lang, "kb.button.save_faq"), f"kb:faq:{handoff.id}")]])
    await reply(update, confirmation, reply_markup=save)


async def _update_admin_copies(
    context: Context, handoff: KbHandoff, asker: Person | None, note: str, admin: Person
) -> None:
    """Every admin's copy of the question says what happened, in the admin's language."""
    await context.db.run(handoffs.queue_copy_edits, handoff, asker, note, admin)


@guarded(Action.MANAGE_KB)
async def on_save_faq(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None
    lang = admin.language
    db = context.db
    handoff = await _pressed_handoff(update, context)
    if handoff is None or not handoff.answer:
        await _stale(update, lang, "kb.handoff.gone")
        return
    if handoff.faq_doc_id:
        await _stale(update, lang, "kb.handoff.already_saved")
        return
    doc_id = f"faq-{handoff.id}"
    text = store.faq_text(
        doc_id,
        handoff.language,
        handoff.question,
        handoff.answer,
        str(t(handoff.language, "kb.faq.issuer")),
        people.local_today(context.settings.zone),
    )
    await db.run(store.add, text, f"{doc_id}.md", admin.telegram_id, DocumentOrigin.FAQ)
    await db.run(handoffs.mark_saved, handoff.id, doc_id, admin)
    await db.run(library.refresh, await knowledge(context), doc_id)
    await answer(query, t(lang, "kb.handoff.saved"))
    handoff.faq_doc_id = doc_id
    asker = await db.run(people.get, handoff.person_id)
    await _update_admin_copies(context, handoff, asker, "kb.handoff.saved_note", admin)
    pressed = query.message
    copies = await db.run(handoffs.admin_copies, handoff.id)
    if pressed is not None and (pressed.chat.id, pressed.message_id) not in copies:
        # the confirmation under the reply: its button has done its work
        await drop_keyboard(update)


# --- admin commands ------------------------------------------------------------------------


QUESTIONS_PAGE = 2  # waiting questions a page: each up to 4 phone lines, with its Reply


@guarded(Action.MANAGE_KB)
async def questions_command(update: Update, context: Context, admin: Person) -> None:
    text, markup = await _questions_view(context, admin.language, 0)
    await reply(update, text, reply_markup=markup)


async def _questions_view(
    context: Context, lang: str, number: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Page `number` of the questions waiting for a person, the oldest first: each with
    its Reply button, and the row that turns the pages."""
    db = context.db
    page = Page(number, QUESTIONS_PAGE, await db.run(handoffs.count_open)).within()
    waiting = await db.run(handoffs.open_handoffs, page.size, page.offset)
    if not waiting:
        return t(lang, "kb.questions.none"), None
    askers = await db.run(handoffs.askers, waiting)
    header = t(lang, "kb.questions.header", count=page.total)
    text, rows = handoffs.waiting_list(lang, header, waiting, askers, clock.now())
    nav = page_buttons(lang, page.number, page.pages, lambda n: f"kb:qs:{n}")
    return text, buttons(rows + ([nav] if nav else []))


@guarded(Action.MANAGE_KB)
async def on_questions_page(update: Update, context: Context, admin: Person) -> None:
    """kb:qs:<page>: another page of /questions, edited in place."""
    await turn(update, context, lambda number: _questions_view(context, admin.language, number))


@guarded(Action.MANAGE_KB)
async def kbstats_command(update: Update, context: Context, admin: Person) -> None:
    await _admin_page(update, context, admin.language, "st", 0)


async def _stats_lines(context: Context, lang: str) -> list[str]:
    stats = await context.db.run(questions.stats, 30)
    median = (
        t(lang, "kb.stats.minutes", n=stats.median_answer_minutes)
        if stats.median_answer_minutes is not None
        else t(lang, "kb.stats.none")
    )
    counts = {str(o): stats.by_outcome.get(str(o), 0) for o in Outcome}
    lines = [
        t(
            lang,
            "kb.stats",
            count=30,
            total=stats.total,
            up=stats.helpful,
            down=stats.not_helpful,
            open=stats.handoffs_open,
            answered=stats.handoffs_answered,
            median=median,
            **counts,
        )
    ]
    for key, items in (
        ("kb.stats.unanswered", stats.top_unanswered),
        ("kb.stats.downvoted", stats.top_downvoted),
    ):
        lines += ["", t(lang, key)]
        lines += [t(lang, "kb.stats.line", count=n, question=short(q, 100)) for q, n in items]
        if not items:
            lines.append(t(lang, "kb.stats.none"))
    return "\n".join(lines).split("\n")


async def _admin_page(update: Update, context: Context, lang: str, kind: str, page: int) -> None:
    """Page `page` of /kb's document list ("dl"), /kb upload's help ("uh") or /kbstats
    ("st"), each a phone screen, with the buttons that turn the pages: sent for the
    command, edited in place for a button; a page there is no longer is a stale button."""
    header = ""
    if kind == "dl":
        header, lines = _document_list(lang, await knowledge(context))
    elif kind == "uh":
        example = Html(f"<pre>{escape(documents.EXAMPLE)}</pre>")
        lines = t(lang, "kb.docs.upload_help", example=example).split("\n")
    else:
        lines = await _stats_lines(context, lang)
    pages = paginate(lines, header=header, whole=kind != "uh")
    await _send_page(update, context, lang, pages, page, lambda number: f"kb:{kind}:{number}")


async def _send_page(
    update: Update,
    context: Context,
    lang: str,
    pages: list[ScreenPage],
    page: int,
    data: Callable[[int], str],
) -> None:
    """Page `page` of `pages` with the row that turns them (`data`: a page's button data):
    sent for a command, edited in place for a button; a page there is no longer is a stale
    button."""
    query = update.callback_query
    if not 0 <= page < len(pages):
        await answer_stale(update, context)
        return
    row = page_buttons(lang, page, len(pages), data)
    markup = buttons([row]) if row else None
    if query is None:
        await reply(update, pages[page].text, reply_markup=markup)
        return
    await answer(query)
    await edit_or_reply(update, pages[page].text, markup)


@guarded(Action.MANAGE_KB)
async def on_admin_page(update: Update, context: Context, admin: Person) -> None:
    """kb:dl|uh|st:<page>: another page of /kb, /kb upload or /kbstats, in place."""
    query = update.callback_query
    assert query is not None
    _, kind, raw_page = (query.data or "").split(":")
    await _admin_page(update, context, admin.language, kind, int(raw_page))


@guarded(Action.MANAGE_KB)
async def kb_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    args = [a for a in (context.args or []) if a]
    verb = args[0].lower() if args else "list"
    if verb == "list" and len(args) <= 1:
        await _admin_page(update, context, lang, "dl", 0)
    elif verb == "upload":
        await _admin_page(update, context, lang, "uh", 0)
    elif verb == "show" and len(args) == 2:
        await _show(update, context, lang, args[1].lower()[:64])
    elif verb == "retire" and len(args) == 2:
        await _retire(update, context, admin, args[1].lower()[:64])
    else:
        await reply(update, t(lang, "kb.docs.usage"))


def _document_list(lang: str, kb: KnowledgeBase) -> tuple[str, list[str]]:
    """The list's header (on every page), and a line a document, then how to use /kb."""
    by_id: dict[str, list[Source]] = {}
    for source in kb.sources():
        by_id.setdefault(source.doc_id, []).append(source)
    header = t(lang, "kb.docs.header", count=len(by_id)) + "\n"
    lines = []
    for doc_id, versions in sorted(by_id.items()):
        mine = next((s for s in versions if s.language == lang), versions[0])
        status = "superseded" if all(s.superseded for s in versions) else "current"
        lines.append(
            t(
                lang,
                "kb.docs.line",
                doc_id=doc_id,
                languages=", ".join(sorted(s.language for s in versions)),
                status=t(lang, f"kb.docs.status.{status}"),
                title=short(mine.document.meta.title, 120),
            )
        )
    return header, [*lines, "", t(lang, "kb.docs.usage")]


def _reference(doc_id: str) -> str:
    """A document's reference in button data: a document id may be 64 characters long,
    more than a button's data holds with the rest."""
    return hashlib.sha256(doc_id.encode()).hexdigest()[:12]


async def _document_of(context: Context, reference: str) -> str | None:
    """The document a button's reference names: one served, stored or shipped."""
    kb = await knowledge(context)
    rows = await context.db.run(store.latest_rows)
    known = {s.doc_id for s in kb.sources()} | {r.doc_id for r in rows}
    known |= {d.meta.doc_id for d in documents.shipped()}
    return next((d for d in sorted(known) if _reference(d) == reference), None)


@guarded(Action.MANAGE_KB)
async def on_show_page(update: Update, context: Context, admin: Person) -> None:
    """kb:sv:<reference>:<page>: another page of /kb show, in place."""
    query = update.callback_query
    assert query is not None
    _, _, reference, raw_page = (query.data or "").split(":")
    doc_id = await _document_of(context, reference)
    if doc_id is None:
        await answer_stale(update, context)
        return
    await _show(update, context, admin.language, doc_id, int(raw_page))


async def _show(update: Update, context: Context, lang: str, doc_id: str, page: int = 0) -> None:
    """/kb show <id>: the document and its versions, a phone screen a page; sent for the
    command, edited in place for a button."""
    kb = await knowledge(context)
    live = [s for s in kb.sources() if s.doc_id == doc_id]
    history = await context.db.run(library.history, doc_id)
    if not live and not history:
        await reply(update, t(lang, "kb.docs.not_found", doc_id=doc_id))
        return
    lines = []
    if live:
        source = next((s for s in live if s.language == lang), live[0])
        meta = source.document.meta
        lines.append(
            t(
                lang,
                "kb.docs.show",
                title=meta.title,
                doc_id=doc_id,
                code=source.language,
                status=t(
                    lang,
                    "kb.docs.status.superseded" if source.superseded else "kb.docs.status.current",
                ),
                issuer=meta.issuer,
                date=meta.date_label or meta.date or t(lang, "kb.answer.undated"),
                sections=len(source.document.sections),
            )
        )
    lines += ["", t(lang, "kb.docs.versions")]
    zone = context.settings.zone
    for version in history:
        when = (
            version.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if version.created_at
            else "-"
        )
        lines.append(
            f"{version.language} · "
            + t(
                lang,
                "kb.docs.version_line",
                version=version.version,
                origin=t(lang, f"kb.docs.origin.{version.origin}"),
                when=when,
                state=t(lang, f"kb.docs.state.{version.state}"),
            )
        )
    pages = paginate("\n".join(lines).split("\n"))
    reference = _reference(doc_id)
    await _send_page(update, context, lang, pages, page, lambda n: f"kb:sv:{reference}:{n}")


async def _retire(update: Update, context: Context, admin: Person, doc_id: str) -> None:
    db = context.db
    count = await db.run(store.retire, doc_id, admin.telegram_id)
    if not count:
        await reply(update, t(admin.language, "kb.docs.not_found", doc_id=doc_id))
        return
    await db.run(library.refresh, await knowledge(context), doc_id)
    await reply(update, t(admin.language, "kb.docs.retired", doc_id=doc_id, count=count))


@guarded(Action.MANAGE_KB)
async def on_document(update: Update, context: Context, admin: Person) -> None:
    """An admin sent a .md or .txt file: a new document, or a new version of one."""
    lang = admin.language
    message = update.effective_message
    assert message is not None and message.document is not None
    document = message.document
    if document.file_size and document.file_size > documents.MAX_BYTES:
        await reply(update, t(lang, "kb.doc.error.too_big", limit=documents.MAX_BYTES // 1024))
        return
    try:
        file = await context.bot.get_file(document.file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError:
        await reply(update, t(lang, "kb.docs.download_failed"))
        return
    db = context.db
    try:
        added = await db.run(
            store.add, documents.decode(data), document.file_name, admin.telegram_id
        )
    except DocumentError as error:
        await reply(update, t(lang, error.key, **error.values))
        return
    if added.unchanged:
        await reply(update, t(lang, "kb.docs.unchanged", version=added.row.version))
        return
    await db.run(library.refresh, await knowledge(context), added.row.doc_id)
    meta = added.document.meta
    text = t(
        lang,
        "kb.docs.uploaded",
        title=meta.title,
        doc_id=meta.doc_id,
        code=meta.language,
        version=added.row.version,
        count=len(added.document.sections),
    )
    if added.replaced is not None:
        text += "\n" + t(lang, "kb.docs.replaced", old=added.replaced)
    await reply(update, text)


# --- assembly -------------------------------------------------------------------------------

DOCUMENTS = (
    filters.Document.FileExtension("md")
    | filters.Document.FileExtension("markdown")
    | filters.Document.FileExtension("txt")
)


def build() -> list[BaseHandler]:
    """Register before account.build_fallbacks(), which takes any command."""
    return [
        CommandHandler("ask", ask_command),
        CommandHandler("kb", kb_command),
        CommandHandler("questions", questions_command),
        CommandHandler("kbstats", kbstats_command),
        MessageHandler(filters.ChatType.PRIVATE & DOCUMENTS, on_document),
        CallbackQueryHandler(on_feedback, pattern=r"^kb:(up|dn):"),
        CallbackQueryHandler(on_topic, pattern=r"^kb:t:"),
        CallbackQueryHandler(on_handoff, pattern=r"^kb:ho:"),
        CallbackQueryHandler(on_reply_button, pattern=r"^kb:rp:"),
        CallbackQueryHandler(on_reply_cancel, pattern=r"^kb:rc$"),
        CallbackQueryHandler(on_save_faq, pattern=r"^kb:faq:"),
        CallbackQueryHandler(on_answer_page, pattern=r"^kb:pg:"),
        CallbackQueryHandler(on_admin_page, pattern=r"^kb:(dl|uh|st):"),
        CallbackQueryHandler(on_questions_page, pattern=r"^kb:qs:"),
        CallbackQueryHandler(on_show_page, pattern=r"^kb:sv:"),
    ]
