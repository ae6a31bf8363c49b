"""Validation of ``reply_markup`` the way the Bot API checks it."""

from __future__ import annotations

from typing import Any

from .entities import checked_link
from .errors import BUTTON_DATA_INVALID, BUTTON_URL_INVALID, bad_request

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MAX_BUTTONS = 100
MAX_CALLBACK_DATA_BYTES = 64


def _inline_button(button: Any) -> dict[str, Any]:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad_request(prefix + "InlineKeyboardButton must be an Object")
    if "text" not in button:
        raise bad_request(prefix + 'Can\'t find field "text"')
    if not isinstance(button["text"], str):
        raise bad_request(prefix + 'Field "text" must be of type String')
    data = button.get("callback_data")
    if data is not None and not isinstance(data, str):
        raise bad_request(prefix + 'Field "callback_data" must be of type String')
    if data and len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
        raise bad_request(BUTTON_DATA_INVALID)
    url = button.get("url")
    if url and checked_link(str(url)) is None:
        raise bad_request(BUTTON_URL_INVALID)
    web_app = button.get("web_app")
    if web_app is not None:
        check_web_app(web_app, "inline keyboard button Web App URL")
    if not any(button.get(action) not in (None, "") for action in _INLINE_ACTIONS):
        raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    return button


def check_web_app(web_app: Any, what: str) -> None:
    """A WebAppInfo: an object with an https url (Telegram refuses anything else)."""
    url = web_app.get("url") if isinstance(web_app, dict) else None
    if not isinstance(url, str) or not url:
        raise bad_request('can\'t parse WebAppInfo: Field "url" must be of type String')
    if not url.startswith("https://"):
        raise bad_request(f"{what} '{url}' is invalid: Only HTTPS links are allowed")


def check_private_only(markup: dict[str, Any] | None, chat_type: str) -> None:
    """web_app inline buttons are allowed only in private chats (BUTTON_TYPE_INVALID)."""
    if markup is None or chat_type == "private":
        return
    for row in markup.get("inline_keyboard", []):
        if any(isinstance(b, dict) and b.get("web_app") for b in row):
            raise bad_request("BUTTON_TYPE_INVALID")


def _rows(markup: dict[str, Any], field: str, owner: str) -> list[list[Any]]:
    rows = markup[field]
    if not isinstance(rows, list):
        raise bad_request(f'field "{field}" of the {owner} must be an Array')
    if not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{field}" of the {owner} must be an Array of Arrays')
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return rows


def validate_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Return the markup (reply keyboard buttons normalised to dicts) or None if empty."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("object expected as reply markup")
    if "inline_keyboard" in markup:
        rows = _rows(markup, "inline_keyboard", "InlineKeyboardMarkup")
        inline = [[_inline_button(button) for button in row] for row in rows]
        inline = [row for row in inline if row]
        return {"inline_keyboard": inline} if inline else None
    if "keyboard" in markup:
        rows = _rows(markup, "keyboard", "ReplyKeyboardMarkup")
        keyboard: list[list[dict[str, Any]]] = []
        for row in rows:
            new_row = []
            for button in row:
                if isinstance(button, str):
                    button = {"text": button}
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad_request(
                        "can't parse keyboard button: KeyboardButton must be a String or an Object"
                    )
                new_row.append(button)
            if new_row:
                keyboard.append(new_row)
        if not keyboard:
            return None
        return {**markup, "keyboard": keyboard}
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return dict(markup)
    return None


def is_inline(markup: dict[str, Any] | None) -> bool:
    return markup is None or "inline_keyboard" in markup
