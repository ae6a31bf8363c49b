"""Telegram's text formatting: HTML, MarkdownV2 and legacy Markdown parse modes.

The parsers (``parse_html``, ``parse_markdown``) follow TDLib's behaviour, which is what
the Bot API runs: they work on the UTF-8 bytes of the text, report errors with byte
offsets and Telegram's wording, produce entities with UTF-16 offsets, and leave unknown
``&name;`` references untouched. After parsing, leading and trailing whitespace is trimmed
like Telegram does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .entities import Entity, EntityParseError, FormattedText, utf16_len
from .errors import ApiError, bad_request
from .parse_html import parse_html
from .parse_markdown import parse_markdown, parse_markdown_v2

_TRIM = " \t\r\n\x0b\x0c"
__all__ = ["FormattedText", "format_text", "validate_entities"]


def _trim(parsed: FormattedText) -> FormattedText:
    text = parsed.text
    stripped_left = text.lstrip(_TRIM)
    head = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip(_TRIM)
    total = utf16_len(result)
    entities: list[Entity] = []
    for entity in parsed.entities:
        start = max(entity["offset"] - head, 0)
        end = min(entity["offset"] + entity["length"] - head, total)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(result, entities)


PARSERS: dict[str, Callable[[str], FormattedText]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def format_text(
    text: str, parse_mode: str | None, entities: list[Entity] | None = None
) -> FormattedText:
    """Parse ``text`` the way the Bot API does; raise :class:`ApiError` on bad markup."""
    mode = (parse_mode or "").lower()
    if text and mode and mode != "none":
        parser = PARSERS.get(mode)
        if parser is None:
            raise bad_request("unsupported parse_mode")
        try:
            parsed = parser(text)
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    else:
        parsed = FormattedText(text, [dict(e) for e in entities or [] if isinstance(e, dict)])
    return _trim(parsed)


def validate_entities(entities: Any) -> None:
    if entities is None:
        return
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
        raise ApiError(400, "Bad Request: can't parse entities JSON object")
    for entity in entities:
        if not isinstance(entity.get("offset"), int) or not isinstance(entity.get("length"), int):
            raise bad_request('can\'t parse MessageEntity: Field "offset" must be a valid Number')
        if not isinstance(entity.get("type"), str):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
