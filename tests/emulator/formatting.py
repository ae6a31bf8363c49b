"""Telegram's text formatting: HTML, MarkdownV2 and legacy Markdown parse modes.

The parsers follow TDLib's behaviour (which is what the Bot API runs): they work on the
UTF-8 bytes of the text, report errors with byte offsets and Telegram's wording, produce
entities with UTF-16 offsets, and leave unknown ``&name;`` references untouched. After
parsing, leading and trailing whitespace is trimmed like Telegram does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, bad_request

Entity = dict[str, Any]

_SPACES = b" \t\r\n\0\x0b\x0c"
_TRIM = " \t\r\n\x0b\x0c"


class EntityParseError(Exception):
    """A parse-mode error; its text goes after ``can't parse entities: ``."""


@dataclass
class FormattedText:
    text: str
    entities: list[Entity] = field(default_factory=list)


def utf16_len(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _is_space(byte: int) -> bool:
    return byte in _SPACES


def _checked_link(url: str) -> str | None:
    """Roughly TDLib's ``get_checked_link``: accept usual schemes and bare domains."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url if "://" in url or url.startswith("tg:") else f"http://{url}")
    if parts.scheme.lower() in {"tg", "ton"}:
        return url
    if parts.scheme.lower() not in {"http", "https", "ftp"} or not parts.hostname:
        return None
    if "." not in parts.hostname and parts.hostname != "localhost":
        return None
    return url if "://" in url else f"http://{url}"


class _Reader:
    """Byte access with a virtual NUL terminator, like the C++ original."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.size = len(raw)

    def __getitem__(self, index: int) -> int:
        return self.raw[index] if 0 <= index < self.size else 0


def _decode_html_entity(text: _Reader, pos: int) -> tuple[int, int]:
    """Decode ``&...;`` at ``pos``; return (code point or 0, position after it)."""
    end = pos + 1
    code = 0
    if text[pos + 1] == ord("#"):
        end += 1
        if text[pos + 2] == ord("x"):
            end += 1
            while chr(text[end]) in "0123456789abcdefABCDEF" and text[end]:
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


class _Builder:
    """Accumulates output bytes and the current UTF-16 offset."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.utf16 = 0

    def byte(self, value: int) -> None:
        self.out.append(value)
        if value & 0xC0 != 0x80:
            self.utf16 += 2 if value >= 0xF0 else 1

    def char(self, code: int) -> None:
        self.out += chr(code).encode("utf-8", "surrogatepass")
        self.utf16 += 2 if code > 0xFFFF else 1

    def text_since(self, byte_pos: int) -> str:
        return self.out[byte_pos:].decode("utf-8", "replace")


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
    text = _Reader(source.encode("utf-8"))
    out = _Builder()
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
            while not _is_space(text[i]) and text[i] != ord(">"):
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
            while not _is_space(text[i]) and text[i] != ord(">"):
                i += 1
            end_tag = text.raw[begin + 2 : i].decode("utf-8", "replace").lower()
            while _is_space(text[i]) and text[i] != 0:
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
    return FormattedText(out.out.decode("utf-8", "replace"), _sorted(entities))


def _html_attributes(text: _Reader, i: int, tag: str, begin: int) -> tuple[str, int]:
    """Parse attributes up to the closing '>' (returned index points at it)."""
    argument = ""
    while text[i] != ord(">"):
        while text[i] != 0 and _is_space(text[i]):
            i += 1
        if text[i] == ord(">"):
            break
        name_begin = i
        while not _is_space(text[i]) and text[i] != ord("="):
            i += 1
        name = text.raw[name_begin:i].decode("utf-8", "replace")
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
            )
        while text[i] != 0 and _is_space(text[i]):
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
        while text[i] != 0 and _is_space(text[i]):
            i += 1
        if text[i] == 0:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if text[i] not in (ord("'"), ord('"')):
            token_begin = i
            while chr(text[i]).isascii() and (chr(text[i]).isalnum() or text[i] in b".-"):
                if text[i] == 0:
                    break
                i += 1
            value = text.raw[token_begin:i].decode("utf-8", "replace").lower()
            if not _is_space(text[i]) and text[i] != ord(">"):
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
    entities: list[Entity], tag: str, argument: str, offset: int, out: _Builder, byte_pos: int
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
        url = _checked_link(argument or out.text_since(byte_pos))
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
    text = _Reader(source.encode("utf-8"))
    out = _Builder()
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
                checked = _checked_link(url)
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
                argument, i = _pre_header(text, i + 3)
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
    return FormattedText(out.out.decode("utf-8", "replace"), _sorted(entities))


def _mdv2_is_end(text: _Reader, i: int, kind: str, have_blockquote: bool) -> bool:
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
    text: _Reader, i: int, out: _Builder, out_pos: int, what: str = "a URL"
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


def _pre_header(text: _Reader, i: int) -> tuple[str, int]:
    """After an opening ```: read an optional language and skip one newline."""
    language = ""
    end = i
    while not _is_space(text[end]) and text[end] != ord("`"):
        end += 1
    if i != end and end < text.size and text[end] != ord("`"):
        language = text.raw[i:end].decode("utf-8", "replace")
        i = end
    if text[i] in (ord("\n"), ord("\r")):
        if text[i + 1] in (ord("\n"), ord("\r")) and text[i] != text[i + 1]:
            i += 2
        else:
            i += 1
    return language, i


def parse_markdown(source: str) -> FormattedText:
    """Legacy ``Markdown`` mode: _italic_, *bold*, `code`, ```pre```, [text](url)."""
    text = _Reader(source.encode("utf-8"))
    out = _Builder()
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
            language, i = _pre_header(text, i + 2)
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
                checked = _checked_link(url)
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
    return FormattedText(out.out.decode("utf-8", "replace"), _sorted(entities))


def _sorted(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


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
