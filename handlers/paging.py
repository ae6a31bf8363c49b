"""The one way to page a list in the chat (issue 16: one screen per message): a message
shows one page and, under it, ◀️ n/m ▶️; a press edits the message in place to the page it
names. The page is a number in the button's data (its shape is in handlers.callbacks'
GRAMMAR); the service reads that page with LIMIT and OFFSET, so a long list never loads
more than a page. A page past the end (the list shrank since) shows the last one.

Used by /history, /overdue, /upcoming, /oxygen (the cadre's requests and the officer's
open ones) and the admin's /people list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Update

from handlers.callbacks import pressed
from handlers.common import Context, answer, answer_stale, edit_or_reply

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


def nav_row(page: Page, data: Callable[[int], str]) -> list[tuple[str, str]]:
    """◀️ n/m ▶️ for a list of several pages ([] for one page): `data(number)` is the
    button data of a page. The middle button shows the current page again (it refreshes
    it: a message that already shows it is left as it is)."""
    if page.pages <= 1:
        return []
    row = []
    if page.number > 0:
        row.append(("◀️", data(page.number - 1)))
    row.append((f"{page.number + 1}/{page.pages}", data(page.number)))
    if page.number + 1 < page.pages:
        row.append(("▶️", data(page.number + 1)))
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
