"""What people type at each registration step: good input accepted, bad input refused
with a message key that exists in both languages."""

from datetime import date

import pytest

from services import validation
from services.i18n import has_key
from services.validation import (
    InvalidInput,
    parse_altitude,
    parse_date,
    parse_name,
    parse_phone,
    parse_unit,
)

BAD_TEXT = ["", "   ", "x" * 5000, "<b>bold</b>", "&", "😀😀", "\x00"]


@pytest.mark.parametrize(
    "parser", [parse_name, parse_unit, parse_phone, parse_altitude, parse_date]
)
@pytest.mark.parametrize("text", BAD_TEXT)
def test_bad_text_is_refused_with_a_translated_reason(parser, text):
    with pytest.raises(InvalidInput) as caught:
        parser(text)
    assert has_key(caught.value.key)


@pytest.mark.parametrize("name", ["王小明", "Li Wei", "扎西·次仁", "Mary-Jane O'Neil"])
def test_real_names_in_either_script_are_accepted(name):
    assert parse_name(name) == name


@pytest.mark.parametrize("name", ["Li3", "王<b>", "A & B", "🙂 Li"])
def test_names_with_digits_markup_or_emoji_are_refused(name):
    with pytest.raises(InvalidInput):
        parse_name(name)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("0836-2812345", "+868362812345"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_normalised(typed, stored):
    assert parse_phone(typed) == stored


@pytest.mark.parametrize("typed", ["abcdefghijk", "12345", "+86 123", "1380013800O", "phone"])
def test_phone_numbers_of_letters_or_wrong_length_are_refused(typed):
    with pytest.raises(InvalidInput) as caught:
        parse_phone(typed)
    assert caught.value.key == "invalid.phone"


@pytest.mark.parametrize(("typed", "metres"), [("3650", 3650), ("3,650 m", 3650), ("4200米", 4200)])
def test_altitude_in_metres(typed, metres):
    assert parse_altitude(typed) == metres


@pytest.mark.parametrize("typed", ["-5", "9000", "high", "3.5km"])
def test_implausible_altitudes_are_refused(typed):
    with pytest.raises(InvalidInput):
        parse_altitude(typed)


@pytest.mark.parametrize("typed", ["2026-03-01", "2026/3/1", "2026年3月1日", "2026.03.01"])
def test_dates_in_common_chinese_and_iso_forms(typed):
    assert parse_date(typed) == date(2026, 3, 1)


def test_end_date_before_start_is_refused():
    with pytest.raises(InvalidInput) as caught:
        parse_date("2025-01-01", not_before=date(2026, 3, 1))
    assert caught.value.key == "invalid.date_order"


@pytest.mark.parametrize("typed", ["2026-02-30", "01-03-2026", "tomorrow", "1999-01-01"])
def test_impossible_dates_are_refused(typed):
    with pytest.raises(InvalidInput):
        parse_date(typed)


def test_units_keep_ampersand_but_not_markup():
    assert parse_unit("Health & Family Commission") == "Health & Family Commission"
    with pytest.raises(InvalidInput):
        parse_unit("<b>Unit</b>")


# ------------------------------------------------------------------ one number grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("91", 91),
        ("９１", 91),  # full-width, from a Chinese keyboard
        (" 3500 ", 3500),
        ("²", None),  # superscript: NFKC would make it "2"
        ("9²", None),
        ("①", None),
        ("፩፪፫", None),  # Ethiopic: str.isdigit() is true, int() refuses
        ("١", None),  # Arabic-Indic: int() would read it as 1
        ("१२", None),  # Devanagari
        ("", None),
        ("-1", None),
        ("1" * 13, None),
        ("12a", None),
    ],
)
def test_numbers_are_ascii_digits_after_nfkc(text: str, expected: int | None) -> None:
    assert validation.parse_int(text) == expected


def test_signed_numbers() -> None:
    assert validation.parse_int("-1", signed=True) == -1
    assert validation.parse_int("－１", signed=True) == -1
    assert validation.parse_int("-²", signed=True) is None


@pytest.mark.parametrize("text", ["፩፪፫", "²", "3⁵00", "١٢٣", "①②③"])
def test_altitude_refuses_digits_of_other_kinds_with_the_usual_message(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_altitude(text)
    assert error.value.key == "invalid.altitude"


def test_altitude_accepts_full_width_digits() -> None:
    assert parse_altitude("３５００米") == 3500


@pytest.mark.parametrize("text", ["१३७१२३४००००", "13712340000²", "+86 ١٣٧١٢٣٤٠٠٠٠"])
def test_phone_refuses_digits_of_other_kinds(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_phone(text)
