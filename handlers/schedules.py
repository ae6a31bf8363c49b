"""Care schedules: /schedule, reminder buttons, /oxygen, /overdue, /upcoming, /carepolicy.
The reminder pass and oxygen escalations are timers (scheduler/care.py), reached through
`context.timers` after a change.

Callback data (all well under 64 bytes):

    cs:d:<item>:<yyyymmdd>     Done (a form: the date; for an exam, where and a result)
    cs:b:<item>:<yyyymmdd>     Booked for... (a form: the date)
    cs:z:<item>:<yyyymmdd>     Snooze: choose how long; cs:zz:<item>:<yyyymmdd>:<days>
    cs:rt / cs:rt:<hh|def>     the person's reminder time
    cs:csv:<o|u>               CSV of /overdue or /upcoming
    cs:p:<person>              an admin's view of one person's schedule
    cs:as:<person>:<rest|exam> an admin sets or moves a date (a form: the date)
    cs:pol / cs:pol:<band>     the policy table / one band
    cs:pv:<band>:<field>       choose a value; cs:ps:<band>:<field>:<value|off> sets it
    cs:pt:<band>:<code>        toggle an exam content; cs:pc:<band> confirms the band
    cf:...                     answers inside the care form
    ox:new                     a new oxygen request (the form)
    ox:ack:<id> / ox:dlv:<id>  acknowledge / mark delivered (duty officers, admins)
    ox:cxl:<id>                the cadre cancels their own request
"""

from __future__ import annotations

import functools
import html
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from handlers import menus
from handlers.common import (
    Context,
    answer,
    buttons,
    current_person,
    guarded,
    language_of,
    refuse,
    reply,
    show_answer,
)
from handlers.conversation import once_per_update, persist_now
from models import CareKind, OxygenUrgency, OxygenWhat, Person, Status
from services import audit, care_policy, clock, oxygen, people
from services.care import areas, records, rules
from services.care import texts as care_texts
from services.care.rules import CareConfig, CareError, Schedule
from services.care_policy import Band, BandPolicy
from services.i18n import t
from services.oxygen import OxygenConfig
from services.permissions import Action, Denial, check, visible_prefectures
from services.postings import load_postings
from services.validation import InvalidInput, parse_date, parse_int

log = logging.getLogger(__name__)

NAME = "care_form"
_FORM = "care_form"  # user_data key
DATE, PLACE, RESULT = "date", "place", "result"
OX_WHAT, OX_PLACE, OX_URGENCY, OX_CONFIRM = "ox_what", "ox_place", "ox_urgency", "ox_confirm"
STATES = (DATE, PLACE, RESULT, OX_WHAT, OX_PLACE, OX_URGENCY, OX_CONFIRM)
_FLOW_ACTION = {
    "done": Action.OWN_DATA,
    "book": Action.OWN_DATA,
    "set": Action.MANAGE_SCHEDULES,
    "oxygen": Action.REQUEST_OXYGEN,
}
REMINDER_HOURS = (7, 8, 9, 12, 18, 20)
AREA_LINES = 40  # lines of /overdue or /upcoming in the chat; the CSV has everything
MANAGE_BUTTONS = 8
_MAX_ID_DIGITS = 18
POLICY_FIELDS = {  # short code in callback data -> field
    "re": "rest_every_days",
    "rl": "rest_length_days",
    "ef": "exam_first_days",
    "ee": "exam_every_days",
}
POLICY_CHOICES: dict[str, tuple[int, ...]] = {
    "rest_every_days": (60, 90, 120, 180, 365),
    "rest_length_days": (7, 10, 14, 21, 28),
    "exam_first_days": (0, 7, 14, 30, 60),
    "exam_every_days": (90, 180, 365),
}
BOOK_CHOICES = (3, 7, 14, 30)
SET_CHOICES = (0, 7, 14, 30, 60)

Callback = Callable[[Update, Context], Awaitable[Any]]


# ---------------------------------------------------------------------------- helpers


def care_config(context: Context) -> CareConfig:
    return CareConfig.from_settings(context.settings)


def oxygen_config(context: Context) -> OxygenConfig:
    return OxygenConfig.from_settings(context.settings)


def _id(raw: str) -> int | None:
    return parse_int(raw, max_digits=_MAX_ID_DIGITS)


def _parts(update: Update) -> list[str]:
    query = update.callback_query
    return (query.data or "").split(":") if query else []


async def _show(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the message under the button in place; send a new one if that is impossible."""
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            await query.edit_message_text(text, reply_markup=markup)
            return
        except BadRequest as error:
            if "not modified" in str(error).lower():
                return
    await reply(update, text, reply_markup=markup)


async def _drop_keyboard(update: Update) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except Exception:  # too old to edit: nothing is lost
        pass


async def _forged(update: Update, context: Context, person: Person, action: Action) -> None:
    """A button that names someone else's item, or data no button of ours carries."""
    query = update.callback_query
    await context.db.run(
        _audit_forged, person.telegram_id, person.id, action, query.data if query else ""
    )
    await answer(query, _plain(t(person.language, "care.forged")), alert=True)


def _audit_forged(
    session: Any, actor: int, person_id: int | None, action: Action, attempted: str | None
) -> None:
    audit.record(
        session,
        f"denied.{action}",
        actor=actor,
        target_person_id=person_id,
        outcome="denied",
        reason="forged",
        attempted=(attempted or "")[:64],
    )


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))[:200]


async def _care_error(update: Update, context: Context, person: Person, error: CareError) -> None:
    if error.key == "care.forged":
        await _forged(update, context, person, Action.OWN_DATA)
        return
    text = t(person.language, error.key, **error.values)
    if update.callback_query is not None:
        await answer(update.callback_query, _plain(text), alert=True)
    else:
        await reply(update, text)


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


# ---------------------------------------------------------------------------- texts


def _policy_line(lang: str, kind: CareKind, policy: BandPolicy) -> str:
    if kind == CareKind.REST:
        return t(
            lang,
            "care.sched.rest_policy",
            every=_days(lang, policy.rest_every_days),
            length=_days(lang, policy.rest_length_days),
        )
    if policy.exam_first_days is not None and policy.exam_every_days is not None:
        return t(
            lang,
            "care.sched.exam_policy",
            first=_days(lang, policy.exam_first_days),
            every=_days(lang, policy.exam_every_days),
        )
    if policy.exam_every_days is not None:
        return t(lang, "care.sched.exam_policy_every", every=_days(lang, policy.exam_every_days))
    return t(lang, "care.sched.exam_policy_first", first=_days(lang, policy.exam_first_days or 0))


def _days(lang: str, days: int | None) -> str:
    """ "90 days" ("1 day"), or "-" when the policy has no value."""
    return t(lang, "care.policy.days", count=days) if days is not None else "-"


def _due_line(lang: str, due: rules.Due, today: date) -> str:
    days = (due.due - today).days
    if days < 0:
        line = t(lang, "care.sched.overdue", count=-days, date=due.due.isoformat())
    elif days == 0:
        line = t(lang, "care.sched.today", date=due.due.isoformat())
    else:
        line = t(lang, "care.sched.next", count=days, date=due.due.isoformat())
    extras = []
    if due.booked_for is not None:
        extras.append(t(lang, "care.sched.booked", date=due.booked_for.isoformat()))
    if due.set_by_admin:
        extras.append(t(lang, "care.sched.set_by_admin"))
    if due.snoozed_until is not None and due.snoozed_until > today:
        extras.append(t(lang, "care.sched.snoozed", date=due.snoozed_until.isoformat()))
    if due.last_done is not None:
        extras.append(t(lang, "care.sched.last_done", date=due.last_done.isoformat()))
    return "\n".join(["   " + line, *("   " + e for e in extras)])


def schedule_text(lang: str, schedule: Schedule, *, of_someone: bool = False) -> str:
    """The whole schedule at once (the board shows it): the card and its details."""
    card = schedule_card(lang, schedule, of_someone=of_someone)
    if schedule.state != "ok":
        return card
    return card + "\n\n" + schedule_details(lang, schedule)


def schedule_card(lang: str, schedule: Schedule, *, of_someone: bool = False) -> str:
    """One phone screen: the posting, and when each rest and examination is due (what is
    overdue first to the eye); the policy behind it is one tap away (schedule_details)."""
    person = schedule.person
    title = (
        t(lang, "care.sched.title_of", name=person.name)
        if of_someone
        else t(lang, "care.sched.title")
    )
    if schedule.state == "low_altitude":
        return title + "\n" + t(lang, "care.sched.low_altitude")
    if schedule.state == "incomplete":
        return title + "\n" + t(lang, "care.sched.incomplete")
    if schedule.state == "ended":
        end = person.end.isoformat() if person.end else "-"
        return title + "\n" + t(lang, "care.sched.ended", date=end)
    assert schedule.policy is not None and schedule.band is not None
    lines = [
        title,
        t(
            lang,
            "care.sched.where",
            posting=care_texts.posting_text(lang, person),
            altitude=person.altitude_m if person.altitude_m is not None else "-",
            days=schedule.days_at_altitude if schedule.days_at_altitude is not None else "-",
        ),
    ]
    for kind in CareKind:
        due = schedule.items.get(kind)
        has = schedule.policy.has_rest if kind == CareKind.REST else schedule.policy.has_exam
        icon = "🏖" if kind == CareKind.REST else "🩺"
        lines.append(f"{icon} <b>{care_texts.item_name(lang, kind)}</b>")
        if due is None and has and person.end is not None:
            lines.append("   " + t(lang, "care.sched.after_end", date=person.end.isoformat()))
        elif due is None:
            lines.append("   " + t(lang, "care.sched.none_item"))
        else:
            lines.append(_due_line(lang, due, schedule.today))
    lines.append(t(lang, "care.sched.not_diagnosis"))
    return "\n".join(lines)


def schedule_details(lang: str, schedule: Schedule) -> str:
    """Why these dates: the altitude band and its policy, what the exam covers, the last
    return from a rest, the reminder time, and whether the policy is confirmed."""
    person = schedule.person
    assert schedule.policy is not None and schedule.band is not None
    lines = [
        t(
            lang,
            "care.sched.posting",
            posting=care_texts.posting_text(lang, person),
            altitude=person.altitude_m if person.altitude_m is not None else "-",
            band=t(lang, f"care.band.{schedule.band}"),
        ),
        t(
            lang,
            "care.sched.days",
            days=schedule.days_at_altitude if schedule.days_at_altitude is not None else "-",
            start=person.start.isoformat() if person.start else "-",
        ),
    ]
    for kind in CareKind:
        has = schedule.policy.has_rest if kind == CareKind.REST else schedule.policy.has_exam
        if has:
            lines.append(_policy_line(lang, kind, schedule.policy))
        if kind == CareKind.EXAM and has:
            contents = care_texts.contents_text(lang, schedule.policy)
            lines.append("   " + t(lang, "care.sched.contents", contents=contents))
    if schedule.last_rest_return is not None:
        lines.append(t(lang, "care.sched.last_rest_return", date=schedule.last_rest_return))
    lines.append(
        t(
            lang,
            "care.sched.reminders",
            time=_hhmm(schedule.timing.seconds),
            zone=schedule.timing.zone.key,
        )
    )
    if not schedule.policy.confirmed:
        lines.append(t(lang, "care.sched.proposed"))
    return "\n".join(lines)


def schedule_buttons(lang: str, schedule: Schedule) -> InlineKeyboardMarkup:
    rows: list[list[tuple[str, str]]] = []
    for kind in CareKind:
        due = schedule.items.get(kind)
        if due is None or due.item_id is None:
            continue
        tail = f"{due.item_id}:{due.due.strftime('%Y%m%d')}"
        item = care_texts.item_name(lang, kind)
        rows.append(
            [
                (t(lang, "care.btn.done_item", item=item), f"cs:d:{tail}"),
                (t(lang, "care.btn.book_item", item=item), f"cs:b:{tail}"),
            ]
        )
    if schedule.state == "ok":
        rows.append(
            [
                (t(lang, "care.btn.reminder_time"), "cs:rt"),
                (t(lang, "care.btn.details"), "cs:info"),
            ]
        )
    return buttons(rows)


# ---------------------------------------------------------------------------- /schedule


@guarded(Action.OWN_DATA)
async def schedule_command(update: Update, context: Context, person: Person) -> None:
    assert person.id is not None
    schedule = await context.db.run(records.schedule_for, person.id, care_config(context))
    lang = person.language
    markup = schedule_buttons(lang, schedule) if person.status == Status.ACTIVE else None
    await reply(update, schedule_card(lang, schedule), reply_markup=markup)


@guarded(Action.OWN_DATA)
async def on_details(update: Update, context: Context, person: Person) -> None:
    """cs:info: the details behind one's own schedule card; cs:pi:<person> the same for an
    admin looking at someone's (the button grammar checked the permission)."""
    parts = _parts(update)
    target = _id(parts[2]) if len(parts) == 3 else person.id
    assert target is not None
    schedule = await _pressed_schedule(update, context, person, target)
    if schedule is not None and schedule.state == "ok":
        await reply(update, schedule_details(person.language, schedule))


async def _pressed_schedule(
    update: Update, context: Context, viewer: Person, person_id: int
) -> Schedule | None:
    """The schedule a button asks for, the press answered (None: gone, and said so)."""
    try:
        schedule = await context.db.run(records.schedule_for, person_id, care_config(context))
    except CareError:
        await answer(update.callback_query, _plain(t(viewer.language, "care.stale")), alert=True)
        return None
    await answer(update.callback_query)
    return schedule


@guarded(Action.OWN_DATA)
async def on_reminder_time(update: Update, context: Context, person: Person) -> None:
    """cs:rt (choose) and cs:rt:<hh|def> (set)."""
    parts = _parts(update)
    lang = person.language
    assert person.id is not None
    settings = context.settings
    if len(parts) == 2:
        await answer(update.callback_query)
        rows = [
            [(f"{h:02d}:00", f"cs:rt:{h:02d}") for h in REMINDER_HOURS[i : i + 3]]
            for i in range(0, len(REMINDER_HOURS), 3)
        ]
        rows.append([(t(lang, "care.rt.default", time=settings.care_reminder_time), "cs:rt:def")])
        await reply(
            update, t(lang, "care.rt.ask", zone=settings.timezone), reply_markup=buttons(rows)
        )
        return
    value = parts[2]
    if value == "def":
        seconds = None
    elif (hour := parse_int(value, max_digits=2)) is not None and hour in REMINDER_HOURS:
        seconds = hour * 3600
    else:
        await _forged(update, context, person, Action.OWN_DATA)
        return
    await context.db.run(records.set_reminder_time, person.id, seconds)
    await answer(update.callback_query)
    await _drop_keyboard(update)
    shown = _hhmm(seconds) if seconds is not None else settings.care_reminder_time
    await reply(update, t(lang, "care.rt.set", time=shown))
    await context.timers.replan_care(person.id)


# ---------------------------------------------------------------------------- snooze


@guarded(Action.OWN_DATA)
async def on_snooze(update: Update, context: Context, person: Person) -> None:
    """cs:z:<item>:<due> offers 1/3/7 days; cs:zz:<item>:<due>:<days> snoozes."""
    parts = _parts(update)
    lang = person.language
    assert person.id is not None
    item_id = _id(parts[2]) if len(parts) > 3 else None
    due = care_texts.parse_compact(parts[3]) if len(parts) > 3 else None
    if item_id is None or due is None:
        await _forged(update, context, person, Action.OWN_DATA)
        return
    if person.status != Status.ACTIVE:
        await refuse(update, context, person, Action.OWN_DATA, Denial(str(person.status)))
        return
    cfg = care_config(context)
    if parts[1] == "z":
        try:
            await context.db.run(records.check_action, person.id, item_id, due, cfg)
        except CareError as error:
            await _care_error(update, context, person, error)
            return
        await answer(update.callback_query)
        rows = [
            [
                (t(lang, "care.btn.snooze_days", count=d), f"cs:zz:{item_id}:{parts[3]}:{d}")
                for d in rules.SNOOZE_DAYS
            ]
        ]
        await reply(update, t(lang, "care.snooze.ask"), reply_markup=buttons(rows))
        return
    days = _id(parts[4]) if len(parts) > 4 else None
    if days not in rules.SNOOZE_DAYS:
        await _forged(update, context, person, Action.OWN_DATA)
        return
    try:
        schedule = await context.db.run(
            records.record_snoozed,
            person.id,
            item_id,
            days,
            cfg,
            due=due,
            actor_telegram_id=person.telegram_id,
        )
    except CareError as error:
        await _care_error(update, context, person, error)
        return
    await answer(update.callback_query)
    await _drop_keyboard(update)
    until = schedule.today + timedelta(days=days)
    await reply(update, t(lang, "care.snoozed", date=until.isoformat()))
    await context.timers.replan_care(person.id)


# ---------------------------------------------------------------------------- the care form


def _form(context: Context) -> dict[str, Any]:
    return context.user_data.setdefault(_FORM, {})  # type: ignore[union-attr]


def _clear(context: Context) -> None:
    if context.user_data is not None:
        context.user_data.pop(_FORM, None)


def _expired(context: Context) -> bool:
    form = _form(context)
    if not form.get("flow") or not form.get("touched"):
        return True
    age = clock.now() - datetime.fromisoformat(form["touched"])
    return age.total_seconds() > context.settings.form_timeout


def in_form(fn: Callable[[Update, Context, Person], Awaitable[Any]]) -> Callback:
    """Form steps: the form must be alive and the person still allowed to fill it."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: Context) -> Any:
        if _expired(context):
            await answer(update.callback_query)
            return await on_timeout(update, context)
        person = await current_person(update, context)
        action = _FLOW_ACTION.get(_form(context).get("flow", ""), Action.OWN_DATA)
        denial = check(person, action)
        if denial is None and person is not None and person.status != Status.ACTIVE:
            denial = Denial(str(person.status))
        if denial is not None:
            _clear(context)
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
            values = {
                "name": form.get("name", ""),
                "item": care_texts.item_name(lang, CareKind(form["kind"])),
                "current": form.get("current_due") or "-",
            }
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
    form["touched"] = clock.now().isoformat()
    await persist_now(update, context, NAME, field)
    await reply(update, t(lang, key, **values), reply_markup=buttons(rows))
    return field


def _begin(context: Context, person: Person, flow: str, **fields: Any) -> None:
    _clear(context)
    form = _form(context)
    form.update({"flow": flow, "lang": person.language, "draft": {}, **fields})
    form["touched"] = clock.now().isoformat()


@guarded(Action.OWN_DATA)
async def start_item_form(update: Update, context: Context, person: Person) -> str | int:
    """cs:d (Done) and cs:b (Booked for...) on a reminder or on /schedule."""
    parts = _parts(update)
    item_id = _id(parts[2]) if len(parts) == 4 else None
    due = care_texts.parse_compact(parts[3]) if len(parts) == 4 else None
    if item_id is None or due is None or parts[1] not in {"d", "b"}:
        await _forged(update, context, person, Action.OWN_DATA)
        return ConversationHandler.END
    if person.status != Status.ACTIVE:
        await refuse(update, context, person, Action.OWN_DATA, Denial(str(person.status)))
        return ConversationHandler.END
    assert person.id is not None
    try:
        kind = await context.db.run(
            records.check_action, person.id, item_id, due, care_config(context)
        )
    except CareError as error:
        await _care_error(update, context, person, error)
        return ConversationHandler.END
    await answer(update.callback_query)
    flow = "done" if parts[1] == "d" else "book"
    _begin(context, person, flow, item_id=item_id, kind=str(kind))
    return await ask(update, context, DATE)


@guarded(Action.MANAGE_SCHEDULES)
async def start_set_form(update: Update, context: Context, admin: Person) -> str | int:
    """cs:as:<person>:<kind>: an admin sets or moves one person's date."""
    parts = _parts(update)
    person_id = _id(parts[2]) if len(parts) == 4 else None
    if person_id is None or parts[3] not in set(CareKind):
        await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return ConversationHandler.END
    cfg = care_config(context)
    try:
        schedule = await context.db.run(records.schedule_for, person_id, cfg)
    except CareError as error:
        await _care_error(update, context, admin, error)
        return ConversationHandler.END
    if schedule.state != "ok":
        await answer(update.callback_query, _plain(t(admin.language, "care.set.no_schedule")), True)
        return ConversationHandler.END
    await answer(update.callback_query)
    kind = CareKind(parts[3])
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
    of their area); a new request starts the form at once when there is nothing to show."""
    lang = person.language
    assert person.id is not None
    db = context.db
    zone = context.settings.zone
    mine = await db.run(oxygen.requests_of, person.id)
    area: list[Any] = []
    if check(person, Action.HANDLE_OXYGEN) is None:
        duty = await db.run(people.duty_areas, person.id)
        area = await db.run(oxygen.open_in_area, visible_prefectures(person, duty))
    if not mine and not area:
        return await _start_oxygen(update, context, person)
    texts: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    if mine:  # one line or two each, under the title: one screen for MAX_OPEN and more
        summaries = [t(lang, "care.ox.mine_title")]
        for request in mine:
            summaries.append(await db.run(oxygen.request_summary, request, lang, zone))
        texts.append("\n".join(summaries))
        for request in mine:
            if request.status in oxygen.IN_PROGRESS:
                rows.append(
                    [(t(lang, "care.ox.btn.cancel", id=request.id), f"ox:cxl:{request.id}")]
                )
    if area:
        texts.append("")
        texts.append(t(lang, "care.ox.area_title"))
        for request in area:
            texts.append(await db.run(oxygen.notice_text, request, lang, zone, escalated=False))
            markup = oxygen.responder_buttons(request, lang)
            if markup:
                rows.append(
                    [
                        (f"{b['text']} #{request.id}", b["callback_data"])
                        for b in markup["inline_keyboard"][0]
                    ]
                )
    rows.append([(t(lang, "care.ox.btn.new"), "ox:new")])
    await reply(update, "\n\n".join(texts), reply_markup=buttons(rows))
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
    except InvalidInput as error:
        await reply(update, t(lang, error.key, **error.values))
        return await ask(update, context, field)
    except CareError as error:
        await reply(update, t(lang, error.key, **error.values))
        return await ask(update, context, field)
    await reply(update, t(lang, "care.form.use_buttons"))
    return await ask(update, context, field) if field else ConversationHandler.END


@once_per_update(_FORM, "current")
@in_form
async def on_form_button(update: Update, context: Context, person: Person) -> str | int:
    query = update.callback_query
    assert query is not None
    form = _form(context)
    field = form.get("current", "")
    parts = _parts(update)
    lang = person.language
    if parts[1:2] == ["x"]:
        await answer(query)
        await _drop_keyboard(update)
        return await cancel(update, context)
    expected = {
        "date": DATE,
        "skip": PLACE if field == PLACE else RESULT,
        "ox": {"w": OX_WHAT, "p": OX_PLACE, "u": OX_URGENCY, "ok": OX_CONFIRM}.get(
            parts[2] if len(parts) > 2 else "", ""
        ),
    }.get(parts[1] if len(parts) > 1 else "")
    if expected != field:
        await answer(query, _plain(t(lang, "care.stale")), alert=True)
        return field or ConversationHandler.END
    await answer(query)
    await show_answer(query, lang)
    draft = form["draft"]
    if field == DATE:
        offset = parts[2] if len(parts) > 2 else ""
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
    value = parts[3] if len(parts) > 3 else ""
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
            _clear(context)
            await reply(update, t(lang, error.key, **error.values))
            return ConversationHandler.END
        await reply(update, t(lang, error.key, **error.values))
        return await ask(update, context, DATE)
    _clear(context)
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
    _clear(context)
    assert request.id is not None
    if request.urgency == OxygenUrgency.URGENT:
        context.timers.plan_oxygen_escalation(request.id, request.created_at + cfg.escalation)
    text = t(lang, "care.ox.sent", id=request.id)
    # a request, not a schedule reminder: what to do if it gets worse while waiting
    later = (
        "care.ox.sent_urgent" if request.urgency == OxygenUrgency.URGENT else "care.ox.sent_note"
    )
    text += "\n" + t(lang, later)
    await reply(update, text, reply_markup=menus.main_keyboard(lang))
    return ConversationHandler.END


async def on_form_unexpected(update: Update, context: Context) -> str | int:
    form = _form(context)
    field = form.get("current", "")
    lang = form.get("lang") or language_of(update, context)
    await reply(update, t(lang, "care.form.use_buttons"))
    if not field or _expired(context):
        _clear(context)
        return ConversationHandler.END
    return await ask(update, context, field)


async def cancel(update: Update, context: Context) -> int:
    lang = _form(context).get("lang") or language_of(update, context)
    _clear(context)
    markup = None
    person = await current_person(update, context)
    if person is not None and person.status == Status.ACTIVE:
        markup = menus.main_keyboard(lang)
    await reply(update, t(lang, "care.form.cancelled"), reply_markup=markup)
    return ConversationHandler.END


async def on_timeout(update: Update, context: Context) -> int:
    lang = _form(context).get("lang") or language_of(update, context)
    _clear(context)
    await reply(update, t(lang, "care.form.expired"))
    return ConversationHandler.END


# ---------------------------------------------------------------------------- oxygen buttons


@guarded(Action.HANDLE_OXYGEN)
async def on_oxygen_handle(update: Update, context: Context, person: Person) -> None:
    parts = _parts(update)
    request_id = _id(parts[2]) if len(parts) == 3 else None
    lang = person.language
    if request_id is None:
        await _forged(update, context, person, Action.HANDLE_OXYGEN)
        return
    fn = oxygen.acknowledge if parts[1] == "ack" else oxygen.deliver
    change = await context.db.run(fn, person, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, _plain(t(lang, "care.forged")), alert=True)
        return
    if change.outcome == "won":
        key = "care.ox.ack.won" if parts[1] == "ack" else "care.ox.dlv.won"
        await answer(update.callback_query, _plain(t(lang, key)))
        return
    if change.outcome == "taken":
        name = (change.by.real_name or change.by.display_name) if change.by else "-"
        await answer(update.callback_query, _plain(t(lang, "care.ox.ack.taken", name=name)), True)
        return
    await answer(update.callback_query, _plain(t(lang, "care.ox.closed")), alert=True)


@guarded(Action.REQUEST_OXYGEN)
async def on_oxygen_cancel(update: Update, context: Context, person: Person) -> None:
    parts = _parts(update)
    request_id = _id(parts[2]) if len(parts) == 3 else None
    lang = person.language
    assert person.id is not None
    if request_id is None:
        await _forged(update, context, person, Action.REQUEST_OXYGEN)
        return
    change = await context.db.run(oxygen.cancel, person.id, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, _plain(t(lang, "care.forged")), alert=True)
        return
    if change.outcome != "won":
        await answer(update.callback_query, _plain(t(lang, "care.ox.closed")), alert=True)
        return
    await answer(update.callback_query)
    await _drop_keyboard(update)
    await reply(update, t(lang, "care.ox.cancelled", id=request_id))


# ---------------------------------------------------------------------------- /overdue, /upcoming


async def _area_rows(
    context: Context, person: Person, which: str
) -> tuple[list[areas.AreaRow], frozenset[str] | None]:
    """The rows of /overdue (`which` "o") or /upcoming ("u") in the person's area."""
    assert person.id is not None
    db = context.db
    duty = await db.run(people.duty_areas, person.id)
    visible = visible_prefectures(person, duty)
    # overdue rows are all due before today: no need to compute the next two weeks
    horizon = 0 if which == "o" else rules.UPCOMING_DAYS
    rows = await db.run(areas.area_rows, care_config(context), visible, horizon_days=horizon)
    return rows, visible


def area_text(
    lang: str,
    rows: list[areas.AreaRow],
    which: str,
    today: date,
    *,
    counts: dict[str, int] | None = None,
    total: int | None = None,
) -> tuple[str, int]:
    """The report, at most AREA_LINES lines; returns the text and how many were left out.
    `rows` may be only the first ones, with `counts` (rows per prefecture) and `total`
    (services.care.areas.area_summary); by default they are counted from `rows`."""
    postings = load_postings()
    if which == "o":
        lines = [t(lang, "care.overdue.title", date=today.isoformat())]
    else:
        lines = [t(lang, "care.upcoming.title", count=rules.UPCOMING_DAYS, date=today.isoformat())]
    if counts is None:
        counts = {}
        for row in rows:
            counts[row.person.prefecture or ""] = counts.get(row.person.prefecture or "", 0) + 1
    shown = 0
    current: str | None = None
    for row in rows:
        if shown >= AREA_LINES:
            break
        prefecture = row.person.prefecture or ""
        if prefecture != current:
            current = prefecture
            name = (
                postings.name(prefecture, lang, short=True)
                if postings.prefecture(prefecture)
                else "-"
            )
            lines += [
                "",
                t(lang, "care.area.prefecture", prefecture=name, count=counts[prefecture]),
            ]
        values = {
            "name": row.person.name,
            "posting": care_texts.posting_text(lang, row.person),
            "altitude": row.person.altitude_m if row.person.altitude_m is not None else "-",
            "item": care_texts.item_name(lang, row.due.kind),
            "due": row.due.due.isoformat(),
        }
        if row.overdue:
            line = t(
                lang, "care.area.line_overdue", count=row.due.overdue_days(row.today), **values
            )
        else:
            line = t(
                lang, "care.area.line_upcoming", count=(row.due.due - row.today).days, **values
            )
        if row.due.booked_for is not None:
            line += t(lang, "care.area.booked_suffix")
        lines.append(line)
        shown += 1
    left = (len(rows) if total is None else total) - shown
    if left > 0:
        lines += ["", t(lang, "care.area.more", count=left)]
    return "\n".join(lines), left


async def _area_command(update: Update, context: Context, person: Person, which: str) -> None:
    lang = person.language
    assert person.id is not None
    db = context.db
    visible = visible_prefectures(person, await db.run(people.duty_areas, person.id))
    if visible is not None and not visible:
        await reply(update, t(lang, "care.area.no_area"))
        return
    # the chat shows AREA_LINES rows and counts: only those rows are built (the CSV has all)
    summary = await db.run(
        areas.area_summary, care_config(context), visible, overdue=which == "o", limit=AREA_LINES
    )
    today = people.local_today(context.settings.zone)
    rows = summary.rows
    if not rows:
        key = "care.area.none_overdue" if which == "o" else "care.area.none_upcoming"
        await reply(update, t(lang, key, count=rules.UPCOMING_DAYS))
        return
    text, _ = area_text(lang, rows, which, today, counts=summary.counts, total=summary.total)
    markup_rows = [[(t(lang, "care.btn.csv"), f"cs:csv:{which}")]]
    if check(person, Action.MANAGE_SCHEDULES) is None:
        seen: dict[int, str] = {}
        for row in rows:
            if len(seen) >= MANAGE_BUTTONS:
                break
            seen.setdefault(row.person.id, row.person.name)
        manage = [
            (t(lang, "care.btn.manage", name=name[:20]), f"cs:p:{pid}")
            for pid, name in seen.items()
        ]
        markup_rows += [manage[i : i + 2] for i in range(0, len(manage), 2)]
    await reply(update, text, reply_markup=buttons(markup_rows))


@guarded(Action.VIEW_AREA)
async def overdue_command(update: Update, context: Context, person: Person) -> None:
    await _area_command(update, context, person, "o")


@guarded(Action.VIEW_AREA)
async def upcoming_command(update: Update, context: Context, person: Person) -> None:
    await _area_command(update, context, person, "u")


@guarded(Action.VIEW_AREA)
async def on_csv(update: Update, context: Context, person: Person) -> None:
    parts = _parts(update)
    which = parts[2] if len(parts) == 3 else ""
    if which not in {"o", "u"}:
        await _forged(update, context, person, Action.VIEW_AREA)
        return
    await answer(update.callback_query)
    lang = person.language
    rows, visible = await _area_rows(context, person, which)
    rows = [r for r in rows if r.overdue] if which == "o" else [r for r in rows if not r.overdue]
    data = areas.rows_to_csv(rows, lang)
    await context.db.run(_audit_export, person, which, len(rows), visible)
    today = people.local_today(context.settings.zone).isoformat()
    name = f"care-{'overdue' if which == 'o' else 'upcoming'}-{today}.csv"
    message = update.effective_message
    assert message is not None
    what = t(lang, "care.csv.what.overdue" if which == "o" else "care.csv.what.upcoming")
    await message.chat.send_document(
        InputFile(data, filename=name),
        caption=t(lang, "care.csv.caption", what=what, date=today, count=len(rows)),
    )


def _audit_export(
    session: Any, person: Person, which: str, count: int, visible: frozenset[str] | None
) -> None:
    audit.record(
        session,
        "schedule.export",
        actor=person.telegram_id,
        target_person_id=None,
        which=which,
        rows=count,
        area=sorted(visible) if visible is not None else "all",
    )


@guarded(Action.MANAGE_SCHEDULES)
async def on_person_card(update: Update, context: Context, admin: Person) -> None:
    """cs:p:<person>: one person's schedule for an admin, with buttons to move the dates."""
    parts = _parts(update)
    person_id = _id(parts[2]) if len(parts) == 3 else None
    if person_id is None:
        await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    schedule = await _pressed_schedule(update, context, admin, person_id)
    if schedule is None:
        return
    lang = admin.language
    rows = []
    if schedule.state == "ok":
        rows = [
            [(t(lang, "care.btn.move_rest"), f"cs:as:{person_id}:rest")],
            [(t(lang, "care.btn.move_exam"), f"cs:as:{person_id}:exam")],
            [(t(lang, "care.btn.details"), f"cs:pi:{person_id}")],
        ]
    card = schedule_card(lang, schedule, of_someone=True)
    await reply(update, card, reply_markup=buttons(rows))


# ---------------------------------------------------------------------------- /carepolicy


def _rest_value(lang: str, policy: BandPolicy) -> str:
    if policy.rest_every_days is None:
        return t(lang, "care.policy.off")
    return t(
        lang,
        "care.policy.rest_value",
        every=_days(lang, policy.rest_every_days),
        length=_days(lang, policy.rest_length_days),
    )


def _exam_value(lang: str, policy: BandPolicy) -> str:
    if not policy.has_exam:
        return t(lang, "care.policy.off")
    first = policy.exam_first_days
    every = policy.exam_every_days
    if first is None:
        return t(lang, "care.policy.exam_every", every=_days(lang, every))
    if every is None:
        return t(lang, "care.policy.exam_first", first=_days(lang, first))
    return t(lang, "care.policy.exam_value", first=_days(lang, first), every=_days(lang, every))


def _state(lang: str, policy: BandPolicy, zone: Any) -> str:
    if policy.confirmed:
        when = policy.updated_at.astimezone(zone).date().isoformat() if policy.updated_at else "-"
        return t(lang, "care.policy.state.confirmed", date=when)
    if policy.source == "setting":
        return t(lang, "care.policy.state.setting")
    return t(lang, "care.policy.state.proposed")


def policy_table(lang: str, policy: dict[Band, BandPolicy], zone: Any) -> str:
    lines = [t(lang, "care.policy.title")]
    for band in Band:
        p = policy[band]
        lines.append(
            t(
                lang,
                "care.policy.band_line",
                band=t(lang, f"care.band.{band}"),
                rest=_rest_value(lang, p),
                exam=_exam_value(lang, p),
                state=_state(lang, p, zone),
            )
        )
    return "\n\n".join(lines)


def band_card(
    lang: str, band: Band, policy: BandPolicy, zone: Any
) -> tuple[str, InlineKeyboardMarkup]:
    text = t(
        lang,
        "care.policy.band_card",
        band=t(lang, f"care.band.{band}"),
        rest=_rest_value(lang, policy),
        exam=_exam_value(lang, policy),
        contents=care_texts.contents_text(lang, policy),
        state=_state(lang, policy, zone),
    )
    rows = [
        [
            (t(lang, f"care.btn.policy.{code}"), f"cs:pv:{band}:{code}")
            for code in list(POLICY_FIELDS)[i : i + 2]
        ]
        for i in range(0, len(POLICY_FIELDS), 2)
    ]
    toggles = [
        (
            ("☑️ " if code in policy.exam_contents else "⬜ ") + t(lang, f"care.content.{code}"),
            f"cs:pt:{band}:{code}",
        )
        for code in care_policy.EXAM_CONTENTS
    ]
    rows += [toggles[i : i + 2] for i in range(0, len(toggles), 2)]
    rows.append([(t(lang, "care.btn.confirm"), f"cs:pc:{band}")])
    rows.append([(t(lang, "care.btn.back"), "cs:pol")])
    return text, buttons(rows)


async def _policy(context: Context) -> dict[Band, BandPolicy]:
    override = context.settings.care_policy
    return await context.db.run(care_policy.effective_policy, override)


@guarded(Action.MANAGE_SCHEDULES)
async def carepolicy_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    policy = await _policy(context)
    rows = [[(t(lang, f"care.band.{band}"), f"cs:pol:{band}")] for band in Band]
    zone = context.settings.zone
    await reply(update, policy_table(lang, policy, zone), reply_markup=buttons(rows))


@guarded(Action.MANAGE_SCHEDULES)
async def on_policy_button(update: Update, context: Context, admin: Person) -> None:
    parts = _parts(update)
    lang = admin.language
    zone = context.settings.zone
    override = context.settings.care_policy
    db = context.db
    what = parts[1]
    if what == "pol" and len(parts) == 2:
        await answer(update.callback_query)
        rows = [[(t(lang, f"care.band.{band}"), f"cs:pol:{band}")] for band in Band]
        await _show(update, policy_table(lang, await _policy(context), zone), buttons(rows))
        return
    band_name = parts[2] if len(parts) > 2 else ""
    if band_name not in set(Band):
        await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    band = Band(band_name)
    try:
        if what == "pol":
            await answer(update.callback_query)
        elif what == "pv" and len(parts) == 4 and parts[3] in POLICY_FIELDS:
            await answer(update.callback_query)
            field = POLICY_FIELDS[parts[3]]
            label = t(lang, f"care.btn.policy.{parts[3]}")
            choices = [
                (
                    t(lang, "care.policy.on_arrival")
                    if v == 0
                    else t(lang, "care.policy.days", count=v),
                    f"cs:ps:{band}:{parts[3]}:{v}",
                )
                for v in POLICY_CHOICES[field]
            ]
            rows = [choices[i : i + 3] for i in range(0, len(choices), 3)]
            if field != "rest_length_days":
                rows.append([(t(lang, "care.policy.off"), f"cs:ps:{band}:{parts[3]}:off")])
            rows.append([(t(lang, "care.btn.back"), f"cs:pol:{band}")])
            await _show(update, t(lang, "care.policy.choose", field=label), buttons(rows))
            return
        elif what == "ps" and len(parts) == 5 and parts[3] in POLICY_FIELDS:
            field = POLICY_FIELDS[parts[3]]
            raw = parts[4]
            if raw != "off" and parse_int(raw) not in POLICY_CHOICES[field]:
                await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
                return
            value = None if raw == "off" else parse_int(raw)
            await db.run(care_policy.set_value, admin.telegram_id, band, field, value, override)
            await answer(update.callback_query, _plain(t(lang, "care.policy.saved")))
        elif what == "pt" and len(parts) == 4:
            await db.run(care_policy.toggle_content, admin.telegram_id, band, parts[3], override)
            await answer(update.callback_query, _plain(t(lang, "care.policy.saved")))
        elif what == "pc" and len(parts) == 3:
            await db.run(care_policy.confirm_band, admin.telegram_id, band, override)
            await answer(update.callback_query, _plain(t(lang, "care.policy.confirmed")))
        else:
            await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
            return
    except care_policy.PolicyError:
        await _forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    policy = (await _policy(context))[band]
    text, markup = band_card(lang, band, policy, zone)
    await _show(update, text, markup)
    if what in {"ps", "pt", "pc"}:
        await context.timers.replan_care(None)


# ---------------------------------------------------------------------------- assembly


def build(form_timeout: int) -> list[BaseHandler[Any, Any, Any]]:
    return [
        build_conversation(form_timeout),
        CommandHandler("schedule", schedule_command),
        CommandHandler("overdue", overdue_command),
        CommandHandler("upcoming", upcoming_command),
        CommandHandler("carepolicy", carepolicy_command),
        CallbackQueryHandler(on_snooze, pattern=r"^cs:zz?:"),
        CallbackQueryHandler(on_reminder_time, pattern=r"^cs:rt(:|$)"),
        CallbackQueryHandler(on_csv, pattern=r"^cs:csv:"),
        CallbackQueryHandler(on_person_card, pattern=r"^cs:p:"),
        CallbackQueryHandler(on_details, pattern=r"^cs:(info$|pi:)"),
        CallbackQueryHandler(on_policy_button, pattern=r"^cs:(pol|pv|ps|pt|pc)(:|$)"),
        CallbackQueryHandler(on_oxygen_handle, pattern=r"^ox:(ack|dlv):"),
        CallbackQueryHandler(on_oxygen_cancel, pattern=r"^ox:cxl:"),
    ]


def build_conversation(form_timeout: int) -> ConversationHandler[Any]:
    text = filters.TEXT & ~filters.COMMAND
    step: list[BaseHandler[Any, Any, Any]] = [
        CallbackQueryHandler(on_form_button, pattern=r"^cf:"),
        MessageHandler(text, on_form_text),
        MessageHandler(~filters.COMMAND, on_form_unexpected),
    ]
    states: dict[object, list[BaseHandler[Any, Any, Any]]] = {state: step for state in STATES}
    states[ConversationHandler.TIMEOUT] = [TypeHandler(Update, on_timeout)]
    with warnings.catch_warnings():
        # One form per person at a time, tracked per chat and user (PTB warns about that).
        warnings.filterwarnings("ignore", message=".*per_message=False.*", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[
                CallbackQueryHandler(start_item_form, pattern=r"^cs:[db]:"),
                CallbackQueryHandler(start_set_form, pattern=r"^cs:as:"),
                CommandHandler("oxygen", oxygen_command),
                CallbackQueryHandler(oxygen_new, pattern=r"^ox:new$"),
            ],
            states=states,
            fallbacks=[CommandHandler("cancel", cancel)],
            name=NAME,
            persistent=True,
            conversation_timeout=timedelta(seconds=form_timeout),
            allow_reentry=True,
        )
