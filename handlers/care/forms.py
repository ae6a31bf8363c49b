"""The care form (done, booked, an admin's date) and the oxygen request form: one persistent
conversation (`care_form`), its steps, and the timers replanned after a change."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from telegram import Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers import menus
from handlers import oxygen as oxygen_lists
from handlers.callbacks import pressed
from handlers.care.common import care_config, care_error, forged, oxygen_config
from handlers.care.schedule import schedule_card
from handlers.common import (
    Context,
    answer,
    buttons,
    current_person,
    drop_keyboard,
    guarded,
    language_of,
    refuse,
    reply,
    show_answer,
)
from handlers.conversation import FormDraft, form_conversation, once_per_update, persist_now
from models import CareKind, OxygenUrgency, OxygenWhat, Person, Status
from services import examples, oxygen, people
from services.care import records, rules
from services.care import texts as care_texts
from services.care.rules import CareError
from services.i18n import t
from services.permissions import Action, check, status_denial
from services.postings import load_postings
from services.validation import InvalidInput, parse_date, parse_int

Callback = Callable[[Update, Context], Awaitable[Any]]

NAME = "care_form"
_FORM = "care_form"  # user_data key
FORM = FormDraft(_FORM, alive="flow")
DATE, PLACE, RESULT = "date", "place", "result"
OX_WHAT, OX_PLACE, OX_URGENCY, OX_CONFIRM = "ox_what", "ox_place", "ox_urgency", "ox_confirm"
STATES = (DATE, PLACE, RESULT, OX_WHAT, OX_PLACE, OX_URGENCY, OX_CONFIRM)
_FLOW_ACTION = {
    "done": Action.OWN_DATA,
    "book": Action.OWN_DATA,
    "set": Action.MANAGE_SCHEDULES,
    "oxygen": Action.REQUEST_OXYGEN,
}
BOOK_CHOICES = (3, 7, 14, 30)
SET_CHOICES = (0, 7, 14, 30, 60)


# ---------------------------------------------------------------------------- the care form


def _form(context: Context) -> dict[str, Any]:
    return FORM.of(context)


def in_form(fn: Callable[[Update, Context, Person], Awaitable[Any]]) -> Callback:
    """Form steps: the form must be alive and the person still allowed to fill it."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: Context) -> Any:
        if FORM.expired(context):
            await answer(update.callback_query)
            return await on_timeout(update, context)
        person = await current_person(update, context)
        action = _FLOW_ACTION.get(_form(context).get("flow", ""), Action.OWN_DATA)
        denial = check(person, action)
        if denial is None and person is not None:
            denial = status_denial(person)
        if denial is not None:
            FORM.clear(context)
            await refuse(update, context, person, action, denial)
            return ConversationHandler.END
        assert person is not None
        return await fn(update, context, person)

    return wrapper


async def ask(update: Update, context: Context, field: str) -> str:
    """Show the question for `field` and return it as the conversation state."""
    form = _form(context)
    lang = form.get("lang") or language_of(update, context)
    flow = form.get("flow")
    rows: list[list[tuple[str, str]]] = []
    values: dict[str, Any] = {}
    if field == DATE:
        values = examples.values(context.settings.zone)
        if flow == "done":
            key = f"care.ask.done_date.{form['kind']}"
            rows = [
                [
                    (t(lang, "care.btn.today"), "cf:date:0"),
                    (t(lang, "care.btn.yesterday"), "cf:date:-1"),
                ]
            ]
        elif flow == "book":
            key = "care.ask.book_date"
            rows = [
                [(t(lang, "care.btn.in_days", count=d), f"cf:date:{d}") for d in BOOK_CHOICES[:2]],
                [(t(lang, "care.btn.in_days", count=d), f"cf:date:{d}") for d in BOOK_CHOICES[2:]],
            ]
        else:
            key = "care.ask.set_date"
            values.update(
                name=form.get("name", ""),
                item=care_texts.item_name(lang, CareKind(form["kind"])),
                current=form.get("current_due") or "-",
            )
            rows = [
                [
                    (
                        t(lang, "care.btn.in_days", count=d) if d else t(lang, "care.btn.today"),
                        f"cf:date:{d}",
                    )
                    for d in SET_CHOICES[i : i + 3]
                ]
                for i in range(0, len(SET_CHOICES), 3)
            ]
    elif field == PLACE:
        key = "care.ask.place"
        rows = [[(t(lang, "care.btn.skip"), "cf:skip")]]
    elif field == RESULT:
        key = "care.ask.result"
        rows = [[(t(lang, "care.btn.skip"), "cf:skip")]]
    elif field == OX_WHAT:
        key = "care.ox.ask.what"
        rows = [[(oxygen.what_text(lang, w), f"cf:ox:w:{w}")] for w in OxygenWhat]
    elif field == OX_PLACE:
        key = "care.ox.ask.place"
        county = form.get("county_name")
        if county:
            rows.append([(t(lang, "care.ox.place.posting", county=county), "cf:ox:p:posting")])
        rows.append(
            [
                (t(lang, "care.ox.place.office"), "cf:ox:p:office"),
                (t(lang, "care.ox.place.dorm"), "cf:ox:p:dorm"),
            ]
        )
    elif field == OX_URGENCY:
        key = "care.ox.ask.urgency"
        rows = [[(oxygen.urgency_text(lang, u), f"cf:ox:u:{u}")] for u in OxygenUrgency]
    else:  # OX_CONFIRM
        key = "care.ox.ask.confirm"
        draft = form.get("draft", {})
        values = {
            "what": oxygen.what_text(lang, draft.get("what", "")),
            "place": oxygen.place_text(lang, draft.get("place", ""), form.get("county_name")),
            "urgency": oxygen.urgency_text(lang, draft.get("urgency", "")),
        }
        rows = [[(t(lang, "care.ox.btn.send"), "cf:ox:ok"), (t(lang, "care.btn.cancel"), "cf:x")]]
    if field != OX_CONFIRM:
        rows.append([(t(lang, "care.btn.cancel"), "cf:x")])
    form["current"] = field
    FORM.touch(context)
    await persist_now(update, context, NAME, field)
    await reply(update, t(lang, key, **values), reply_markup=buttons(rows))
    return field


def _begin(context: Context, person: Person, flow: str, **fields: Any) -> None:
    FORM.clear(context)
    form = _form(context)
    form.update({"flow": flow, "lang": person.language, "draft": {}, **fields})
    FORM.touch(context)


@guarded(Action.OWN_DATA)
async def start_item_form(update: Update, context: Context, person: Person) -> str | int:
    """cs:d (Done) and cs:b (Booked for...) on a reminder or on /schedule."""
    press = pressed(update)
    item_id = press.number(2) if len(press.parts) == 4 else None
    due = care_texts.parse_compact(press.word(3)) if len(press.parts) == 4 else None
    if item_id is None or due is None or press.step not in {"d", "b"}:
        await forged(update, context, person, Action.OWN_DATA)
        return ConversationHandler.END
    denial = status_denial(person)
    if denial is not None:
        await refuse(update, context, person, Action.OWN_DATA, denial)
        return ConversationHandler.END
    assert person.id is not None
    try:
        kind = await context.db.run(
            records.check_action, person.id, item_id, due, care_config(context)
        )
    except CareError as error:
        await care_error(update, context, person, error)
        return ConversationHandler.END
    await answer(update.callback_query)
    flow = "done" if press.step == "d" else "book"
    _begin(context, person, flow, item_id=item_id, kind=str(kind))
    return await ask(update, context, DATE)


@guarded(Action.MANAGE_SCHEDULES)
async def start_set_form(update: Update, context: Context, admin: Person) -> str | int:
    """cs:as:<person>:<kind>: an admin sets or moves one person's date."""
    press = pressed(update)
    person_id = press.number(2) if len(press.parts) == 4 else None
    if person_id is None or press.word(3) not in set(CareKind):
        await forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return ConversationHandler.END
    cfg = care_config(context)
    try:
        schedule = await context.db.run(records.schedule_for, person_id, cfg)
    except CareError as error:
        await care_error(update, context, admin, error)
        return ConversationHandler.END
    if schedule.state != "ok":
        await answer(update.callback_query, t(admin.language, "care.set.no_schedule"), True)
        return ConversationHandler.END
    await answer(update.callback_query)
    kind = CareKind(press.word(3))
    current = schedule.items.get(kind)
    _begin(
        context,
        admin,
        "set",
        person_id=person_id,
        kind=str(kind),
        name=schedule.person.name,
        current_due=current.due.isoformat() if current else None,
    )
    return await ask(update, context, DATE)


@guarded(Action.REQUEST_OXYGEN)
async def oxygen_command(update: Update, context: Context, person: Person) -> str | int:
    """/oxygen: one's requests and their status (and, for duty officers, the open requests
    of their area), each list a page at a time (handlers/oxygen.py); a new request starts
    the form at once when there is nothing to show."""
    assert person.id is not None
    db = context.db
    own = await db.run(oxygen.count_of, person.id)
    area = 0
    if check(person, Action.HANDLE_OXYGEN) is None:
        area = await db.run(oxygen.count_in_area, await oxygen_lists.area_of(context, person))
    if not own and not area:
        return await _start_oxygen(update, context, person)
    if own:  # a page of one's requests, with a button for a new one
        text, markup = await oxygen_lists.mine_view(context, person, 0)
        await reply(update, text, reply_markup=markup)
    if area:  # and, in a message of its own, the area's open requests, the most urgent first
        text, markup = await oxygen_lists.area_view(context, person, 0, new_button=not own)
        await reply(update, text, reply_markup=markup)
    return ConversationHandler.END


@guarded(Action.REQUEST_OXYGEN)
async def oxygen_new(update: Update, context: Context, person: Person) -> str | int:
    await answer(update.callback_query)
    return await _start_oxygen(update, context, person)


async def _start_oxygen(update: Update, context: Context, person: Person) -> str | int:
    postings = load_postings()
    county = (
        postings.name(person.county, person.language)
        if person.county and postings.county(person.county)
        else None
    )
    _begin(context, person, "oxygen", county_name=county)
    return await ask(update, context, OX_WHAT)


@once_per_update(_FORM, "current")
@in_form
async def on_form_text(update: Update, context: Context, person: Person) -> str | int:
    form = _form(context)
    field = form.get("current", "")
    message = update.effective_message
    assert message is not None
    text = message.text or ""
    lang = person.language
    try:
        if field == DATE:
            return await _take_date(update, context, person, parse_date(text))
        if field == PLACE:
            form["draft"]["place"] = records.clean_line(text, rules.PLACE_MAX)
            return await ask(update, context, RESULT)
        if field == RESULT:
            form["draft"]["result"] = records.clean_line(text, rules.RESULT_MAX)
            return await _save(update, context, person)
        if field == OX_PLACE:
            form["draft"]["place"] = records.clean_line(text, oxygen.PLACE_MAX)
            return await ask(update, context, OX_URGENCY)
    except InvalidInput as error:  # invalid.date suggests a date
        suggested = examples.values(context.settings.zone)
        await reply(update, t(lang, error.key, **suggested, **error.values))
        return await ask(update, context, field)
    except CareError as error:
        await reply(update, t(lang, error.key, **error.values))
        return await ask(update, context, field)
    await reply(update, t(lang, "care.form.use_buttons"))
    return await ask(update, context, field) if field else ConversationHandler.END


@once_per_update(_FORM, "current")
@in_form
async def on_form_button(update: Update, context: Context, person: Person) -> str | int:
    press = pressed(update)
    query = press.query
    form = _form(context)
    field = form.get("current", "")
    lang = person.language
    if press.step == "x":
        await answer(query)
        await drop_keyboard(update)
        return await cancel(update, context)
    expected = {
        "date": DATE,
        "skip": PLACE if field == PLACE else RESULT,
        "ox": {"w": OX_WHAT, "p": OX_PLACE, "u": OX_URGENCY, "ok": OX_CONFIRM}.get(
            press.word(2), ""
        ),
    }.get(press.step)
    if expected != field:
        await answer(query, t(lang, "care.stale"), alert=True)
        return field or ConversationHandler.END
    await answer(query)
    await show_answer(query, lang)
    draft = form["draft"]
    if field == DATE:
        offset = press.word(2)
        days = parse_int(offset, max_digits=3, signed=True)
        if days is None or abs(days) > 366:
            return await ask(update, context, field)
        today = people.local_today(context.settings.zone)
        try:
            return await _take_date(update, context, person, today + timedelta(days=days))
        except CareError as error:
            await reply(update, t(lang, error.key, **error.values))
            return await ask(update, context, field)
    if field == PLACE:
        return await ask(update, context, RESULT)
    if field == RESULT:
        return await _save(update, context, person)
    value = press.word(3)
    if field == OX_WHAT:
        if value not in set(OxygenWhat):
            return await ask(update, context, field)
        draft["what"] = value
        return await ask(update, context, OX_PLACE)
    if field == OX_PLACE:
        if oxygen.place_key(value) is None:
            return await ask(update, context, field)
        draft["place"] = oxygen.place_key(value)  # shown in each reader's language
        return await ask(update, context, OX_URGENCY)
    if field == OX_URGENCY:
        if value not in set(OxygenUrgency):
            return await ask(update, context, field)
        draft["urgency"] = value
        return await ask(update, context, OX_CONFIRM)
    return await _save(update, context, person)  # OX_CONFIRM: send


async def _take_date(update: Update, context: Context, person: Person, day: date) -> str | int:
    form = _form(context)
    form["draft"]["date"] = day.isoformat()
    if form.get("flow") == "done" and form.get("kind") == CareKind.EXAM:
        today = people.local_today(context.settings.zone)
        if day > today:  # say so now rather than after two more questions
            raise CareError("care.invalid.future")
        return await ask(update, context, PLACE)
    return await _save(update, context, person)


async def _save(update: Update, context: Context, person: Person) -> str | int:
    form = _form(context)
    flow = form.get("flow")
    draft = form.get("draft", {})
    lang = person.language
    db = context.db
    cfg = care_config(context)
    assert person.id is not None
    try:
        if flow == "oxygen":
            return await _save_oxygen(update, context, person, draft)
        day = date.fromisoformat(draft["date"])
        if flow == "done":
            schedule = await db.run(
                records.record_done,
                person.id,
                int(form["item_id"]),
                day,
                cfg,
                place=draft.get("place"),
                result=draft.get("result"),
                actor_telegram_id=person.telegram_id,
            )
            text = t(lang, "care.done.saved") + "\n\n" + schedule_card(lang, schedule)
            target = person.id
        elif flow == "book":
            schedule = await db.run(
                records.record_booked,
                person.id,
                int(form["item_id"]),
                day,
                cfg,
                actor_telegram_id=person.telegram_id,
            )
            text = t(lang, "care.booked.saved", date=day.isoformat())
            target = person.id
        else:
            target = int(form["person_id"])
            schedule = await db.run(
                records.set_due, person, target, CareKind(form["kind"]), day, cfg
            )
            text = t(
                lang,
                "care.set.saved",
                name=schedule.person.name,
                item=care_texts.item_name(lang, CareKind(form["kind"])),
                date=day.isoformat(),
            )
    except CareError as error:
        if flow == "oxygen" or error.key in {"care.stale", "care.forged", "care.set.no_schedule"}:
            FORM.clear(context)
            await reply(update, t(lang, error.key, **error.values))
            return ConversationHandler.END
        await reply(update, t(lang, error.key, **error.values))
        return await ask(update, context, DATE)
    FORM.clear(context)
    await reply(update, text, reply_markup=menus.main_keyboard(lang))
    await context.timers.replan_care(target)
    return ConversationHandler.END


async def _save_oxygen(
    update: Update, context: Context, person: Person, draft: dict[str, Any]
) -> int:
    lang = person.language
    assert person.id is not None
    cfg = oxygen_config(context)
    request = await context.db.run(
        oxygen.create_request,
        person.id,
        draft.get("what", ""),
        draft.get("place", ""),
        draft.get("urgency", ""),
        cfg,
    )
    FORM.clear(context)
    assert request.id is not None
    if request.urgency == OxygenUrgency.URGENT:
        context.timers.plan_oxygen_escalation(request.id, request.created_at + cfg.escalation)
    text = t(lang, "care.ox.sent", id=request.id)
    # a request, not a schedule reminder: what to do if it gets worse while waiting
    later = (
        "care.ox.sent_urgent" if request.urgency == OxygenUrgency.URGENT else "care.ox.sent_note"
    )
    text += "\n" + t(lang, later)
    await reply(update, text, reply_markup=await menus.main_keyboard_of(context, person, lang))
    return ConversationHandler.END


async def on_form_unexpected(update: Update, context: Context) -> str | int:
    form = _form(context)
    field = form.get("current", "")
    lang = form.get("lang") or language_of(update, context)
    await reply(update, t(lang, "care.form.use_buttons"))
    if not field or FORM.expired(context):
        FORM.clear(context)
        return ConversationHandler.END
    return await ask(update, context, field)


async def cancel(update: Update, context: Context) -> int:
    lang = _form(context).get("lang") or language_of(update, context)
    FORM.clear(context)
    markup = None
    person = await current_person(update, context)
    if person is not None and person.status == Status.ACTIVE:
        markup = await menus.main_keyboard_of(context, person, lang)
    await reply(update, t(lang, "care.form.cancelled"), reply_markup=markup)
    return ConversationHandler.END


async def on_timeout(update: Update, context: Context) -> int:
    lang = _form(context).get("lang") or language_of(update, context)
    FORM.clear(context)
    await reply(update, t(lang, "care.form.expired"))
    return ConversationHandler.END


def build(form_timeout: int) -> ConversationHandler[Any]:
    text = filters.TEXT & ~filters.COMMAND
    step: list[BaseHandler[Any, Any, Any]] = [
        CallbackQueryHandler(on_form_button, pattern=r"^cf:"),
        MessageHandler(text, on_form_text),
        MessageHandler(~filters.COMMAND, on_form_unexpected),
    ]
    return form_conversation(
        NAME,
        entry_points=[
            CallbackQueryHandler(start_item_form, pattern=r"^cs:[db]:"),
            CallbackQueryHandler(start_set_form, pattern=r"^cs:as:"),
            CommandHandler("oxygen", oxygen_command),
            CallbackQueryHandler(oxygen_new, pattern=r"^ox:new$"),
        ],
        states={state: step for state in STATES},
        fallbacks=[CommandHandler("cancel", cancel)],
        timeout=form_timeout,
        on_timeout=on_timeout,
    )
