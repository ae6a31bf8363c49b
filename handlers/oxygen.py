"""Oxygen requests after the form (handlers/care/forms.py): a duty officer or an admin takes
one (ox:ack:<id>) or marks it delivered (ox:dlv:<id>); the cadre cancels their own
(ox:cxl:<id>). /oxygen's lists, a page at a time (handlers.paging): one's own requests
(ox:m:<page>) and, for an officer, the open ones of the area, the most urgent first
(ox:a:<page>). Escalation is a timer (scheduler/care.py)."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers.callbacks import pressed
from handlers.care.common import forged, oxygen_config
from handlers.common import Context, answer, buttons, drop_keyboard, guarded, reply
from handlers.paging import Page, page_buttons, turn
from models import Person
from services import oxygen, people
from services.i18n import t
from services.people import name_of
from services.permissions import Action, visible_prefectures

MINE_PAGE = 2  # one's own requests a page (up to five lines each with a typed place)
AREA_PAGE = 1  # an area's open requests a page: one in full (who, where, what), its buttons


# ---------------------------------------------------------------------------- /oxygen lists


async def area_of(context: Context, person: Person) -> frozenset[str] | None:
    assert person.id is not None
    return visible_prefectures(person, await context.db.run(people.duty_areas, person.id))


async def mine_view(
    context: Context, person: Person, number: int
) -> tuple[str, InlineKeyboardMarkup]:
    """Page `number` of one's requests, newest first: a cancel button for each in progress,
    ◀ n/m and More ▶, and a new request."""
    assert person.id is not None
    lang, db, zone = person.language, context.db, context.settings.zone
    page = Page(number, MINE_PAGE, await db.run(oxygen.count_of, person.id)).within()
    mine = await db.run(oxygen.requests_of, person.id, MINE_PAGE, page.offset)
    lines = [t(lang, "care.ox.mine_title")]
    rows: list[list[tuple[str, str]]] = []
    for request in mine:
        lines.append(await db.run(oxygen.request_summary, request, lang, zone))
        if request.status in oxygen.IN_PROGRESS:
            rows.append([(t(lang, "care.ox.btn.cancel", id=request.id), f"ox:cxl:{request.id}")])
    nav = page_buttons(lang, page.number, page.pages, lambda n: f"ox:m:{n}")
    rows += [nav] if nav else []
    rows.append([(t(lang, "care.ox.btn.new"), "ox:new")])
    return "\n".join(lines), buttons(rows)


async def area_view(
    context: Context, person: Person, number: int, *, new_button: bool
) -> tuple[str, InlineKeyboardMarkup]:
    """Page `number` of the open requests of the officer's area: how many first, then the
    most urgent in full with its buttons (acknowledge, delivered), ◀ n/m and More ▶ to the others;
    `new_button`: and a new request of one's own."""
    lang, db, zone = person.language, context.db, context.settings.zone
    area = await area_of(context, person)
    page = Page(number, AREA_PAGE, await db.run(oxygen.count_in_area, area)).within()
    found = await db.run(oxygen.open_in_area, area, AREA_PAGE, page.offset)
    texts = [t(lang, "care.ox.area_count", count=page.total)]
    rows: list[list[tuple[str, str]]] = []
    for request in found:
        texts.append(await db.run(oxygen.notice_text, request, lang, zone, escalated=False))
        for row in oxygen.responder_rows(request, lang):
            rows.append([(f"{label} #{request.id}", data) for label, data in row])
    nav = page_buttons(lang, page.number, page.pages, lambda n: f"ox:a:{n}")
    rows += [nav] if nav else []
    if new_button:
        rows.append([(t(lang, "care.ox.btn.new"), "ox:new")])
    return "\n\n".join(texts), buttons(rows)


@guarded(Action.REQUEST_OXYGEN)
async def on_mine_page(update: Update, context: Context, person: Person) -> None:
    """ox:m:<page>: another page of one's requests, edited in place."""
    await turn(update, context, lambda number: mine_view(context, person, number))


@guarded(Action.HANDLE_OXYGEN)
async def on_area_page(update: Update, context: Context, person: Person) -> None:
    """ox:a:<page>: another open request of the area, edited in place."""
    assert person.id is not None
    own = await context.db.run(oxygen.count_of, person.id)
    await turn(
        update, context, lambda number: area_view(context, person, number, new_button=not own)
    )


# ---------------------------------------------------------------------------- oxygen buttons


@guarded(Action.HANDLE_OXYGEN)
async def on_oxygen_handle(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    request_id = press.number(2)
    lang = person.language
    if request_id is None:
        await forged(update, context, person, Action.HANDLE_OXYGEN)
        return
    fn = oxygen.acknowledge if press.step == "ack" else oxygen.deliver
    change = await context.db.run(fn, person, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, t(lang, "care.forged"), alert=True)
        return
    if change.outcome == "won":
        key = "care.ox.ack.won" if press.step == "ack" else "care.ox.dlv.won"
        await answer(update.callback_query, t(lang, key))
        return
    if change.outcome == "taken":
        name = name_of(change.by, "-")
        await answer(update.callback_query, t(lang, "care.ox.ack.taken", name=name), True)
        return
    await answer(update.callback_query, t(lang, "care.ox.closed"), alert=True)


@guarded(Action.REQUEST_OXYGEN)
async def on_oxygen_cancel(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    request_id = press.number(2)
    lang = person.language
    assert person.id is not None
    if request_id is None:
        await forged(update, context, person, Action.REQUEST_OXYGEN)
        return
    change = await context.db.run(oxygen.cancel, person.id, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, t(lang, "care.forged"), alert=True)
        return
    if change.outcome != "won":
        await answer(update.callback_query, t(lang, "care.ox.closed"), alert=True)
        return
    await answer(update.callback_query)
    await drop_keyboard(update)
    await reply(update, t(lang, "care.ox.cancelled", id=request_id))


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CallbackQueryHandler(on_oxygen_handle, pattern=r"^ox:(ack|dlv):"),
        CallbackQueryHandler(on_oxygen_cancel, pattern=r"^ox:cxl:"),
        CallbackQueryHandler(on_mine_page, pattern=r"^ox:m:"),
        CallbackQueryHandler(on_area_page, pattern=r"^ox:a:"),
    ]
