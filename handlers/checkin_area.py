"""The officers' view of check-ins in their area: /today (and its pages), /export (CSV and
XLSX) and a person's 30-day chart. The check-in itself is handlers/checkin.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.checkin import config, local_today
from handlers.common import Context, answer, buttons, edit_or_reply, guarded, markup_of, reply
from handlers.paging import page_buttons
from models import Person
from services import board_links, examples, outbox
from services.health import reports
from services.health.checkins import CheckinError
from services.i18n import t
from services.people import name_of
from services.permissions import Action

EXPORT_CHOICES = (7, 30, 90)


def _names(lang: str, group: reports.Group) -> str:
    """The names shown, then how many more there are (their list is a button away)."""
    names = ", ".join(name_of(p, "-") for p in group.people)
    if not group.more:
        return names
    more = t(lang, "health.today.more", count=group.more)
    return t(lang, "health.today.names_more", names=names, more=more) if names else more


def _state_buttons(
    lang: str, counts: dict[str, int], current: str | None = None
) -> list[list[tuple[str, str]]]:
    """A button per state with people, its icon and count (td:<state>:0), three a row;
    `current` (the list shown) marked."""
    listed = [s for s in reports.LISTED if counts.get(s)]
    icons = {s: t(lang, f"health.today.state.{s}").split(" ", 1)[0] for s in listed}
    jumps = [
        (("· " if s == current else "") + f"{icons[s]} {counts[s]}", f"td:{s}:0") for s in listed
    ]
    return [jumps[i : i + 3] for i in range(0, len(jumps), 3)]


def _all_requested(args: list[str]) -> bool:
    return bool(args) and args[0].lower() in {"all", "全部"}


@guarded(Action.VIEW_AREA)
async def today_command(update: Update, context: Context, person: Person) -> None:
    """/today: the summary with names; /today all: everyone, page by page."""
    lang = person.language
    if _all_requested(list(context.args or [])):
        page = await context.db.run(reports.everyone_page, person, config(context), "all", 0)
        text, markup = everyone_text(lang, page, local_today(context))
        await reply(update, text, reply_markup=markup)
        return
    areas = await context.db.run(reports.today, person, config(context))
    rows: list[list[tuple[str, str]]] = []
    if areas:  # each state's list, and everyone's, open below the summary
        counts = {s: sum(getattr(a, s).count for a in areas) for s in reports.LISTED}
        rows = [*_state_buttons(lang, counts), [(t(lang, "health.today.all.button"), "td:all:0")]]
    data = outbox.inline_keyboard(rows) if rows else None  # JSON: the board's button joins it
    chat = update.effective_chat
    if chat is not None and chat.type == "private":  # Telegram: web_app buttons only there
        data = board_links.with_open_button(data, context.settings.webapp_url, lang, "today")
    await reply(update, today_text(lang, areas, local_today(context)), reply_markup=markup_of(data))


SUMMARY_GROUPS = ("red", "amber")  # named on /today; every state is also a button


def _merged(areas: list[reports.AreaDay], state: str) -> reports.Group:
    """One state's group over all the areas: counted, its first names in area order."""
    people = [p for area in areas for p in getattr(area, state).people]
    count = sum(getattr(area, state).count for area in areas)
    return reports.Group(count, people[: reports.NAMES_SHOWN])


def today_text(lang: str, areas: list[reports.AreaDay], day: date) -> str:
    """/today, one screen (issue 16): the counts of each prefecture first (one line each
    when there are several), then the most urgent by name: RED, AMBER and the identical
    readings to verify, the first reports.NAMES_SHOWN of each and how many more. The
    other states are counted; their names are a button away (td:<state>:0)."""
    from services.postings import load_postings

    if not areas:
        return t(lang, "health.today.empty")
    postings = load_postings()
    lines = [t(lang, "health.today.title", date=day.isoformat())]
    key = "health.today.area_short" if len(areas) > 1 else "health.today.area"
    for area in areas:
        lines.append(
            t(
                lang,
                key,
                area=postings.name(area.prefecture, lang, short=True),
                checked=area.checked_in,
                total=area.total,
                amber=area.amber.count,
                red=area.red.count,
                missing=area.missing.count,
                paused=area.paused.count,
                none=area.none.count,
            )
        )
    for state in SUMMARY_GROUPS:
        group = _merged(areas, state)
        if group.count:
            lines.append(
                t(
                    lang,
                    "health.today.group",
                    label=t(lang, f"health.today.state.{state}"),
                    count=group.count,
                    names=_names(lang, group),
                )
            )
    suspicious = _merged(areas, "suspicious")
    if suspicious.count:
        lines.append(
            t(
                lang,
                "health.today.suspicious",
                count=suspicious.count,
                names=_names(lang, suspicious),
            )
        )
    return "\n".join([*lines, t(lang, "health.disclaimer")])


def everyone_text(lang: str, page: reports.EveryonePage, day: date) -> tuple[str, Any]:
    """/today all: one page (reports.PAGE_SIZE names, one screen) of one state, with
    ◀ and More ▶ through the pages of every state in turn, and a button per state with its
    count."""
    from services.i18n import escape
    from services.postings import load_postings

    listed = [s for s in reports.LISTED if page.counts.get(s)]
    if not listed:
        return t(lang, "health.today.empty"), None
    postings = load_postings()
    count = page.counts.get(page.state, 0)
    lines = [
        t(
            lang,
            "health.today.all.title",
            date=day.isoformat(),
            label=t(lang, f"health.today.state.{page.state}"),
            people=t(lang, "health.today.all.people", count=count),
            page=page.page + 1,
            pages=page.pages,
        )
    ]
    first = page.page * reports.PAGE_SIZE + 1
    for number, person in enumerate(page.people, start=first):
        line = f"{number}. {escape(name_of(person, '-'))}"
        if page.several and person.prefecture:
            line += " · " + escape(postings.name(person.prefecture, lang, short=True))
        if person.id in page.flagged:
            line += " ❓"
        lines.append(line)
    if page.flagged:
        lines.append(t(lang, "health.today.all.flagged"))
    # ◀ and More ▶ (the one paging row) step through the states' pages as one list
    pages_of = {s: -(-page.counts[s] // reports.PAGE_SIZE) for s in listed}
    before = listed[: listed.index(page.state)] if page.state in listed else []

    def data(number: int) -> str:
        for state in listed:
            if number < pages_of[state]:
                return f"td:{state}:{number}"
            number -= pages_of[state]
        return f"td:{listed[-1]}:{pages_of[listed[-1]] - 1}"

    nav = page_buttons(
        lang, sum(pages_of[s] for s in before) + page.page, sum(pages_of.values()), data
    )
    rows = [nav] if nav else []
    rows += _state_buttons(lang, page.counts, page.state)
    return "\n".join(lines), buttons(rows)


def _on_summary(query: Any) -> bool:
    """Whether the button pressed is under the /today summary (the one message with the
    📋 Everyone button) rather than under a list it opened."""
    markup = getattr(query.message, "reply_markup", None)
    rows = markup.inline_keyboard if markup is not None else ()
    return any(button.callback_data == "td:all:0" for row in rows for button in row)


@guarded(Action.VIEW_AREA)
async def on_today_button(update: Update, context: Context, person: Person) -> None:
    """td:<state or all>:<page>: a page of /today all, edited in place."""
    query = update.callback_query
    assert query is not None and query.data is not None
    press = pressed(update)  # the shape is checked by handlers.callbacks
    state, number = press.step, press.number(2)
    if state not in (*reports.LISTED, "all") or number is None:
        await answer(query, t(person.language, "health.stale"), alert=True)
        return
    await answer(query)
    page = await context.db.run(reports.everyone_page, person, config(context), state, number)
    text, markup = everyone_text(person.language, page, local_today(context))
    if _on_summary(query):  # the list comes below the /today summary, which stays
        await reply(update, text, reply_markup=markup)
    else:
        await edit_or_reply(update, text, markup)


@guarded(Action.VIEW_AREA)
async def export_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    args = list(context.args or [])
    suggested = examples.values(context.settings.zone)  # /export's example dates
    if args:
        dates = reports.parse_range(args)
        if dates is None:
            await reply(update, t(lang, "health.export.bad_range", **suggested))
            return
        await _send_export(update, context, person, *dates)
        return
    rows = [[(t(lang, "health.export.days", count=d), f"cx:{d}") for d in EXPORT_CHOICES]]
    await reply(update, t(lang, "health.export.choose", **suggested), reply_markup=buttons(rows))


@guarded(Action.VIEW_AREA)
async def on_export_button(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    value = pressed(update).step  # cx:<days>
    if value not in {str(d) for d in EXPORT_CHOICES}:
        await answer(query, t(person.language, "health.stale"), alert=True)
        return
    await answer(query)
    start, end = reports.default_range(int(value), local_today(context))
    await _send_export(update, context, person, start, end)


async def _send_export(
    update: Update, context: Context, person: Person, start: date, end: date
) -> None:
    lang = person.language
    try:
        data = await context.db.run(reports.export, person, start, end, config(context))
    except CheckinError as error:  # health.export.bad_range suggests dates
        await reply(update, t(lang, error.key, **examples.values(context.settings.zone)))
        return
    message = update.effective_message
    assert message is not None
    name = f"checkins-{start.strftime('%Y%m%d')}-{end.strftime('%Y%m%d')}"
    caption = t(
        lang,
        "health.export.caption",
        start=start.isoformat(),
        end=end.isoformat(),
        count=len(data.rows),
    )
    await message.chat.send_document(
        InputFile(reports.to_csv(data), filename=f"{name}.csv"), caption=caption
    )
    await message.chat.send_document(InputFile(reports.to_xlsx(data), filename=f"{name}.xlsx"))


@guarded(Action.VIEW_AREA)
async def on_chart_button(update: Update, context: Context, person: Person) -> None:
    """ct:<person id> under an officer notice: that cadre's 30-day chart, area permitting."""
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = person.language
    found = None
    if (person_id := pressed(update).number(1)) is not None:
        found = await context.db.run(reports.chart_for_viewer, person, person_id, config(context))
    if found is None:
        await answer(query, t(lang, "health.chart_denied"), alert=True)
        return
    await answer(query)
    cadre, png = found
    message = update.effective_message
    assert message is not None
    await message.chat.send_photo(
        InputFile(png, filename="trend.png"),
        caption=t(
            lang,
            "health.officer.chart_caption",
            name=name_of(cadre, "-"),
        ),
    )


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("today", today_command),
        CommandHandler("export", export_command),
        CallbackQueryHandler(on_export_button, pattern=r"^cx:"),
        CallbackQueryHandler(on_chart_button, pattern=r"^ct:"),
        CallbackQueryHandler(on_today_button, pattern=r"^td:"),
    ]
