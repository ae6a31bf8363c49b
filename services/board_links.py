"""The board's address and its "Open board" button (the Mini App, docs/board.md), for the
messages and menus that offer it. The base address is CADRE_WEBAPP_URL, passed in by the
caller; without one there is no board and nothing is added."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.i18n import t


def url(base: str | None, path: str = "") -> str | None:
    """The board's public address (a view's fragment appended), or None without a board."""
    if base is None:
        return None
    return base + (f"?v={quote(path, safe='/')}" if path else "")


def open_button_row(base: str | None, lang: str, path: str = "") -> list[dict[str, Any]] | None:
    """An inline keyboard row with the "Open board" web_app button (private chats only, as
    Telegram requires), or None when no board is configured."""
    address = url(base, path)
    if address is None:
        return None
    return [{"text": t(lang, "board.open"), "web_app": {"url": address}}]


def with_open_button(
    markup: dict[str, Any] | None, base: str | None, lang: str, path: str = ""
) -> Any:
    """`markup` (Bot API JSON of an inline keyboard) with the "Open board" row added."""
    row = open_button_row(base, lang, path)
    if row is None:
        return markup
    rows = list((markup or {}).get("inline_keyboard", []))
    return {"inline_keyboard": [*rows, row]}
