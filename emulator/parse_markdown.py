"""Telegram's MarkdownV2 and legacy Markdown parse modes, following TDLib."""

from __future__ import annotations

from typing import Any

from .entities import (
    Builder,
    Entity,
    EntityParseError,
    FormattedText,
    Reader,
    checked_link,
    pre_header,
    sorted_entities,
)

_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}
_RESERVED_V2 = b"_*[]()~`>#+-=|{}.!\n"


def _reserved(char: int) -> EntityParseError:
    return EntityParseError(
        f"Character '{chr(char)}' is reserved and must be escaped with the preceding '\\'"
    )


def parse_markdown_v2(source: str) -> FormattedText:
    text = Reader(source.encode("utf-8"))
    out = Builder()
    entities: list[Entity] = []
    # [type, argument, utf16 offset, source byte offset, output byte position]
    stack: list[list[Any]] = []
    have_blockquote = False
    i = 0
    while i < text.size:
        c = text[i]
        if c == ord("\\") and 0 < text[i + 1] <= 126:
            out.byte(text[i + 1])
            i += 2
            continue
        reserved = _RESERVED_V2
        if stack and stack[-1][0] in ("code", "pre"):
            reserved = b"`"
        if c not in reserved:
            out.byte(c)
            i += 1
            continue
        if stack and _mdv2_is_end(text, i, stack[-1][0], have_blockquote):
            kind, argument, offset, byte_offset, out_pos = stack[-1]
            if c == ord("\n") and kind != "blockquote":
                raise EntityParseError(
                    f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_offset}"
                )
            skip = out.utf16 == offset
            if kind in ("underline", "spoiler"):
                i += 1
            elif kind == "pre":
                i += 2
            elif kind == "text_link":
                url, i = _mdv2_url(text, i, out, out_pos)
                checked = checked_link(url)
                if checked is None:
                    skip = True
                argument = checked or ""
            elif kind == "custom_emoji":
                if text[i + 1] != ord("("):
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                url, i = _mdv2_url(text, i, out, out_pos, what="a custom emoji URL")
                argument = url.rsplit("id=", 1)[-1]
            elif kind == "blockquote":
                have_blockquote = False
                out.byte(c)
            if not skip:
                entity: Entity = {"type": kind, "offset": offset, "length": out.utf16 - offset}
                if kind == "text_link":
                    entity["url"] = argument
                elif kind == "pre" and argument:
                    entity["language"] = argument
                elif kind == "custom_emoji":
                    entity["custom_emoji_id"] = argument
                entities.append(entity)
            stack.pop()
            i += 1
            continue
        begin = i
        argument = ""
        if c == ord("_"):
            kind = "italic"
            if text[i + 1] == ord("_"):
                kind = "underline"
                i += 1
        elif c == ord("*"):
            kind = "bold"
        elif c == ord("~"):
            kind = "strikethrough"
        elif c == ord("|"):
            if text[i + 1] != ord("|"):
                raise _reserved(c)
            kind = "spoiler"
            i += 1
        elif c == ord("["):
            kind = "text_link"
        elif c == ord("`"):
            kind = "code"
            if text[i + 1] == ord("`") and text[i + 2] == ord("`"):
                kind = "pre"
                argument, i = pre_header(text, i + 3)
                i -= 1
        elif c == ord("!"):
            if text[i + 1] != ord("["):
                raise _reserved(c)
            kind = "custom_emoji"
            i += 1
        elif c == ord("\n"):
            out.byte(c)
            if text[i + 1] == ord(">") and i + 1 < text.size:
                i += 1
                if not have_blockquote:
                    have_blockquote = True
                    stack.append(["blockquote", "", out.utf16, begin, len(out.out)])
            i += 1
            continue
        elif c == ord(">") and i == 0:
            kind = "blockquote"
            have_blockquote = True
        else:
            raise _reserved(c)
        stack.append([kind, argument, out.utf16, begin, len(out.out)])
        i += 1
    if have_blockquote and stack and stack[-1][0] == "blockquote":
        _, _, offset, _, _ = stack.pop()
        if out.utf16 > offset:
            entities.append({"type": "blockquote", "offset": offset, "length": out.utf16 - offset})
    if stack:
        kind, _, _, byte_offset, _ = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_offset}"
        )
    return FormattedText(out.out.decode("utf-8", "replace"), sorted_entities(entities))


def _mdv2_is_end(text: Reader, i: int, kind: str, have_blockquote: bool) -> bool:
    c = text[i]
    if have_blockquote and c == ord("\n") and (i + 1 == text.size or text[i + 1] != ord(">")):
        return True
    return {
        "bold": c == ord("*"),
        "italic": c == ord("_") and text[i + 1] != ord("_"),
        "code": c == ord("`"),
        "pre": c == ord("`") and text[i + 1] == ord("`") and text[i + 2] == ord("`"),
        "text_link": c == ord("]"),
        "underline": c == ord("_") and text[i + 1] == ord("_"),
        "strikethrough": c == ord("~"),
        "spoiler": c == ord("|") and text[i + 1] == ord("|"),
        "custom_emoji": c == ord("]"),
    }.get(kind, False)


def _mdv2_url(
    text: Reader, i: int, out: Builder, out_pos: int, what: str = "a URL"
) -> tuple[str, int]:
    """Read ``(url)`` after ``]`` at ``i``; return the URL and the index of ``)``."""
    if text[i + 1] != ord("("):
        return out.text_since(out_pos), i
    i += 2
    url_begin = i
    url = bytearray()
    while i < text.size and text[i] != ord(")"):
        if text[i] == ord("\\") and 0 < text[i + 1] <= 126:
            url.append(text[i + 1])
            i += 2
            continue
        url.append(text[i])
        i += 1
    if text[i] != ord(")"):
        raise EntityParseError(f"Can't find end of {what} at byte offset {url_begin}")
    return url.decode("utf-8", "replace"), i


def parse_markdown(source: str) -> FormattedText:
    """Legacy ``Markdown`` mode: _italic_, *bold*, `code`, ```pre```, [text](url)."""
    text = Reader(source.encode("utf-8"))
    out = Builder()
    entities: list[Entity] = []
    i = 0
    while i < text.size:
        c = text[i]
        if c == ord("\\") and text[i + 1] in b"_*`[" and text[i + 1]:
            out.byte(text[i + 1])
            i += 2
            continue
        if c not in b"_*`[":
            out.byte(c)
            i += 1
            continue
        begin = i
        end_char = ord("]") if c == ord("[") else c
        is_pre = False
        language = ""
        i += 1
        if c == ord("`") and text[i] == ord("`") and text[i + 1] == ord("`"):
            is_pre = True
            language, i = pre_header(text, i + 2)
        offset = out.utf16
        out_pos = len(out.out)
        while i < text.size and (
            text[i] != end_char
            or (is_pre and not (text[i + 1] == ord("`") and text[i + 2] == ord("`")))
        ):
            out.byte(text[i])
            i += 1
        if i >= text.size:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        if out.utf16 != offset:
            length = out.utf16 - offset
            entity: Entity | None = None
            if c == ord("_"):
                entity = {"type": "italic"}
            elif c == ord("*"):
                entity = {"type": "bold"}
            elif c == ord("["):
                url = out.text_since(out_pos)
                if text[i + 1] == ord("("):
                    i += 2
                    raw = bytearray()
                    while i < text.size and text[i] != ord(")"):
                        raw.append(text[i])
                        i += 1
                    url = raw.decode("utf-8", "replace")
                checked = checked_link(url)
                entity = {"type": "text_link", "url": checked} if checked else None
            elif is_pre:
                entity = {"type": "pre", **({"language": language} if language else {})}
            else:
                entity = {"type": "code"}
            if entity is not None:
                entities.append({**entity, "offset": offset, "length": length})
        if is_pre:
            i += 2
        i += 1
    return FormattedText(out.out.decode("utf-8", "replace"), sorted_entities(entities))
