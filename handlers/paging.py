"""The one way to page a list in the chat (issue 16: one screen per message): a message
shows one page and, under it, *◀ 1/3* and *More ▶ 3/3* (`page_buttons`); a press edits
the message in place to the page it names. The page is a number in the button's data (its
shape is in handlers.callbacks' GRAMMAR); the service reads that page with LIMIT and
OFFSET, so a long list never loads more than a page. A page past the end (the list shrank
since) shows the last one.

Lists read a page at a time (`Page`): /history, /overdue, /upcoming, /oxygen (the cadre's
requests and the officer's open ones) and the admin's /people list. Texts cut into screens
by `services.screens.paginate` (a policy answer, /kb, /kbstats, /dutygroup) share the row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Update

from handlers.callbacks import pressed
from handlers.common import Context, answer, answer_stale, edit_or_reply
from services.i18n import t

# A list's page: its text and buttons, for a page number
View = Callable[[int], Awaitable[tuple[str, InlineKeyboardMarkup | None]]]


@dataclass(frozen=True)
class Page:
    """Which page of `total` items, `size` a page, is shown: `number` from 0."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return self.number * self.size

    def within(self) -> Page:
        """This page, or the last one when the list is now shorter."""
        return Page(min(max(0, self.number), self.pages - 1), self.size, self.total)


def page_buttons(
    lang: str, page: int, pages: int, data: Callable[[int], str]
) -> list[tuple[str, str]]:
    """The one row that turns pages, under a list read a page at a time (`Page`) or a text
    cut into screens (`services.screens.paginate`): back to the page before and "More ▶"
    to the next, each naming the page it opens (page numbers from 0; `data` gives a page's
    button data). Empty for one page. The press edits the message in place (`turn`)."""
    row = []
    if page > 0:
        row.append((t(lang, "page.back", page=page, pages=pages), data(page - 1)))
    if page + 1 < pages:
        row.append((t(lang, "page.more", page=page + 2, pages=pages), data(page + 1)))
    return row


async def turn(update: Update, context: Context, view: View) -> None:
    """A page button pressed (its data ends with the page number): answered once, then
    the message edited in place to `view(number)`. Data without a number, which no button
    of ours carries, gets the stale-button answer and is audited."""
    press = pressed(update)
    number = press.number(len(press.parts) - 1) if len(press.parts) > 1 else None
    if number is None:
        await answer_stale(update, context, forged=True)
        return
    await answer(update.callback_query)
    text, markup = await view(number)
    await edit_or_reply(update, text, markup)
