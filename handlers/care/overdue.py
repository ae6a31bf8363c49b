"""/overdue and /upcoming for an area, page by page (cs:<o|u>:<page>), their CSV
(cs:csv:<o|u>), and an admin's view of one person's schedule (cs:p:<person>)."""

from __future__ import annotations

from datetime import date
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.care.common import care_config, forged
from handlers.care.schedule import pressed_schedule, schedule_card
from handlers.common import Context, answer, buttons, guarded, reply
from handlers.paging import Page, page_buttons, turn
from models import Person
from services import audit, people
from services.care import areas, rules
from services.care import texts as care_texts
from services.i18n import t
from services.permissions import Action, check, visible_prefectures
from services.postings import load_postings

AREA_LINES = 3  # rows of /overdue or /upcoming a page (one phone screen); the CSV has all
MANAGE_BUTTONS = AREA_LINES  # an admin's button per person of the page


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
    first: int = 0,
) -> tuple[str, int]:
    """One page of the report: the title, the count of each prefecture (counts first), then
    `rows`, the page's rows (items `first`.. of the list); returns the text and how many
    rows the page leaves out (the ◀️ ▶️ buttons and the CSV have them). `counts` (rows per
    prefecture) and `total` come from areas.area_summary; by default from `rows`."""
    postings = load_postings()
    if which == "o":
        lines = [t(lang, "care.overdue.title", date=today.isoformat())]
    else:
        lines = [t(lang, "care.upcoming.title", count=rules.UPCOMING_DAYS, date=today.isoformat())]
    if counts is None:
        counts = {}
        for row in rows:
            counts[row.person.prefecture or ""] = counts.get(row.person.prefecture or "", 0) + 1
    named = [
        t(
            lang,
            "care.area.prefecture",
            prefecture=(
                postings.name(prefecture, lang, short=True)
                if postings.prefecture(prefecture)
                else "-"
            ),
            count=count,
        )
        for prefecture, count in counts.items()
    ]
    lines.append(" · ".join(named))
    for row in rows:
        values = {
            "name": row.person.name,
            "posting": care_texts.posting_text(lang, row.person),
            "altitude": row.person.altitude_m if row.person.altitude_m is not None else "-",
            "item": care_texts.item_name(lang, row.due.kind),
            "due": row.due.due.strftime("%m-%d"),  # the year is in the title
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
    left = (len(rows) if total is None else total) - len(rows)
    return "\n".join(lines), left


async def _area_page(
    context: Context, person: Person, which: str, number: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Page `number` of /overdue or /upcoming with its buttons: ◀ n/m and More ▶, the CSV, and for
    an admin one per person of the page. The database counts and builds only the page."""
    lang = person.language
    assert person.id is not None
    db = context.db
    visible = visible_prefectures(person, await db.run(people.duty_areas, person.id))
    if visible is not None and not visible:
        return t(lang, "care.area.no_area"), None
    overdue = which == "o"

    async def read(page: Page) -> areas.AreaSummary:
        return await db.run(
            areas.area_summary,
            care_config(context),
            visible,
            overdue=overdue,
            limit=AREA_LINES,
            offset=page.offset,
        )

    summary = await read(Page(number, AREA_LINES, 0))
    page = Page(number, AREA_LINES, summary.total)
    if page.within() != page:  # a page gone since (the list shrank): the last one
        page = page.within()
        summary = await read(page)
    rows = summary.rows
    if not rows:
        key = "care.area.none_overdue" if overdue else "care.area.none_upcoming"
        return t(lang, key, count=rules.UPCOMING_DAYS), None
    today = people.local_today(context.settings.zone)
    text, _ = area_text(lang, rows, which, today, counts=summary.counts, total=summary.total)
    markup_rows = []
    nav = page_buttons(
        lang,
        page.number,
        page.pages,
        (lambda n: f"cs:o:{n}") if overdue else (lambda n: f"cs:u:{n}"),
    )
    if nav:
        markup_rows.append(nav)
    markup_rows.append([(t(lang, "care.btn.csv"), f"cs:csv:{which}")])
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
    return text, buttons(markup_rows)


async def _area_command(update: Update, context: Context, person: Person, which: str) -> None:
    text, markup = await _area_page(context, person, which, 0)
    await reply(update, text, reply_markup=markup)


@guarded(Action.VIEW_AREA)
async def overdue_command(update: Update, context: Context, person: Person) -> None:
    await _area_command(update, context, person, "o")


@guarded(Action.VIEW_AREA)
async def upcoming_command(update: Update, context: Context, person: Person) -> None:
    await _area_command(update, context, person, "u")


@guarded(Action.VIEW_AREA)
async def on_area_page(update: Update, context: Context, person: Person) -> None:
    """cs:<o|u>:<page>: another page of /overdue or /upcoming, edited in place."""
    which = pressed(update).step  # o or u: handlers.callbacks let nothing else through
    await turn(update, context, lambda number: _area_page(context, person, which, number))


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
        CallbackQueryHandler(on_area_page, pattern=r"^cs:(o|u):"),
        CallbackQueryHandler(on_person_card, pattern=r"^cs:p:"),
    ]
