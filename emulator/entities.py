"""Shared pieces of Telegram's entity parsers (TDLib semantics, UTF-8 byte offsets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Entity = dict[str, Any]

_SPACES = b" \t\r\n\0\x0b\x0c"


class EntityParseError(Exception):
    """A parse-mode error; its text goes after ``can't parse entities: ``."""


@dataclass
class FormattedText:
    text: str
    entities: list[Entity] = field(default_factory=list)


def utf16_len(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def is_space(byte: int) -> bool:
    return byte in _SPACES


def checked_link(url: str) -> str | None:
    """Roughly TDLib's ``getchecked_link``: accept usual schemes and bare domains."""
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


class Reader:
    """Byte access with a virtual NUL terminator, like the C++ original."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.size = len(raw)

    def __getitem__(self, index: int) -> int:
        return self.raw[index] if 0 <= index < self.size else 0


class Builder:
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


def pre_header(text: Reader, i: int) -> tuple[str, int]:
    """After an opening ```: read an optional language and skip one newline."""
    language = ""
    end = i
    while not is_space(text[end]) and text[end] != ord("`"):
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


def sorted_entities(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))
