"""The emergency channel on Telegram: SOS, acknowledgement, escalation, alerts, contacts.

build_emergency() runs in group -10, before any form, and stops further processing of
what it handles: /sos and the 🆘 button, locations (a moving live location arrives as an
edited message), every ``sos:`` button, and typed answers the channel asked for (the
cadre's description, a resolution note, a directory field). build() adds /alerts, /alert,
/ack, /resolve, and the roster (handlers/roster.py) and directory (handlers/directory.py)
commands; /contacts is handlers/contacts.py. Escalation and coverage checks are timers
(scheduler/sos.py).

Callback data (all well under 64 bytes):
    sos:ack:<id> / sos:res:<id> / sos:tl:<id>   acknowledge, resolve, timeline
    sos:tlcsv:<id>                              the full timeline as CSV
    sos:out:<id>:<outcome> / sos:back:<id>      resolve with an outcome / back
    sos:nskip:<id>                              no resolution note
    sos:cat:<id>:<category> / sos:skip:<id>     the cadre says what is wrong / skips
    sos:cxl:<id> / sos:cxly:<id> / sos:cxln:<id> cancel a false alarm: ask, yes, no
    sos:csv                                     CSV of the alerts (admins)
    kin:new / kin:rm:<link>                     contact invitations
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    InlineKeyboardMarkup,
    InputFile,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from handlers import directory as directory_handlers
from handlers import menus
from handlers import roster as roster_handlers
from handlers.callbacks import button_id, pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    current_caller,
    edit_or_reply,
    guarded,
    language_of,
    markup_of,
    refuse,
    reply,
    set_keyboard,
)
from handlers.paging import page_buttons
from handlers.sos_common import (
    forged,
    pending,
    pending_all,
    policy,
    reload_wait,
    set_pending,
)
from models import AlertStatus, Person, Status
from services import clock, directory, people
from services import sos as sos_calls
from services.alerts import cards, raising, respond, timeline
from services.alerts import messages as alert_messages
from services.alerts import policy as alerts_policy
from services.db import database_unavailable
from services.i18n import Html, t
from services.log_context import about_alert
from services.people import name_of
from services.permissions import Action, Denial, check, sos_verified

log = logging.getLogger(__name__)


def _stopping(fn: Callable[[Update, Context], Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """Run a group -10 handler, then stop: no later handler sees the update (a stale-button
    fallback would answer the query a second time)."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: Context) -> None:
        await fn(update, context)
        raise ApplicationHandlerStop

    return wrapper


def keyboard(lang: str, person: Person | None, location: bool) -> ReplyKeyboardMarkup:
    """The caller's keyboard: share-location first while an alert of theirs is open; SOS
    always at hand, and the check-in for active members."""
    active = person is not None and person.status == Status.ACTIVE
    return menus.main_keyboard(lang, location, checkin=active)


def _caller_of(update: Update, context: Context, person: Person | None) -> sos_calls.Caller:
    user = update.effective_user
    assert user is not None
    form = (context.user_data or {}).get("form") or {}
    draft = people.Draft.from_dict(form.get("draft")) if person is None else None
    return sos_calls.Caller(
        user.id, user.full_name, user.username, language_of(update, context, person), draft
    )


# ---------------------------------------------------------------------------- SOS


def cadre_keyboard(person: Person) -> dict[str, Any]:
    """The reply keyboard of someone who called for help, as queued with what they read."""
    return keyboard(person.language, person, location=True).to_dict()


async def on_sos(update: Update, context: Context) -> None:
    """/sos or 🆘: the tap itself raises the alert (stored, and the officers' messages
    queued at emergency priority, in one transaction); only then is the cadre answered and
    asked, through the outbox too, so that a crash or a failing network loses nothing."""
    fetched = time.monotonic()
    person = None
    try:
        # Anyone who can write to the bot can call for help: a guest, a pending, suspended
        # or rejected person raises an alert too, marked unverified (services.alerts).
        person = await current_caller(update, context)
        caller = _caller_of(update, context, person)
        db = context.db
        alert_id, new, person_id = await db.run(
            sos_calls.raise_sos, caller, policy(context), update.update_id
        )
        about_alert(alert_id)
        stored = time.monotonic()
        zone = context.settings.zone
        waiting = await db.run(
            sos_calls.tell_cadre, person_id, alert_id, new, update.update_id, zone, cadre_keyboard
        )
        (await pending_all(context))[caller.telegram_id] = waiting
    except Exception as exc:
        if database_unavailable(exc):
            # The database is down: the update is kept and handled again once it is back
            # (bot/outage.py), which stores the alert and alerts the officers then. The
            # cadre is told at once, with the numbers to call meanwhile.
            await _sos_delayed(update, context, person)
            raise
        log.exception("SOS could not be handled: telling the person to call 120")
        await _sos_failed(update, context, person)
        raise ApplicationHandlerStop from None
    log.info(
        "SOS alert %s (%s%s) for person %s stored and queued in %.0f ms",
        alert_id,
        "new" if new else "in progress",
        "" if sos_verified(person) else ", unverified",
        person_id,
        (stored - fetched) * 1000,
    )
    raise ApplicationHandlerStop


async def _sos_failed(update: Update, context: Context, person: Person | None) -> None:
    """The alert could not be stored (the database is down, say): never silence. The
    numbers come from the data file, which needs no database."""
    lang = language_of(update, context, person)
    prefecture = person.prefecture if person else None
    numbers = directory.render_seed(prefecture, lang)
    try:
        await reply(update, t(lang, "sos.failed", numbers=Html(numbers)))
    except Exception:
        log.exception("could not tell the person either")


async def _sos_delayed(update: Update, context: Context, person: Person | None) -> None:
    """At the SOS's first attempt only (its retries stay quiet)."""
    guard = context.application.bot_data.get("outage")
    if guard is not None:
        if guard.retrying(update):
            return
        guard.should_tell(update)  # no "your message is kept" on top of this
    lang = language_of(update, context, person)
    numbers = directory.render_seed(person.prefecture if person else None, lang)
    try:
        await reply(update, t(lang, "sos.delayed", numbers=Html(numbers)))
    except Exception:
        log.exception("could not tell the person their SOS is delayed")


async def on_location(update: Update, context: Context) -> None:
    """A location (or a live location moving: an edited message) while an alert is open."""
    message = update.effective_message
    if message is None or message.location is None:
        return
    edited = update.edited_message is not None
    person = await current_caller(update, context)
    db = context.db
    alert = await db.run(raising.open_alert_of, person.id) if person and person.id else None
    if person is None or alert is None:
        if not edited:
            lang = language_of(update, context, person)
            await reply(update, t(lang, "sos.location.no_alert"))
        raise ApplicationHandlerStop
    location = message.location
    live = edited or bool(location.to_dict().get("live_period"))
    result = await db.run(
        raising.update_location,
        alert_id=alert.id,
        person_id=person.id,
        latitude=location.latitude,
        longitude=location.longitude,
        live=live,
        policy=policy(context),
    )
    if not edited:
        lang = person.language
        key = "sos.location.thanks" if result == raising.Change.DONE else "sos.location.invalid"
        # 📍 stays on the keyboard until the alert is closed: they may move on
        await reply(update, t(lang, key), reply_markup=keyboard(lang, person, location=True))
    raise ApplicationHandlerStop


async def on_text(update: Update, context: Context) -> None:
    """Typed text the emergency channel asked for; anything else goes on to other handlers."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None or message.text is None:
        return
    if user.id not in await pending_all(context):
        return
    waiting = await pending(context, user.id)
    if waiting is None:
        return
    if message.text in menus.main_button_texts("main.checkin"):
        await set_pending(context, user.id, None)  # they moved on to the check-in
        return
    person = await current_caller(update, context)
    what = waiting.get("what")
    # the caller's own alert (whatever their status); an officer's typed answers need an
    # active member
    own = what in ("details", "after")
    if person is None or (not own and person.status != Status.ACTIVE):
        await set_pending(context, user.id, None)
        return
    if what == "details":
        await _receive_details(update, context, person, waiting, message.text)
    elif what == "after":
        await _follow_up(update, context, person, int(waiting.get("alert", 0)), message.text)
    elif what == "note":
        await _receive_note(update, context, person, waiting, message.text)
    elif what in ("dir", "diradd"):
        await directory_handlers.receive_text(update, context, person, waiting, message.text)
    raise ApplicationHandlerStop


async def on_command(update: Update, context: Context) -> None:
    """A command while the emergency channel waits for a typed answer: /cancel stops
    waiting (and is answered here); any other command means the person moved on, so the
    wait ends and the command goes to its own handler."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None or user.id not in await pending_all(context):
        return
    waiting = await pending(context, user.id)
    if waiting is None:
        return
    await set_pending(context, user.id, None)
    command = (message.text or "").split()[0].split("@")[0].lower()
    if command != "/cancel":
        return
    person = await current_caller(update, context)
    lang = language_of(update, context, person)
    if waiting.get("what") == "details" and await still_open(update, context):
        raise ApplicationHandlerStop
    active = person is not None and person.status == Status.ACTIVE
    markup = menus.main_keyboard(lang) if active else None
    await reply(update, t(lang, "sos.input_cancelled"), reply_markup=markup)
    raise ApplicationHandlerStop


async def still_open(update: Update, context: Context) -> bool:
    """/cancel while an alert of theirs is open (during its questions, or with no question
    or form left to cancel) stops the questions, never the call for help: say that it is
    still open, never "cancelled" or "nothing to cancel", and offer the false-alarm button
    to those who mean to cancel the alert itself. False when no alert of theirs is open."""
    person = await current_caller(update, context)
    if person is None or person.id is None:
        return False
    alert = await context.db.run(raising.open_alert_of, person.id)
    if alert is None:
        return False
    lang = language_of(update, context, person)
    text = t(lang, "sos.questions_stopped", id=alert.id)
    await reply(update, text, reply_markup=_cancel_markup(lang, alert))
    return True


async def on_other_button(update: Update, context: Context) -> None:
    """A button of another feature: the person moved on, stop waiting for typed text (so
    that, say, a number typed in the check-in is not taken for the SOS description)."""
    user = update.effective_user
    if user is not None and user.id in await pending_all(context):
        await set_pending(context, user.id, None)


async def _receive_details(
    update: Update, context: Context, person: Person, pending: dict[str, Any], text: str
) -> None:
    lang = person.language
    alert_id = int(pending.get("alert", 0))
    about_alert(alert_id)
    result = await context.db.run(
        raising.set_details,
        alert_id=alert_id,
        person_id=person.id or 0,
        details=text,
        policy=policy(context),
    )
    if result == raising.Change.NOT_FOUND:  # closed meanwhile: passed on, never dropped
        await _follow_up(update, context, person, alert_id, text)
        return
    if result == raising.Change.INVALID:
        await reply(update, t(lang, "sos.details_empty"))
        return
    markup = keyboard(lang, person, location=True)  # 📍 until the alert is closed
    await reply(update, t(lang, "sos.details_thanks"), reply_markup=markup)


async def _follow_up(
    update: Update, context: Context, person: Person, alert_id: int, text: str
) -> None:
    """What a cadre writes after their alert closed goes, for 24 hours, to whoever handled
    it; the cadre is told, and 🆘 is at hand for a new call."""
    lang = person.language
    db = context.db
    result = await db.run(
        respond.follow_up,
        alert_id=alert_id,
        person_id=person.id or 0,
        text=text,
        zone=context.settings.zone,
    )
    if not result.sent_to:
        await set_pending(context, person.telegram_id, None)
        markup = keyboard(lang, person, location=False)
        await reply(update, t(lang, "sos.closed_already"), reply_markup=markup)
        return
    # the wait the close started (since the close: 24 hours), also when the alert was
    # closed by a path that did not refresh this cache
    await reload_wait(context, person.telegram_id)
    names = ", ".join(name_of(p) for p in result.sent_to[:3])
    if len(result.sent_to) > 3:
        names += " …"
    await reply(
        update,
        t(lang, "sos.after.passed", id=alert_id, names=names),
        reply_markup=keyboard(lang, person, location=False),
    )


# ---------------------------------------------------------------------------- cadre buttons


async def on_cadre_button(update: Update, context: Context) -> None:
    """The caller's buttons under their own alert, whatever their status (a guest's and a
    suspended person's too): what is wrong, skip, cancel a false alarm."""
    press = pressed(update)
    query = press.query
    person = await current_caller(update, context)
    if person is None:  # nobody who ever called: no alert of theirs
        await refuse(update, context, None, Action.RAISE_SOS, Denial.UNREGISTERED)
        return
    lang = person.language
    alert_id = press.number(2)
    about_alert(alert_id)
    action = press.step
    if alert_id is None or action not in ("cat", "skip", "cxl", "cxly", "cxln"):
        await forged(update, context, person)
        return
    db = context.db
    alert = await db.run(alerts_policy.get, alert_id)
    if alert is None or alert.person_id != person.id:
        await db.run(respond.refuse, person, alert_id, press.data[:64], "not_own")
        await answer(query, t(lang, "sos.denied.not_own"), alert=True)
        return
    if action == "cat":
        category = press.word(3)
        result = await db.run(
            raising.set_category,
            alert_id=alert_id,
            person_id=person.id,
            category=category,
            policy=policy(context),
        )
        if result == raising.Change.INVALID:
            await forged(update, context, person)
            return
        if result == raising.Change.NOT_FOUND:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
            return
        await answer(query)
        chosen = t(lang, f"sos.category.{category}")
        await edit_or_reply(
            update, t(lang, "sos.category_chosen", what=chosen), _cancel_markup(lang, alert)
        )
        markup = buttons([[(t(lang, "sos.btn.skip"), f"sos:skip:{alert_id}")]])
        await reply(update, t(lang, "sos.ask_details"), reply_markup=markup)
        await set_pending(context, person.telegram_id, {"what": "details", "alert": alert_id})
    elif action == "skip":
        await answer(query)
        await set_pending(context, person.telegram_id, None)
        await edit_or_reply(update, t(lang, "sos.details_skipped"))
    elif action == "cxl":
        if alert.status not in alerts_policy.IN_PROGRESS:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
            return
        await answer(query)
        markup = buttons(
            [
                [(t(lang, "sos.btn.cancel_yes"), f"sos:cxly:{alert_id}")],
                [(t(lang, "sos.btn.cancel_no"), f"sos:cxln:{alert_id}")],
            ]
        )
        await reply(update, t(lang, "sos.cancel_confirm", id=alert_id), reply_markup=markup)
    elif action == "cxln":
        await answer(query)
        await edit_or_reply(update, t(lang, "sos.cancel_kept"))
    else:  # cxly
        result = await db.run(
            respond.cancel, alert_id=alert_id, actor=person, policy=policy(context)
        )
        if result.outcome != respond.Close.DONE:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
            return
        await answer(query)
        await reload_wait(context, person.telegram_id)  # what they write now is passed on
        await edit_or_reply(update, t(lang, "sos.cancel_done", id=alert_id))
        markup = keyboard(lang, person, location=False)
        await reply(update, t(lang, "sos.cancel_after"), reply_markup=markup)


def _cancel_markup(lang: str, alert: Any) -> InlineKeyboardMarkup:
    return buttons([[(t(lang, "sos.btn.cancel_alarm"), f"sos:cxl:{alert.id}")]])


# ---------------------------------------------------------------------------- responder buttons


@guarded(Action.HANDLE_ALERTS)
async def on_responder_button(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    query, lang, action = press.query, person.language, press.step
    if action == "csv":
        await _send_csv(update, context, person)
        return
    alert_id = press.number(2)
    about_alert(alert_id)
    known = ("ack", "res", "out", "back", "tl", "tlcsv", "nskip", "info")
    if alert_id is None or action not in known:
        await forged(update, context, person)
        return
    db = context.db
    alert = await db.run(alerts_policy.get, alert_id)
    refusal = await db.run(respond.handling_refusal, person, alert)
    if refusal is not None:
        await db.run(respond.refuse, person, alert_id, press.data[:64], str(refusal))
        await answer(query, t(lang, f"sos.denied.{refusal}"), alert=True)
        return
    assert alert is not None
    pressed_id = query.message.message_id if query.message else None
    zone = context.settings.zone
    if action == "ack":
        result = await db.run(
            respond.acknowledge,
            alert_id=alert_id,
            actor=person,
            pressed_message_id=pressed_id,
            policy=policy(context),
        )
        if result.outcome == respond.Ack.WON:
            await answer(query, t(lang, "sos.ack.won", id=alert_id))
            text = await db.run(_alert_text, alert_id, lang, zone)
            markup = buttons(cards.handler_rows(alert, lang))
            await edit_or_reply(update, text, markup)
        elif result.outcome == respond.Ack.TAKEN:
            name = name_of(result.by)
            await answer(query, t(lang, "sos.ack.taken", name=name), alert=True)
        else:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
    elif action == "res":
        if alert.status not in alerts_policy.IN_PROGRESS:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
            return
        await answer(query)
        # the card itself (a button in /alerts or under a timeline names no alert)
        text = await db.run(_alert_text, alert_id, lang, zone)
        await edit_or_reply(update, text, buttons(_outcome_rows(alert, lang)))
    elif action == "back":
        await answer(query)
        # the card's keyboard as it was queued (with the board's button when there is one)
        data = cards.buttons_for(alert, lang, policy(context))
        await set_keyboard(
            update, markup_of(data) if alert.status in alerts_policy.IN_PROGRESS else None
        )
    elif action == "out":
        outcome = press.word(3)
        result = await db.run(
            respond.resolve,
            alert_id=alert_id,
            actor=person,
            outcome=outcome,
            pressed_message_id=pressed_id,
            policy=policy(context),
        )
        if result.outcome == respond.Close.INVALID:
            await forged(update, context, person)
            return
        if result.outcome != respond.Close.DONE:
            await answer(query, t(lang, "sos.closed_already"), alert=True)
            return
        await answer(query, t(lang, "sos.resolved", id=alert_id))
        cadre = await db.run(people.get, alert.person_id) if alert.person_id else None
        if cadre is not None:  # what the cadre writes now is passed on to the resolver
            await reload_wait(context, cadre.telegram_id)
        await edit_or_reply(update, await db.run(_alert_text, alert_id, lang, zone))
        markup = buttons([[(t(lang, "sos.btn.no_note"), f"sos:nskip:{alert_id}")]])
        await reply(update, t(lang, "sos.ask_note", id=alert_id), reply_markup=markup)
        await set_pending(context, person.telegram_id, {"what": "note", "alert": alert_id})
    elif action == "nskip":
        await answer(query)
        await set_pending(context, person.telegram_id, None)
        await edit_or_reply(update, t(lang, "sos.note_skipped"))
    elif action == "info":  # what the card leaves out to stay one screen: a follow-up
        await answer(query)
        await db.run(alert_messages.send_details, alert_id, person, zone, query.id)
    elif action == "tlcsv":
        await answer(query)
        data = await db.run(timeline.timeline_csv, alert_id, lang, zone)
        message = update.effective_message
        assert message is not None and data is not None
        await message.chat.send_document(
            InputFile(data, filename=f"cadre-bot-alert-{alert_id}-timeline.csv"),
            caption=t(lang, "sos.tl.csv_caption", id=alert_id),
        )
    else:  # tl: the timeline, below the card; tl:<id>:<page>: another page of it, in place
        await answer(query)
        page = press.number(3)
        await _send_timeline(update, context, alert, lang, page)


async def _send_timeline(
    update: Update, context: Context, alert: Any, lang: str, page: int | None
) -> None:
    """The alert's timeline, a phone screen a page, with what still applies, the CSV and
    the row that turns the pages: a new message, or (`page`) the pressed one edited."""
    pages = await context.db.run(timeline.timeline_pages, alert.id, lang, context.settings.zone)
    if not pages:
        await reply(update, t(lang, "form.stale"))
        return
    number = min(page or 0, len(pages) - 1)
    markup = _view_markup(alert, lang, page=(number, len(pages)))
    if page is None:
        await reply(update, pages[number], reply_markup=markup)
    else:
        await edit_or_reply(update, pages[number], markup)


def _alert_text(session: Any, alert_id: int, lang: str, zone: Any) -> str:
    alert = alerts_policy.get(session, alert_id)
    assert alert is not None
    return cards.alert_text(session, alert, lang, zone=zone)


async def _receive_note(
    update: Update, context: Context, person: Person, pending: dict[str, Any], text: str
) -> None:
    lang = person.language
    result = await context.db.run(
        respond.add_note, alert_id=int(pending.get("alert", 0)), actor=person, note=text
    )
    if result == raising.Change.INVALID:
        await reply(update, t(lang, "sos.details_empty"))
        return
    await set_pending(context, person.telegram_id, None)
    await reply(update, t(lang, "sos.note_saved"))


# ---------------------------------------------------------------------------- /alerts, /alert


@guarded(Action.HANDLE_ALERTS)
async def alerts_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    zone = context.settings.zone
    text, rows = await context.db.run(_alerts_list, person, lang, zone)
    if check(person, Action.MANAGE_PEOPLE) is None:
        rows.append([(t(lang, "sos.btn.csv"), "sos:csv")])
    await reply(update, text, reply_markup=buttons(rows) if rows else None)


def _alerts_list(
    session: Any, person: Person, lang: str, zone: Any
) -> tuple[str, list[list[tuple[str, str]]]]:
    found = timeline.visible_alerts(session, person)
    if not found:
        return t(lang, "sos.list.empty", count=alerts_policy.RECENT_DAYS), []
    lines = [t(lang, "sos.list.header", count=alerts_policy.RECENT_DAYS)]
    lines += cards.list_lines(session, found, lang, zone)
    shown = found[:10]
    # each alert in progress gets its own row: take it, close it, or read it
    rows = [_list_row(a, lang) for a in shown if a.status in alerts_policy.IN_PROGRESS]
    closed = [a for a in shown if a.status not in alerts_policy.IN_PROGRESS]
    rows += [
        [(f"#{a.id} {t(lang, 'sos.btn.timeline')}", f"sos:tl:{a.id}") for a in closed[i : i + 2]]
        for i in range(0, len(closed), 2)
    ]
    return "\n".join(lines), rows


def _list_row(alert: Any, lang: str) -> list[tuple[str, str]]:
    row = []
    if alert.status == AlertStatus.OPEN:
        row.append((t(lang, "sos.btn.ack_n", id=alert.id), f"sos:ack:{alert.id}"))
    row.append((t(lang, "sos.btn.resolve_n", id=alert.id), f"sos:res:{alert.id}"))
    row.append((t(lang, "sos.btn.timeline_n", id=alert.id), f"sos:tl:{alert.id}"))
    return row


def _view_markup(
    alert: Any, lang: str, *, card: bool = False, page: tuple[int, int] = (0, 1)
) -> InlineKeyboardMarkup:
    """Under a timeline: what still applies, the full CSV, and the row that turns its
    `page` (number, pages); under /alert <id>'s card (`card`): what still applies, and
    «ℹ️ Details»."""
    rows: list[list[tuple[str, str]]] = []
    if alert.status == AlertStatus.OPEN:
        rows.append(
            [
                (t(lang, "sos.btn.ack"), f"sos:ack:{alert.id}"),
                (t(lang, "sos.btn.resolve"), f"sos:res:{alert.id}"),
            ]
        )
    elif alert.status == AlertStatus.ACKNOWLEDGED:
        rows.append([(t(lang, "sos.btn.resolve"), f"sos:res:{alert.id}")])
    if card:
        rows.append([(t(lang, "sos.btn.details"), f"sos:info:{alert.id}")])
    else:
        rows.append([(t(lang, "sos.btn.timeline_csv"), f"sos:tlcsv:{alert.id}")])
        turn = page_buttons(lang, *page, lambda number: f"sos:tl:{alert.id}:{number}")
        rows += [turn] if turn else []
    return buttons(rows)


@guarded(Action.HANDLE_ALERTS)
async def alert_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    db = context.db
    raw = (context.args or [""])[0].lstrip("#")
    alert_id = button_id(raw)
    if alert_id is None:
        await reply(update, t(lang, "sos.alert_usage"))
        return
    alert = await db.run(alerts_policy.get, alert_id)
    refusal = await db.run(respond.handling_refusal, person, alert)
    if refusal is not None:
        await db.run(respond.refuse, person, alert_id, f"/alert {alert_id}", str(refusal))
        # the same answer whether it does not exist or is not theirs: nothing leaks
        await reply(update, t(lang, "sos.alert_not_found", id=alert_id))
        return
    assert alert is not None
    # one screen a message: the card to act on, then its timeline
    card = await db.run(_alert_text, alert_id, lang, context.settings.zone)
    await reply(update, card, reply_markup=_view_markup(alert, lang, card=True))
    await _send_timeline(update, context, alert, lang, None)


async def _alert_by_command(
    update: Update, context: Context, person: Person, command: str
) -> Any | None:
    """The alert named by `/<command> <id>`, after the same checks as its buttons; None
    (answered) when there is none the person may act on."""
    lang = person.language
    db = context.db
    words = context.args or []
    alert_id = button_id(words[0].lstrip("#")) if len(words) == 1 else None
    if alert_id is None:
        await reply(update, t(lang, f"sos.{command}_usage"))
        return None
    about_alert(alert_id)
    alert = await db.run(alerts_policy.get, alert_id)
    refusal = await db.run(respond.handling_refusal, person, alert)
    if refusal is not None:
        await db.run(respond.refuse, person, alert_id, f"/{command} {alert_id}", str(refusal))
        await reply(update, t(lang, "sos.alert_not_found", id=alert_id))
        return None
    return alert


@guarded(Action.HANDLE_ALERTS)
async def ack_command(update: Update, context: Context, person: Person) -> None:
    """/ack <id>: take an alert without its card (the first acknowledgement wins)."""
    alert = await _alert_by_command(update, context, person, "ack")
    if alert is not None:
        await acknowledge_and_reply(update, context, person, alert)


async def acknowledge_and_reply(
    update: Update, context: Context, person: Person, alert: Any
) -> None:
    """Acknowledge for `person` (already allowed) and answer with a new message: the card
    with Resolve, who took it first, or that it is closed. /ack and the link in WeCom,
    DingTalk and SMS texts."""
    lang = person.language
    db = context.db
    result = await db.run(
        respond.acknowledge, alert_id=alert.id, actor=person, policy=policy(context)
    )
    if result.outcome == respond.Ack.WON:
        text = await db.run(_alert_text, alert.id, lang, context.settings.zone)
        head = t(lang, "sos.ack.won", id=alert.id)
        markup = buttons(cards.handler_rows(alert, lang))
        await reply(update, head + "\n\n" + text, reply_markup=markup)
    elif result.outcome == respond.Ack.TAKEN:
        await reply(update, t(lang, "sos.ack.taken", name=name_of(result.by)))
    else:
        await reply(update, t(lang, "sos.closed_already"))


@guarded(Action.HANDLE_ALERTS)
async def resolve_command(update: Update, context: Context, person: Person) -> None:
    """/resolve <id>: the alert with its outcome buttons (then the note, as from a card)."""
    alert = await _alert_by_command(update, context, person, "resolve")
    if alert is None:
        return
    lang = person.language
    if alert.status not in alerts_policy.IN_PROGRESS:
        await reply(update, t(lang, "sos.closed_already"))
        return
    text = await context.db.run(_alert_text, alert.id, lang, context.settings.zone)
    head = t(lang, "sos.resolve.choose", id=alert.id)
    await reply(update, head + "\n\n" + text, reply_markup=buttons(_outcome_rows(alert, lang)))


def _outcome_rows(alert: Any, lang: str) -> list[list[tuple[str, str]]]:
    rows = [
        [(t(lang, f"sos.outcome.{o}"), f"sos:out:{alert.id}:{o}")] for o in alerts_policy.OUTCOMES
    ]
    rows.append([(t(lang, "sos.btn.back"), f"sos:back:{alert.id}")])
    return rows


async def _send_csv(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    lang = person.language
    if check(person, Action.MANAGE_PEOPLE) is not None:
        await refuse(update, context, person, Action.MANAGE_PEOPLE, Denial.ROLE)
        return
    await answer(query)
    data = await context.db.run(timeline.export_csv, person)
    message = update.effective_message
    assert message is not None
    stamp = clock.now().astimezone(context.settings.zone).strftime("%Y%m%d-%H%M")
    await message.chat.send_document(
        InputFile(data, filename=f"cadre-bot-alerts-{stamp}.csv"),
        caption=t(lang, "sos.csv_caption"),
    )


# ---------------------------------------------------------------------------- assembly


def build_emergency() -> list[BaseHandler]:
    """Handlers that run before any form (group -10) and stop further processing."""
    sos_texts = sorted(menus.main_button_texts("main.sos"))
    return [
        CommandHandler("sos", on_sos),
        MessageHandler(filters.Text(sos_texts) & filters.UpdateType.MESSAGE, on_sos),
        MessageHandler(filters.LOCATION, on_location),
        CallbackQueryHandler(_stopping(on_cadre_button), pattern=r"^sos:(cat|skip|cxl|cxly|cxln):"),
        CallbackQueryHandler(_stopping(on_responder_button), pattern=r"^sos:"),
        CallbackQueryHandler(on_other_button),
        MessageHandler(filters.COMMAND & filters.UpdateType.MESSAGE, on_command),
        MessageHandler(filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE, on_text),
    ]


def build() -> list[BaseHandler]:
    return [
        CommandHandler("alerts", alerts_command),
        CommandHandler("alert", alert_command),
        CommandHandler("ack", ack_command),
        CommandHandler("resolve", resolve_command),
        *roster_handlers.build(),
        *directory_handlers.build(),
    ]
