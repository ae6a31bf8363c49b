"""Telegram's HTML parse mode, following TDLib's ``parse_html`` (errors and all)."""

from __future__ import annotations

from .entities import (
    Builder,
    Entity,
    EntityParseError,
    FormattedText,
    Reader,
    checked_link,
    is_space,
    sorted_entities,
)


def _decode_html_entity(text: Reader, pos: int) -> tuple[int, int]:
    """Decode ``&...;`` at ``pos``; return (code point or 0, position after it)."""
    end = pos + 1
    code = 0
    if text[pos + 1] == ord("#"):
        end += 1
        if text[pos + 2] == ord("x"):
            end += 1
            while text[end] and chr(text[end]) in "0123456789abcdefABCDEF":
                code = code * 16 + int(chr(text[end]), 16)
                end += 1
        else:
            while ord("0") <= text[end] <= ord("9"):
                code = code * 10 + text[end] - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(text[end]).isascii() and chr(text[end]).isalpha():
            end += 1
        name = text.raw[pos + 1 : end]
        code = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}.get(name, 0)
        if not code:
            return 0, pos
    if text[end] == ord(";"):
        end += 1
    return code, end


_HTML_TAGS = {
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
}
_SIMPLE_HTML = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
}


def parse_html(source: str) -> FormattedText:
    text = Reader(source.encode("utf-8"))
    out = Builder()
    entities: list[Entity] = []
    # (tag, argument, utf16 offset, output byte position)
    stack: list[tuple[str, str, int, int]] = []
    i = 0
    while i < text.size:
        c = text[i]
        if c == ord("&"):
            code, after = _decode_html_entity(text, i)
            if code:
                out.char(code)
                i = after
                continue
        if c != ord("<"):
            out.byte(c)
            i += 1
            continue
        begin = i
        i += 1
        if text[i] != ord("/"):
            while not is_space(text[i]) and text[i] != ord(">"):
                i += 1
            if text[i] == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = text.raw[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument, i = _html_attributes(text, i, tag, begin)
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            stack.append((tag, argument, out.utf16, len(out.out)))
        else:
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
            while not is_space(text[i]) and text[i] != ord(">"):
                i += 1
            end_tag = text.raw[begin + 2 : i].decode("utf-8", "replace").lower()
            while is_space(text[i]) and text[i] != 0:
                i += 1
            if text[i] != ord(">"):
                raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
            tag, argument, offset, byte_pos = stack[-1]
            if end_tag and end_tag != tag:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                    f'found "</{end_tag}>"'
                )
            if out.utf16 > offset:
                _close_html_entity(entities, tag, argument, offset, out, byte_pos)
            stack.pop()
        i += 1  # skip '>'
    if stack:
        raise EntityParseError(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    for entity in entities:
        entity.pop("_language", None)
    return FormattedText(out.out.decode("utf-8", "replace"), sorted_entities(entities))


def _html_attributes(text: Reader, i: int, tag: str, begin: int) -> tuple[str, int]:
    """Parse attributes up to the closing '>' (returned index points at it)."""
    argument = ""
    while text[i] != ord(">"):
        while text[i] != 0 and is_space(text[i]):
            i += 1
        if text[i] == ord(">"):
            break
        name_begin = i
        while not is_space(text[i]) and text[i] not in (ord("="), ord(">")):
            i += 1
        name = text.raw[name_begin:i].decode("utf-8", "replace")
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
            )
        while text[i] != 0 and is_space(text[i]):
            i += 1
        if text[i] != ord("="):
            if tag == "blockquote" and name == "expandable":
                argument = "expandable"
                continue
            raise EntityParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{tag}" at byte offset {begin}'
            )
        i += 1
        while text[i] != 0 and is_space(text[i]):
            i += 1
        if text[i] == 0:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if text[i] not in (ord("'"), ord('"')):
            token_begin = i
            while text[i] and (
                (chr(text[i]).isascii() and chr(text[i]).isalnum()) or text[i] in b".-"
            ):
                i += 1
            value = text.raw[token_begin:i].decode("utf-8", "replace").lower()
            if not is_space(text[i]) and text[i] != ord(">"):
                raise EntityParseError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = text[i]
            i += 1
            value_bytes = bytearray()
            while text[i] != quote and text[i] != 0:
                if text[i] == ord("&"):
                    code, after = _decode_html_entity(text, i)
                    if code:
                        value_bytes += chr(code).encode("utf-8", "surrogatepass")
                        i = after
                        continue
                value_bytes.append(text[i])
                i += 1
            if text[i] == quote:
                i += 1
            value = value_bytes.decode("utf-8", "replace")
        if text[i] == 0:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and name == "href":
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[3:]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value
    return argument, i


def _close_html_entity(
    entities: list[Entity], tag: str, argument: str, offset: int, out: Builder, byte_pos: int
) -> None:
    length = out.utf16 - offset
    last = entities[-1] if entities else None
    same_range = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _SIMPLE_HTML or tag == "span":
        entities.append(
            {"type": _SIMPLE_HTML.get(tag, "spoiler"), "offset": offset, "length": length}
        )
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": argument,
            }
        )
    elif tag == "a":
        url = checked_link(argument or out.text_since(byte_pos))
        if url:
            entities.append({"type": "text_link", "offset": offset, "length": length, "url": url})
    elif tag == "pre":
        if same_range and last is not None and last["type"] == "code" and last.get("_language"):
            last["type"] = "pre"
            last["language"] = last.pop("_language")
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        if same_range and last is not None and last["type"] == "pre" and argument:
            last["language"] = argument
        else:
            entity: Entity = {"type": "code", "offset": offset, "length": length}
            if argument:
                entity["_language"] = argument
            entities.append(entity)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if argument == "expandable" else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})
