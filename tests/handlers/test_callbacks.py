"""The one grammar of button data (handlers.callbacks): every button the code makes parses,
and forged data (extra fields, digits that are not ASCII, unknown values) does not."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from handlers.callbacks import GRAMMAR, parse
from services.permissions import Action

ROOT = Path(__file__).resolve().parents[2]
# The data of a button: the second item of a (label, data) pair, callback_data=..., or
# what a page's data function gives handlers.paging.nav_row (lambda n: f"hs:{n}")
_PREFIXES = "|".join(GRAMMAR)
_BUTTON = re.compile(
    rf"""(?:,\s*|callback_data=|lambda \w+: )(f?)"((?:{_PREFIXES}):[^"]*)"\s*[),]"""
)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _made_by_the_code() -> set[str]:
    found: set[str] = set()
    for folder in ("handlers", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in _BUTTON.finditer(path.read_text(encoding="utf-8")):
                found.add(match.group(2) if match.group(1) else match.group(2).replace("{", "{{"))
    return found


def _concrete(template: str) -> list[str]:
    """The template with each {expression} replaced by a number or by a word, every way."""
    holes = _PLACEHOLDER.findall(template)
    pieces = _PLACEHOLDER.split(template)
    results = []
    for values in itertools.product(("1", "x", "1:20260101"), repeat=len(holes)):
        text = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            text += value + piece
        results.append(text)
    return results


def test_the_scan_finds_the_buttons_of_every_prefix() -> None:
    made = _made_by_the_code()
    prefixes = {data.split(":")[0] for data in made}
    assert len(made) > 80
    assert prefixes >= set(GRAMMAR) - {"lang", "ros", "dir", "ppl"}  # built from a prefix


def test_every_button_the_code_makes_fits_the_grammar() -> None:
    unparsed = [
        data
        for data in _made_by_the_code()
        if "{{" not in data
        and not data.endswith(":")  # a prefix that a helper completes (pref_buttons)
        and not any(parse(c) for c in _concrete(data))
    ]
    assert unparsed == []


@pytest.mark.parametrize(
    ("data", "fields", "action"),
    [
        ("sos:ack:12", ("ack", 12), Action.HANDLE_ALERTS),
        ("sos:cat:3:altitude", ("cat", 3, "altitude"), Action.RAISE_SOS),
        ("bc:ok:7", ("ok", 7), Action.CONFIRM_NOTICE),
        ("bc:done", ("done",), Action.CONFIRM_NOTICE),
        ("cf:date:-1", ("date", -1), Action.OWN_DATA),
        ("ci:temp:36.5", ("temp", "36.5"), Action.CHECKIN),
        ("f:alt:3500", ("alt", "3500"), None),
        ("lang:zh-Hans", ("zh-Hans",), None),
    ],
)
def test_good_data_parses_to_typed_fields(data: str, fields: tuple, action: Action | None) -> None:
    button = parse(data)
    assert button is not None
    assert (button.fields, button.action) == (fields, action)


@pytest.mark.parametrize(
    "data",
    [
        "sos:ack:١",  # Arabic-Indic one: int() would read it as 1
        "sos:ack:1:extra:stuff",
        "sos:ack:1²",
        "sos:ack:²",
        "sos:ack:፩",
        "sos:ack:９",  # full-width: typed numbers allow it, the bot's buttons never carry it
        "sos:ack:",
        "sos:ack",
        "sos:ack:-1",
        "sos:ack:1 ",
        "sos:ack:" + "1" * 13,
        "sos:launch:1",
        "bc:done:1",
        "bc:ok:",
        "kb:rc:1",
        "adm:ok:1:2",
        "f:ok",
        "nosuch:1",
        "",
        ":",
        "x" * 65,
        "lang:" + "a" * 40,
        "ci:temp:<b>",
    ],
)
def test_forged_data_does_not_parse(data: str) -> None:
    assert parse(data) is None


def test_a_number_field_ending_in_a_superscript_never_parses() -> None:
    for prefix, shapes in GRAMMAR.items():
        for shape, _ in shapes:
            if "{n}" not in shape and "{-n}" not in shape:
                continue
            sample = ":".join(
                ("1²" if kind in ("{n}", "{-n}") else "x" if kind == "{w}" else kind.split("|")[0])
                for kind in shape.split(":")
            )
            assert parse(sample) is None, (prefix, sample)
