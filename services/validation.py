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


MAX_ID_DIGITS = 12  # ids in commands and buttons (64-bit ids have at most 19 digits)
_NOT_A_DIGIT = "?"


def _clean(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def number_text(text: str | None) -> str:
    """Typed text that holds numbers, the one way digits are read from people.

    NFKC turns full-width ``９１`` (Chinese keyboards) into ASCII ``91``. Characters that only
    look like digits are not digits: superscripts and circled numbers (``²`` ``①``, which NFKC
    would turn into ``2`` and ``1``) become ``?`` first, and other scripts' digits (``١``
    ``፩``) stay as they are, so the ASCII patterns below never read them as numbers.
    """
    marked = "".join(
        _NOT_A_DIGIT if unicodedata.category(ch) == "No" else ch for ch in (text or "")
    )
    return unicodedata.normalize("NFKC", marked).strip()


def parse_int(
    text: str | None, *, max_digits: int = MAX_ID_DIGITS, signed: bool = False
) -> int | None:
    """A whole number of ASCII digits after `number_text`, else None. ``signed`` allows a
    leading minus (``-1``: yesterday)."""
    value = number_text(text)
    pattern = rf"-?[0-9]{{1,{max_digits}}}" if signed else rf"[0-9]{{1,{max_digits}}}"
    return int(value) if re.fullmatch(pattern, value) else None


def _as_typed(text: str | None) -> str:
    """Text kept as the person typed it: full-width brackets, commas and dots stay (a unit
    "杭州市卫健委（办公室）" is saved so); only digits become ASCII, and runs of spaces one
    space. Checks run on the NFKC form (`_clean`), so both spellings pass or fail alike."""
    value = unicodedata.normalize("NFC", text or "")
    value = "".join(_ascii_digit(ch) for ch in value)
    return re.sub(r"\s+", " ", value).strip()


def _ascii_digit(ch: str) -> str:
    """A full-width digit (``９``) as ASCII; any other character as it is."""
    if unicodedata.category(ch) == "Nd":
        folded = unicodedata.normalize("NFKC", ch)
        if folded.isascii():
            return folded
    return ch


def _has_symbols(text: str) -> bool:
    """True for emoji, control characters and other symbols that do not belong in a name."""
    return any(unicodedata.category(ch)[0] in {"S", "C"} for ch in text)


def parse_name(text: str | None) -> str:
    value = re.sub(r"\s+", " ", _clean(text))
    kept = _as_typed(text)
    if not value:
        raise InvalidInput("invalid.empty")
    if max(len(value), len(kept)) > NAME_MAX:
        raise InvalidInput("invalid.too_long", limit=NAME_MAX)
    if _has_symbols(value) or not re.fullmatch(r"[\w .·'’-]+", value) or re.search(r"\d", value):
        raise InvalidInput("invalid.name")
    return kept


def parse_unit(text: str | None) -> str:
    value = re.sub(r"\s+", " ", _clean(text))
    kept = _as_typed(text)
    if not value:
        raise InvalidInput("invalid.empty")
    if max(len(value), len(kept)) > UNIT_MAX:
        raise InvalidInput("invalid.too_long", limit=UNIT_MAX)
    letters = sum(ch.isalpha() for ch in value)
    if _has_symbols(value) or "<" in value or ">" in value or letters < 2:
        raise InvalidInput("invalid.unit")
    return kept


def parse_phone(text: str | None) -> str:
    """Mainland mobile numbers (11 digits, optional +86) and other international numbers."""
    raw = number_text(text)
    if not raw:
        raise InvalidInput("invalid.empty")
    if len(raw) > 32 or not re.fullmatch(r"\+?[0-9\s()-]+", raw):
        raise InvalidInput("invalid.phone")
    digits = re.sub(r"[^0-9]", "", raw)
    if raw.startswith("+"):
        if not 8 <= len(digits) <= 15:
            raise InvalidInput("invalid.phone")
        if digits.startswith("86"):
            national = digits[2:]
            if not re.fullmatch(r"1[3-9][0-9]{9}|0[0-9]{9,11}", national):
                raise InvalidInput("invalid.phone")
        return "+" + digits
    if re.fullmatch(r"1[3-9][0-9]{9}", digits):
        return "+86" + digits
    if re.fullmatch(r"0[0-9]{9,11}", digits):  # landline with area code
        return "+86" + digits[1:]
    raise InvalidInput("invalid.phone")


def parse_altitude(text: str | None) -> int:
    raw = number_text(text).lower().replace(",", "").replace(" ", "")
    raw = re.sub(r"(m|米|metres|meters)$", "", raw)
    if not raw:
        raise InvalidInput("invalid.empty")
    value = parse_int(raw, max_digits=5)
    if value is None or not ALTITUDE_RANGE[0] <= value <= ALTITUDE_RANGE[1]:
        raise InvalidInput("invalid.altitude", low=ALTITUDE_RANGE[0], high=ALTITUDE_RANGE[1])
    return value


def parse_date(text: str | None, *, not_before: date | None = None) -> date:
    raw = number_text(text)
    if not raw:
        raise InvalidInput("invalid.empty")
    match = re.fullmatch(r"([0-9]{4})\s*[-./年]\s*([0-9]{1,2})\s*[-./月]\s*([0-9]{1,2})\s*日?", raw)
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
