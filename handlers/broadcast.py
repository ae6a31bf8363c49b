"""Admin broadcasts: /broadcast (compose, audience, preview, confirm, schedule), /broadcasts
(past ones, details, CSV, re-send to the unconfirmed, cancel), the recipients' "Received ✓"
button, and noticing people who block the bot. Cohort tags (/tag, /untag, /tags) are
handlers/tags.py.

The /broadcast form is a persistent ConversationHandler: the draft lives in
user_data["broadcast"] and survives restarts; it expires after CADRE_FORM_TIMEOUT seconds.
Sending goes through the delivery engine (services/broadcasts.py, bot/delivery.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from telegram import ChatMemberUpdated, InputFile, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    current_person,
    drop_keyboard,
    edit_or_reply,
    guarded,
    refuse,
    reply,
    set_keyboard,
)
from handlers.conversation import FormDraft, form_conversation
from models import Audience, Broadcast, BroadcastStatus, OutcomeCode, Person
from services import broadcasts, clock, examples
from services.broadcasts import AUDIENCE_ROLES, Draft, Stats
from services.i18n import LANGUAGES, t
from services.outbox.reachability import mark_reachable, mark_unreachable
from services.outbox.split import parts_of
from services.permissions import Action, check
from services.postings import load_postings

NAME = "broadcast"
CONTENT, SECOND, AUDIENCE, REVIEW, WHEN = "content", "second", "audience", "review", "when"
STATES = (CONTENT, SECOND, AUDIENCE, REVIEW, WHEN)
MAX_SCHEDULE_DAYS = 60
LIST_SIZE = 10
LANGUAGE_NAME = {"zh-Hans": "broadcast.lang_name.zh", "en": "broadcast.lang_name.en"}
WHO_LIMIT = 40


# ----------------------------------------------------------------------- the draft


DRAFT = FormDraft("broadcast")  # the JobQueue's timeout does not survive a restart


def _draft(context: Context) -> dict[str, Any]:
    return DRAFT.of(context)


def _other(lang: str) -> str:
    return "en" if lang == "zh-Hans" else "zh-Hans"


def _as_draft(data: dict[str, Any]) -> Draft:
    scheduled = data.get("at")
    return Draft(
        kind=data.get("kind", "text"),
        texts=dict(data.get("texts") or {}),
        file_id=data.get("file_id"),
        audience=Audience(data.get("audience", Audience.ALL)),
        audience_value=data.get("value"),
        confirm_required=bool(data.get("confirm")),
        scheduled_at=datetime.fromisoformat(scheduled) if scheduled else None,
    )


def _local(context: Context, value: datetime) -> str:
    return value.astimezone(context.settings.zone).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------- the form


@guarded(Action.BROADCAST)
async def start(update: Update, context: Context, admin: Person) -> str:
    DRAFT.clear(context)
    DRAFT.touch(context)
    lang = admin.language
    await reply(
        update,
        t(lang, "broadcast.ask.content"),
        reply_markup=buttons([[(t(lang, "broadcast.button.discard"), "bw:x")]]),
    )
    return CONTENT


async def on_content(update: Update, context: Context) -> str | int:
    admin = await _admin(update, context)
    if admin is None:
        return ConversationHandler.END
    lang = admin.language
    message = update.effective_message
    assert message is not None
    if DRAFT.expired(context):
        DRAFT.clear(context)
        await reply(update, t(lang, "broadcast.expired"))
        return ConversationHandler.END
    draft = _draft(context)
    state = draft.get("step", CONTENT)
    if state == SECOND:
        return await _on_second(update, context, admin)
    if state != CONTENT:
        await reply(update, t(lang, "broadcast.use_buttons"))
        return state
    if message.photo:
        kind, file_id, text = "photo", message.photo[-1].file_id, message.caption_html or ""
    elif message.document:
        kind, file_id, text = "document", message.document.file_id, message.caption_html or ""
    elif message.text:
        kind, file_id, text = "text", None, message.text_html
    else:
        await reply(update, t(lang, "broadcast.ask.content_again"))
        return CONTENT
    draft.update(kind=kind, file_id=file_id, first=text, texts={})
    DRAFT.touch(context)
    await reply(
        update,
        t(lang, "broadcast.ask.language"),
        reply_markup=buttons(
            [
                [(t(lang, "broadcast.lang.zh"), "bw:l:zh")],
                [(t(lang, "broadcast.lang.en"), "bw:l:en")],
                [(t(lang, "broadcast.lang.one"), "bw:l:one")],
                [(t(lang, "broadcast.button.discard"), "bw:x")],
            ]
        ),
    )
    return CONTENT


async def _on_second(update: Update, context: Context, admin: Person) -> str:
    lang = admin.language
    message = update.effective_message
    assert message is not None
    draft = _draft(context)
    text = message.text_html if message.text else (message.caption_html or "")
    if not text.strip():
        await reply(update, t(lang, "broadcast.ask.second_again"))
        return SECOND
    draft.setdefault("texts", {})[draft["second"]] = text
    draft["step"] = AUDIENCE
    DRAFT.touch(context)
    await _ask_audience(update, context, admin)
    return AUDIENCE


async def on_button(update: Update, context: Context) -> str | int:
    query = update.callback_query
    assert query is not None and query.data is not None
    admin = await _admin(update, context)
    if admin is None:
        return ConversationHandler.END
    lang = admin.language
    draft = _draft(context)
    if DRAFT.expired(context) or not draft.get("touched"):
        await answer(query, t(lang, "broadcast.expired"), alert=True)
        DRAFT.clear(context)
        return ConversationHandler.END
    press = pressed(update)
    action, value = press.step, press.word(2)
    DRAFT.touch(context)
    if action == "x":
        await answer(query)
        DRAFT.clear(context)
        await reply(update, t(lang, "broadcast.discarded"))
        return ConversationHandler.END
    if action == "l" and draft.get("first") is not None:
        await answer(query)
        first = draft["first"]
        if value == "one":
            draft["texts"] = {lang: first}
            draft["step"] = AUDIENCE
            await _ask_audience(update, context, admin)
            return AUDIENCE
        given = "zh-Hans" if value == "zh" else "en"
        draft["texts"] = {given: first}
        draft["second"] = _other(given)
        draft["step"] = SECOND
        key = "broadcast.ask.english" if given == "zh-Hans" else "broadcast.ask.chinese"
        if draft.get("kind") != "text":
            key += "_caption"
        await reply(
            update,
            t(lang, key),
            reply_markup=buttons([[(t(lang, "broadcast.button.skip"), "bw:skip")]]),
        )
        return SECOND
    if action == "skip" and draft.get("step") == SECOND:
        await answer(query)
        draft["step"] = AUDIENCE
        await _ask_audience(update, context, admin)
        return AUDIENCE
    if action == "a" and draft.get("texts"):
        return await _on_audience(update, context, admin, value)
    if action in ("p", "r", "t") and draft.get("texts"):
        audience = {"p": Audience.PREFECTURE, "r": Audience.ROLE, "t": Audience.TAG}[action]
        draft.update(audience=audience.value, value=value)
        return await _review(update, context, admin)
    if action == "c" and draft.get("audience"):
        await answer(query)
        draft["confirm"] = not draft.get("confirm")
        await _summary(update, context, admin, edit=True)
        return REVIEW
    if action == "w" and draft.get("audience"):
        await answer(query)
        draft["step"] = WHEN
        await reply(
            update,
            t(
                lang,
                "broadcast.ask.when",
                zone=context.settings.timezone,
                **examples.values(context.settings.zone),
            ),
            reply_markup=buttons(
                [
                    [
                        (t(lang, "broadcast.when.hour"), "bw:at:1h"),
                        (t(lang, "broadcast.when.tomorrow"), "bw:at:tm"),
                    ],
                    [(t(lang, "broadcast.when.now"), "bw:at:now")],
                ]
            ),
        )
        return WHEN
    if action == "at" and draft.get("audience"):
        await answer(query)
        now = clock.now()
        if value == "1h":
            draft["at"] = (now + timedelta(hours=1)).isoformat()
        elif value == "tm":
            zone = context.settings.zone
            tomorrow = (now.astimezone(zone) + timedelta(days=1)).replace(
                hour=9, minute=0, second=0, microsecond=0
            )
            draft["at"] = tomorrow.isoformat()
        else:
            draft.pop("at", None)
        draft["step"] = REVIEW
        await _summary(update, context, admin)
        return REVIEW
    if action == "go" and draft.get("audience"):
        return await _send(update, context)
    await answer(query, t(lang, "broadcast.use_buttons"))
    return draft.get("step", CONTENT)


async def on_when_text(update: Update, context: Context) -> str | int:
    admin = await _admin(update, context)
    if admin is None:
        return ConversationHandler.END
    lang = admin.language
    draft = _draft(context)
    if draft.get("step") != WHEN:
        return await on_content(update, context)
    message = update.effective_message
    assert message is not None and message.text is not None
    zone = context.settings.zone
    try:
        when = datetime.strptime(message.text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        await reply(update, t(lang, "broadcast.when.invalid", **examples.values(zone)))
        return WHEN
    now = clock.now()
    if when <= now or when > now + timedelta(days=MAX_SCHEDULE_DAYS):
        await reply(update, t(lang, "broadcast.when.out_of_range", count=MAX_SCHEDULE_DAYS))
        return WHEN
    draft["at"] = when.isoformat()
    draft["step"] = REVIEW
    DRAFT.touch(context)
    await _summary(update, context, admin)
    return REVIEW


async def _ask_audience(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    db = context.db
    everyone = sum((await db.run(broadcasts.audience_count, Audience.ALL, None)).values())
    overdue = sum((await db.run(broadcasts.audience_count, Audience.OVERDUE, None)).values())
    await reply(
        update,
        t(lang, "broadcast.ask.audience"),
        reply_markup=buttons(
            [
                [(t(lang, "broadcast.audience.all_button", count=everyone), "bw:a:all")],
                [
                    (t(lang, "broadcast.audience.prefecture_button"), "bw:a:pref"),
                    (t(lang, "broadcast.audience.role_button"), "bw:a:role"),
                ],
                [
                    (t(lang, "broadcast.audience.tag_button"), "bw:a:tag"),
                    (t(lang, "broadcast.audience.overdue_button", count=overdue), "bw:a:due"),
                ],
                [(t(lang, "broadcast.button.discard"), "bw:x")],
            ]
        ),
    )


async def _on_audience(update: Update, context: Context, admin: Person, value: str) -> str:
    query = update.callback_query
    assert query is not None
    lang = admin.language
    draft = _draft(context)
    back = [(t(lang, "broadcast.button.back"), "bw:a:back")]
    if value == "all":
        draft.update(audience=Audience.ALL.value, value=None)
        return await _review(update, context, admin)
    if value == "due":
        draft.update(audience=Audience.OVERDUE.value, value=None)
        return await _review(update, context, admin)
    await answer(query)
    if value == "pref":
        postings = load_postings()
        rows = [
            [(postings.name(p.code, lang, short=True), f"bw:p:{p.code}")]
            for p in postings.prefectures()
        ]
        await reply(
            update, t(lang, "broadcast.ask.prefecture"), reply_markup=buttons([*rows, back])
        )
    elif value == "role":
        rows = [[(t(lang, f"role.{role}"), f"bw:r:{role}")] for role in AUDIENCE_ROLES]
        await reply(update, t(lang, "broadcast.ask.role"), reply_markup=buttons([*rows, back]))
    elif value == "tag":
        found = await context.db.run(broadcasts.tags)
        if not found:
            await reply(update, t(lang, "broadcast.no_tags"), reply_markup=buttons([back]))
        else:
            rows = [[(f"{tag} ({count})", f"bw:t:{tag}")] for tag, count in found[:30]]
            await reply(update, t(lang, "broadcast.ask.tag"), reply_markup=buttons([*rows, back]))
    else:
        await _ask_audience(update, context, admin)
    draft["step"] = AUDIENCE
    return AUDIENCE


async def _review(update: Update, context: Context, admin: Person) -> str:
    """Show the notice as recipients will see it, then the summary with the options."""
    query = update.callback_query
    lang = admin.language
    draft = _draft(context)
    data = _as_draft(draft)
    counts = await context.db.run(broadcasts.audience_count, data.audience, data.audience_value)
    if not counts:
        if query is not None:
            await answer(query, t(lang, "broadcast.nobody"), alert=True)
        draft["step"] = AUDIENCE
        return AUDIENCE
    if query is not None:
        await answer(query)
    draft["step"] = REVIEW
    sample = Broadcast(
        id=0,
        admin_chat_id=0,
        kind=data.kind,
        file_id=data.file_id,
        texts=data.texts,
        confirm_required=data.confirm_required,
    )
    await reply(update, t(lang, "broadcast.preview.title"))
    for language in sorted(set(data.texts) or {lang}, key=lambda code: code != lang):
        text = broadcasts.notice_text(sample, language)
        message = update.effective_message
        assert message is not None
        if data.kind == "photo":
            for index, part in enumerate(parts_of("photo", {"caption": text})):
                if index == 0:
                    await message.chat.send_photo(data.file_id, caption=part.text)
                else:
                    await message.chat.send_message(part.text or "")
        elif data.kind == "document":
            for index, part in enumerate(parts_of("document", {"caption": text})):
                if index == 0:
                    await message.chat.send_document(data.file_id, caption=part.text)
                else:
                    await message.chat.send_message(part.text or "")
        else:
            await reply(update, text)
    await _summary(update, context, admin, counts=counts)
    return REVIEW


async def _summary(
    update: Update,
    context: Context,
    admin: Person,
    *,
    edit: bool = False,
    counts: dict[str, int] | None = None,
) -> None:
    lang = admin.language
    draft = _draft(context)
    data = _as_draft(draft)
    if counts is None:
        counts = await context.db.run(broadcasts.audience_count, data.audience, data.audience_value)
    by_language = ", ".join(
        t(lang, "broadcast.count.language", name=t(lang, LANGUAGE_NAME[code]), count=n)
        for code, n in sorted(counts.items())
        if code in LANGUAGES
    )
    when = (
        t(lang, "broadcast.when.at", time=_local(context, data.scheduled_at))
        if data.scheduled_at
        else t(lang, "broadcast.when.immediately")
    )
    text = t(
        lang,
        "broadcast.summary",
        audience=broadcasts.audience_label(lang, data.audience, data.audience_value),
        count=sum(counts.values()),
        languages=by_language or "-",
        versions=", ".join(
            t(lang, LANGUAGE_NAME[c]) for c in sorted(data.texts) if c in LANGUAGE_NAME
        ),
        confirm=t(
            lang, "broadcast.confirm.on" if data.confirm_required else "broadcast.confirm.off"
        ),
        when=when,
    )
    toggle = (
        "broadcast.button.confirm_off" if data.confirm_required else "broadcast.button.confirm_on"
    )
    go = "broadcast.button.schedule" if data.scheduled_at else "broadcast.button.send"
    markup = buttons(
        [
            [(t(lang, go), "bw:go")],
            [(t(lang, toggle), "bw:c"), (t(lang, "broadcast.button.when"), "bw:w")],
            [
                (t(lang, "broadcast.button.audience"), "bw:a:back"),
                (t(lang, "broadcast.button.discard"), "bw:x"),
            ],
        ]
    )
    if edit:
        await edit_or_reply(update, text, markup)
    else:
        await reply(update, text, reply_markup=markup)


async def _send(update: Update, context: Context) -> int | str:
    return await _create(update, context)


@guarded(Action.BROADCAST)
async def _create(update: Update, context: Context, admin: Person) -> int | str:
    query = update.callback_query
    assert query is not None and query.message is not None
    lang = admin.language
    draft = _as_draft(_draft(context))
    if draft.scheduled_at is not None and draft.scheduled_at <= clock.now():
        draft.scheduled_at = None
    d = context.deps
    broadcast = await d.db.run(broadcasts.create, admin, query.message.chat.id, draft)
    await answer(query)
    await drop_keyboard(update)
    DRAFT.clear(context)
    if broadcast.status == BroadcastStatus.SCHEDULED:
        context.timers.plan_broadcast(broadcast)
        assert broadcast.scheduled_at is not None
        await reply(
            update,
            t(
                lang,
                "broadcast.scheduled",
                id=broadcast.id,
                time=_local(context, broadcast.scheduled_at),
            ),
        )
    else:
        await reply(update, t(lang, "broadcast.queued", id=broadcast.id, count=broadcast.total))
    return ConversationHandler.END


async def cancel(update: Update, context: Context) -> int:
    person = await current_person(update, context)
    lang = person.language if person else context.settings.default_language
    DRAFT.clear(context)
    await reply(update, t(lang, "broadcast.discarded"))
    return ConversationHandler.END


async def on_timeout(update: Update, context: Context) -> int:
    person = await current_person(update, context)
    lang = person.language if person else context.settings.default_language
    DRAFT.clear(context)
    await reply(update, t(lang, "broadcast.expired"))
    return ConversationHandler.END


async def _admin(update: Update, context: Context) -> Person | None:
    """The person filling the form, still an admin (or the form ends, explained)."""
    person = await current_person(update, context)
    denial = check(person, Action.BROADCAST)
    if denial is not None:
        await refuse(update, context, person, Action.BROADCAST, denial)
        DRAFT.clear(context)
        return None
    return person


# ------------------------------------------------------------- past broadcasts


def _row_text(lang: str, broadcast: Broadcast, s: Stats, context: Context) -> str:
    key = f"broadcast.status.{broadcast.status}"
    text = t(
        lang,
        "broadcast.list.row",
        id=broadcast.id,
        date=_local(context, broadcast.scheduled_at or broadcast.created_at),
        audience=broadcasts.audience_label(lang, broadcast.audience, broadcast.audience_value),
        status=t(lang, key),
        sent=s.sent,
        total=s.total,
        rate=f"{s.delivery_rate:.0%}",
    )
    if broadcast.confirm_required:
        text += t(
            lang,
            "broadcast.list.confirmed",
            confirmed=s.confirmed,
            rate=f"{s.confirmation_rate:.0%}",
        )
    return text


@guarded(Action.BROADCAST)
async def list_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    rows = await context.db.run(broadcasts.recent, LIST_SIZE)
    if not rows:
        await reply(update, t(lang, "broadcast.list.empty"))
        return
    lines = [_row_text(lang, b, s, context) for b, s in rows]
    markup = buttons(
        [[(f"#{b.id}", f"bc:v:{b.id}") for b, _ in rows[i : i + 5]] for i in range(0, len(rows), 5)]
    )
    await reply(
        update, t(lang, "broadcast.list.title") + "\n\n" + "\n".join(lines), reply_markup=markup
    )


async def _detail(context: Context, lang: str, broadcast_id: int) -> tuple[str, Any] | None:
    db = context.db
    broadcast = await db.run(broadcasts.get, broadcast_id)
    if broadcast is None:
        return None
    s = await db.run(broadcasts.stats, broadcast)
    text = t(
        lang,
        "broadcast.detail",
        id=broadcast.id,
        status=t(lang, f"broadcast.status.{broadcast.status}"),
        audience=broadcasts.audience_label(lang, broadcast.audience, broadcast.audience_value),
        created=_local(context, broadcast.created_at),
        when=_local(
            context, broadcast.scheduled_at or broadcast.started_at or broadcast.created_at
        ),
        sent=s.sent,
        failed=s.failed,
        blocked=s.blocked,
        cancelled=s.cancelled,
        pending=s.pending,
        total=s.total,
        rate=f"{s.delivery_rate:.0%}",
    )
    rows: list[list[tuple[str, str]]] = [
        [(t(lang, "broadcast.button.csv"), f"bc:csv:{broadcast_id}")]
    ]
    if broadcast.confirm_required:
        text += "\n" + broadcasts.confirmed_line(lang, s)
        rows.append([(t(lang, "broadcast.button.who"), f"bc:who:{broadcast_id}")])
        if s.confirmed < s.sent and broadcast.status in (
            BroadcastStatus.DONE,
            BroadcastStatus.SENDING,
        ):
            rows.append([(t(lang, "broadcast.button.resend"), f"bc:rs:{broadcast_id}")])
    if broadcast.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
        rows.append([(t(lang, "broadcast.button.cancel"), f"bc:x:{broadcast_id}")])
    return text, buttons(rows)


@guarded(Action.BROADCAST)
async def on_admin_button(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = admin.language
    press = pressed(update)
    action, broadcast_id = press.step, press.number(2)
    if broadcast_id is None:
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    d = context.deps
    if action == "v":
        detail = await _detail(context, lang, broadcast_id)
        if detail is None:
            await answer(query, t(lang, "form.stale"), alert=True)
            return
        await answer(query)
        await reply(update, detail[0], reply_markup=detail[1])
        return
    if action == "csv":
        if await d.db.run(broadcasts.get, broadcast_id) is None:
            await answer(query, t(lang, "form.stale"), alert=True)
            return
        await answer(query)
        data = await d.db.run(broadcasts.csv_export, admin, broadcast_id, d.settings.zone)
        message = update.effective_message
        assert message is not None
        await message.chat.send_document(
            InputFile(data, filename=f"broadcast-{broadcast_id}.csv"),
            caption=t(lang, "broadcast.csv.caption", id=broadcast_id),
        )
        return
    if action == "who":
        rows = await d.db.run(broadcasts.recipients, broadcast_id)
        await answer(query)
        confirmed = [r for r in rows if r.confirmed_at is not None]
        waiting = [r for r in rows if r.confirmed_at is None and r.status == "sent"]

        def names(items: list[Any]) -> str:
            listed = ", ".join(r.name or str(r.telegram_id) for r in items[:WHO_LIMIT])
            more = len(items) - WHO_LIMIT
            return listed + (t(lang, "broadcast.who.more", count=more) if more > 0 else "") or "-"

        await reply(
            update,
            t(
                lang,
                "broadcast.who",
                id=broadcast_id,
                confirmed=len(confirmed),
                waiting=len(waiting),
                confirmed_names=names(confirmed),
                waiting_names=names(waiting),
            ),
        )
        return
    if action == "rs":
        count = await d.db.run(broadcasts.resend_unconfirmed, admin, broadcast_id)
        await answer(query, t(lang, "broadcast.resent", count=count), alert=True)
        return
    if action == "x":
        await answer(query)
        await reply(
            update,
            t(lang, "broadcast.cancel.sure", id=broadcast_id),
            reply_markup=buttons(
                [
                    [
                        (t(lang, "broadcast.cancel.yes"), f"bc:xx:{broadcast_id}"),
                        (t(lang, "broadcast.cancel.no"), f"bc:v:{broadcast_id}"),
                    ]
                ]
            ),
        )
        return
    if action == "xx":
        cancelled = await d.db.run(broadcasts.cancel, admin, broadcast_id)
        if cancelled is None:
            await answer(query, t(lang, "broadcast.cancel.too_late"), alert=True)
            return
        context.timers.cancel_broadcast(broadcast_id)
        if d.delivery is not None:
            d.delivery.forget(broadcasts.source_of(broadcast_id))
        await answer(query)
        await edit_or_reply(update, t(lang, "broadcast.cancel.done", id=broadcast_id))
        return
    await answer(query, t(lang, "form.stale"), alert=True)


@guarded(Action.CONFIRM_NOTICE)
async def on_received(update: Update, context: Context, person: Person) -> None:
    """A recipient pressed "Received ✓" (only the notice's recipients count)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    user = update.effective_user
    lang = person.language
    broadcast_id = pressed(update).number(2)  # bc:ok:<broadcast>
    if user is None or broadcast_id is None:
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    result = await context.db.run(broadcasts.confirm, broadcast_id, user.id)
    if result == "unknown":
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    await answer(query, t(lang, "broadcast.thanks"))
    # too old to edit: the confirmation counts all the same
    await set_keyboard(update, buttons([[(t(lang, "broadcast.received_done"), "bc:done")]]))


@guarded(Action.CONFIRM_NOTICE)
async def on_received_done(update: Update, context: Context, person: Person) -> None:
    await answer(update.callback_query, t(person.language, "broadcast.thanks"))


# ------------------------------------------------------------------ reachability


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Someone blocked (or unblocked) the bot in their private chat: they cannot be reached
    (or can again). The admins are told once, as when a send fails with 403."""
    member: ChatMemberUpdated | None = update.my_chat_member
    if member is None or member.chat.type != "private":
        return
    status = member.new_chat_member.status
    db = context.db
    if status in ("kicked", "left"):
        await db.run(mark_unreachable, member.chat.id, OutcomeCode.BLOCKED)
    elif status == "member":
        await db.run(mark_reachable, member.chat.id)


def reachability_handler() -> BaseHandler[Any, Any, Any]:
    return ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)


# ------------------------------------------------------------------------ assembly


def build_conversation(form_timeout: int) -> ConversationHandler[Any]:
    step: list[BaseHandler[Any, Any, Any]] = [
        CallbackQueryHandler(on_button, pattern=r"^bw:"),
        MessageHandler(filters.TEXT & ~filters.COMMAND, on_when_text),
        MessageHandler((filters.PHOTO | filters.Document.ALL) & ~filters.COMMAND, on_content),
    ]
    return form_conversation(
        NAME,
        entry_points=[CommandHandler("broadcast", start)],
        states={state: step for state in STATES},
        fallbacks=[CommandHandler("cancel", cancel), CommandHandler("broadcast", start)],
        timeout=form_timeout,
        on_timeout=on_timeout,
    )


def build(form_timeout: int) -> list[BaseHandler[Any, Any, Any]]:
    return [
        build_conversation(form_timeout),
        CommandHandler("broadcasts", list_command),
        CallbackQueryHandler(on_received, pattern=r"^bc:ok:"),
        CallbackQueryHandler(on_received_done, pattern=r"^bc:done$"),
        CallbackQueryHandler(on_admin_button, pattern=r"^bc:(v|csv|who|rs|x|xx):"),
    ]
