"""Parsing what people type. Each parser returns a clean value or raises InvalidInput,
whose key names a catalog message that tells the person what to type instead."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

NAME_MAX = 50
UNIT_MAX = 100
ALTITUDE_RANGE = (0, 6000)


class InvalidInput(ValueError):
    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def _clean(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def _has_symbols(text: str) -> bool:
    """True for emoji, control characters and other symbols that do not belong in a name."""
    return any(unicodedata.category(ch)[0] in {"S", "C"} for ch in text)


def parse_name(text: str | None) -> str:
    value = re.sub(r"\s+", " ", _clean(text))
    if not value:
        raise InvalidInput("invalid.empty")
    if len(value) > NAME_MAX:
        raise InvalidInput("invalid.too_long", limit=NAME_MAX)
    if _has_symbols(value) or not re.fullmatch(r"[\w .·'’-]+", value) or re.search(r"\d", value):
        raise InvalidInput("invalid.name")
    return value


def parse_unit(text: str | None) -> str:
    value = re.sub(r"\s+", " ", _clean(text))
    if not value:
        raise InvalidInput("invalid.empty")
    if len(value) > UNIT_MAX:
        raise InvalidInput("invalid.too_long", limit=UNIT_MAX)
    letters = sum(ch.isalpha() for ch in value)
    if _has_symbols(value) or "<" in value or ">" in value or letters < 2:
        raise InvalidInput("invalid.unit")
    return value


def parse_phone(text: str | None) -> str:
    """Mainland mobile numbers (11 digits, optional +86) and other international numbers."""
    raw = _clean(text)
    if not raw:
        raise InvalidInput("invalid.empty")
    if len(raw) > 32 or not re.fullmatch(r"\+?[\d\s()-]+", raw):
        raise InvalidInput("invalid.phone")
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        if not 8 <= len(digits) <= 15:
            raise InvalidInput("invalid.phone")
        if digits.startswith("86"):
            national = digits[2:]
            if not re.fullmatch(r"1[3-9]\d{9}|0\d{9,11}", national):
                raise InvalidInput("invalid.phone")
        return "+" + digits
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return "+86" + digits
    if re.fullmatch(r"0\d{9,11}", digits):  # landline with area code
        return "+86" + digits[1:]
    raise InvalidInput("invalid.phone")


def parse_altitude(text: str | None) -> int:
    raw = _clean(text).lower().replace(",", "").replace(" ", "")
    raw = re.sub(r"(m|米|metres|meters)$", "", raw)
    if not raw:
        raise InvalidInput("invalid.empty")
    if not raw.isdigit():
        raise InvalidInput("invalid.altitude", low=ALTITUDE_RANGE[0], high=ALTITUDE_RANGE[1])
    value = int(raw)
    if not ALTITUDE_RANGE[0] <= value <= ALTITUDE_RANGE[1]:
        raise InvalidInput("invalid.altitude", low=ALTITUDE_RANGE[0], high=ALTITUDE_RANGE[1])
    return value


def parse_date(text: str | None, *, not_before: date | None = None) -> date:
    raw = _clean(text)
    if not raw:
        raise InvalidInput("invalid.empty")
    match = re.fullmatch(r"(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?", raw)
    if not match:
        raise InvalidInput("invalid.date")
    try:
        value = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise InvalidInput("invalid.date") from exc
    if not 2000 <= value.year <= 2100:
        raise InvalidInput("invalid.date")
    if not_before and value < not_before:
        raise InvalidInput("invalid.date_order", start=not_before.isoformat())
    return value
