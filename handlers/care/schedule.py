"""A person's care schedule: /schedule, its texts and buttons, the reminder time, snooze."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.care.common import care_config, care_error, days_text, forged, hhmm
from handlers.common import Context, answer, buttons, drop_keyboard, guarded, refuse, reply
from models import CareKind, Person, Status
from services.care import records, rules
from services.care import texts as care_texts
from services.care.rules import CareError, Schedule
from services.care_policy import BandPolicy
from services.i18n import t
from services.permissions import Action, status_denial
from services.validation import parse_int

REMINDER_HOURS = (7, 8, 9, 12, 18, 20)


# ---------------------------------------------------------------------------- texts


def _policy_line(lang: str, kind: CareKind, policy: BandPolicy) -> str:
    if kind == CareKind.REST:
        return t(
            lang,
            "care.sched.rest_policy",
            every=days_text(lang, policy.rest_every_days),
            length=days_text(lang, policy.rest_length_days),
        )
    if policy.exam_first_days is not None and policy.exam_every_days is not None:
        return t(
            lang,
            "care.sched.exam_policy",
            first=days_text(lang, policy.exam_first_days),
            every=days_text(lang, policy.exam_every_days),
        )
    if policy.exam_every_days is not None:
        every = days_text(lang, policy.exam_every_days)
        return t(lang, "care.sched.exam_policy_every", every=every)
    first = days_text(lang, policy.exam_first_days or 0)
    return t(lang, "care.sched.exam_policy_first", first=first)


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
            time=hhmm(schedule.timing.seconds),
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
    press = pressed(update)
    target = press.number(2) if len(press.parts) == 3 else person.id
    assert target is not None
    schedule = await pressed_schedule(update, context, person, target)
    if schedule is not None and schedule.state == "ok":
        await reply(update, schedule_details(person.language, schedule))


async def pressed_schedule(
    update: Update, context: Context, viewer: Person, person_id: int
) -> Schedule | None:
    """The schedule a button asks for, the press answered (None: gone, and said so)."""
    try:
        schedule = await context.db.run(records.schedule_for, person_id, care_config(context))
    except CareError:
        await answer(update.callback_query, t(viewer.language, "care.stale"), alert=True)
        return None
    await answer(update.callback_query)
    return schedule


@guarded(Action.OWN_DATA)
async def on_reminder_time(update: Update, context: Context, person: Person) -> None:
    """cs:rt (choose) and cs:rt:<hh|def> (set)."""
    press = pressed(update)
    lang = person.language
    assert person.id is not None
    settings = context.settings
    if len(press.parts) == 2:
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
    value = press.word(2)
    if value == "def":
        seconds = None
    elif (hour := parse_int(value, max_digits=2)) is not None and hour in REMINDER_HOURS:
        seconds = hour * 3600
    else:
        await forged(update, context, person, Action.OWN_DATA)
        return
    await context.db.run(records.set_reminder_time, person.id, seconds)
    await answer(update.callback_query)
    await drop_keyboard(update)
    shown = hhmm(seconds) if seconds is not None else settings.care_reminder_time
    await reply(update, t(lang, "care.rt.set", time=shown))
    await context.timers.replan_care(person.id)


# ---------------------------------------------------------------------------- snooze


@guarded(Action.OWN_DATA)
async def on_snooze(update: Update, context: Context, person: Person) -> None:
    """cs:z:<item>:<due> offers 1/3/7 days; cs:zz:<item>:<due>:<days> snoozes."""
    press = pressed(update)
    lang = person.language
    assert person.id is not None
    item_id = press.number(2) if len(press.parts) > 3 else None
    due = care_texts.parse_compact(press.word(3))
    if item_id is None or due is None:
        await forged(update, context, person, Action.OWN_DATA)
        return
    denial = status_denial(person)
    if denial is not None:
        await refuse(update, context, person, Action.OWN_DATA, denial)
        return
    cfg = care_config(context)
    if press.step == "z":
        try:
            await context.db.run(records.check_action, person.id, item_id, due, cfg)
        except CareError as error:
            await care_error(update, context, person, error)
            return
        await answer(update.callback_query)
        rows = [
            [
                (t(lang, "care.btn.snooze_days", count=d), f"cs:zz:{item_id}:{press.word(3)}:{d}")
                for d in rules.SNOOZE_DAYS
            ]
        ]
        await reply(update, t(lang, "care.snooze.ask"), reply_markup=buttons(rows))
        return
    days = press.number(4)
    if days not in rules.SNOOZE_DAYS:
        await forged(update, context, person, Action.OWN_DATA)
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
        await care_error(update, context, person, error)
        return
    await answer(update.callback_query)
    await drop_keyboard(update)
    until = schedule.today + timedelta(days=days)
    await reply(update, t(lang, "care.snoozed", date=until.isoformat()))
    await context.timers.replan_care(person.id)


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("schedule", schedule_command),
        CallbackQueryHandler(on_snooze, pattern=r"^cs:zz?:"),
        CallbackQueryHandler(on_reminder_time, pattern=r"^cs:rt(:|$)"),
        CallbackQueryHandler(on_details, pattern=r"^cs:(info$|pi:)"),
    ]
