"""How long a message is on a phone: the lines it takes on a 360-px-wide screen, where a
line holds about 45 Latin or 32 Chinese characters (issue 16: one screen per message, at
most about 12 lines for a message a person must act on). The measure is the bot's own
(services/screens.py), which pages what is longer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from services.screens import LINE, SCREEN, WIDE, lines_on_phone, width

if TYPE_CHECKING:
    from tests.support.botfixtures import RunningBot

__all__ = ["LINE", "SCREEN", "WIDE", "lines_on_phone", "page_button", "too_long", "width"]

# The row that turns pages (handlers.paging.page_buttons), in either language
_PAGE_BUTTONS = {"more": re.compile(r"^(More|更多) ▶ \d+/\d+$"), "back": re.compile(r"^◀ \d+/\d+$")}


def page_button(message, which: str = "more") -> str | None:
    """The data of the button under `message` that opens the next page ("more") or the
    one before ("back"); None when there is none (the last or the first page)."""
    for button in message.buttons:
        if _PAGE_BUTTONS[which].match(button["text"]):
            return button["callback_data"]
    return None


# What may be longer: the consent's full text, which a person asks for.
ASKED_FOR = ("PIPL", "个人信息保护法", "never their health data", "看不到其健康数据")


def too_long(bot: RunningBot) -> list[tuple[int, int, str]]:
    """Every message the bot sent (text or caption), in every chat, above one screen: as
    it was sent and as each edit left it while it still had buttons to press (a question
    edited to show the answer given is a record, no longer something to act on)."""
    found = []
    for chat in bot.emulator.world.chats.values():
        for message in chat.messages.values():
            if not message.from_bot:
                continue
            versions = [*message.history, message]
            shown = [versions[0]] + [v for v in versions[1:] if v.reply_markup]
            for version in shown:
                text = version.text if version.text is not None else version.caption or ""
                if any(a in text for a in ASKED_FOR):
                    continue
                lines = lines_on_phone(text)
                if lines > SCREEN:
                    found.append((chat.id, lines, text))
    return found
