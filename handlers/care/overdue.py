"""/overdue and /upcoming for an area, their CSV (cs:csv:<o|u>), and an admin's view of one
person's schedule (cs:p:<person>)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.care.common import care_config, forged
from handlers.care.schedule import pressed_schedule, schedule_card
from handlers.common import Context, answer, buttons, guarded, reply
from models import Person
from services import audit, people
from services.care import areas, rules
from services.care import texts as care_texts
from services.i18n import t
from services.permissions import Action, check, visible_prefectures
from services.postings import load_postings

Callback = Callable[[Update, Context], Awaitable[Any]]

AREA_LINES = 40  # lines of /overdue or /upcoming in the chat; the CSV has everything
MANAGE_BUTTONS = 8


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
    (areas.area_summary); by default they are counted from `rows`."""
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
            overdue = row.due.overdue_days(row.today)
            line = t(lang, "care.area.line_overdue", count=overdue, **values)
        else:
            ahead = (row.due.due - row.today).days
            line = t(lang, "care.area.line_upcoming", count=ahead, **values)
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
    which = pressed(update).word(2)  # cs:csv:<o|u>
    if which not in {"o", "u"}:
        await forged(update, context, person, Action.VIEW_AREA)
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
    person_id = pressed(update).number(2)
    if person_id is None:
        await forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    schedule = await pressed_schedule(update, context, admin, person_id)
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


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("overdue", overdue_command),
        CommandHandler("upcoming", upcoming_command),
        CallbackQueryHandler(on_csv, pattern=r"^cs:csv:"),
        CallbackQueryHandler(on_person_card, pattern=r"^cs:p:"),
    ]
