"""Counts read right in both languages: every message that counts something has gettext
plural forms and is rendered here with 0, 1 and 2 ("1 person alerted", "2 people
alerted"; Chinese has one form), and no other English message puts a number in front of a
countable noun, where "1 days" would come back."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.plurals import get_plural

from services.i18n import LANGUAGES, catalog, counted_keys, message, t

LOCALES = Path(__file__).resolve().parents[2] / "services" / "locales"
FOLDERS = {"zh-Hans": "zh_Hans", "en": "en"}

# English nouns a number is put in front of: singular -> plural.
NOUNS = {
    "person": "people",
    "day": "days",
    "cadre": "cadres",
    "officer": "officers",
    "administrator": "administrators",
    "item": "items",
    "row": "rows",
    "check-in": "check-ins",
    "question": "questions",
    "section": "sections",
    "version": "versions",
    "contact": "contacts",
    "request": "requests",
    "position": "positions",
    "hour": "hours",
    "minute": "minutes",
    "week": "weeks",
    "month": "months",
    "message": "messages",
    "alert": "alerts",
    "link": "links",
    "reading": "readings",
    "file": "files",
    "document": "documents",
    "time": "times",
}
SINGULAR = "|".join(re.escape(n) for n in NOUNS)
PLURAL = "|".join(re.escape(n) for n in NOUNS.values())
# a number, up to three words ("active", "duty", "oxygen", "more"), then the noun
BETWEEN = r"(?:</?b>)? +(?:(?!of\b|per\b)[\w-]+ +){0,3}?"  # on one line
# Placeholders that hold words, not numbers ("{zone} time", "{area} duty group").
NOT_NUMBERS = {"zone", "label", "area", "rate", "vitals", "band", "exam", "end", "expiry", "link"}
NOT_NUMBERS |= {"down", "name", "title", "item", "names"}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def sample_values(text: str, count: int) -> dict[str, object]:
    values: dict[str, object] = {name: "x" for name in placeholders(text)}
    values["count"] = count
    return values


def grammar_errors(text: str, count: int) -> list[str]:
    """English number agreement around `count`: "1 days", "2 person", "1 … are"."""
    number = re.escape(str(count))
    if count == 1:
        noun, verb = PLURAL, r"are|have|were|match"
    else:
        noun, verb = SINGULAR, r"is|has|was|matches"
    found = re.findall(rf"(?<![\d.,/]){number}{BETWEEN}(?:{noun})\b(?!-)", text)
    found += re.findall(
        rf"(?<![\d.,/]){number}{BETWEEN}(?:{SINGULAR}|{PLURAL})\s+(?:{verb})\b", text
    )
    if "(s)" in text:
        found.append("(s)")
    return found


def test_there_are_counted_messages_to_check():
    assert len(counted_keys()) >= 40


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_declares_the_plural_rule_the_bot_uses(lang):
    """gettext tools (msgfmt) read the header; the bot uses Babel's rule: they agree."""
    rule = get_plural(lang.replace("-", "_")).plural_forms
    for path in sorted((LOCALES / FOLDERS[lang]).glob("*.po")):
        declared = re.findall(r'^"Plural-Forms: (.*)\\n"$', path.read_text("utf-8"), re.M)
        assert declared == [rule], path.name


@pytest.mark.parametrize("key", counted_keys())
def test_a_counted_message_has_every_plural_form_with_the_same_placeholders(key):
    for lang in LANGUAGES:
        entry = message(lang, key)
        assert entry.plural, (lang, key)
        assert len(entry.forms) == get_plural(lang.replace("-", "_")).num_plurals
        names = [placeholders(form) - {"count"} for form in entry.forms]
        assert all(n == names[-1] for n in names), (lang, key)
        assert "{count}" in entry.forms[-1], (lang, key)


@pytest.mark.parametrize("key", counted_keys())
@pytest.mark.parametrize("count", [0, 1, 2])
def test_a_counted_message_reads_right_with_0_1_and_2(key, count):
    english = t("en", key, **sample_values(catalog("en")[key], count))
    assert grammar_errors(english, count) == []
    if count != 1:
        assert str(count) in english
    chinese = t("zh-Hans", key, **sample_values(catalog("zh-Hans")[key], count))
    assert str(count) in chinese
    assert "你" not in chinese


def test_the_grammar_check_catches_what_the_issue_saw():
    assert grammar_errors("1 people alerted.", 1)
    assert grammar_errors("Ganzi has 1 active cadres", 1)
    assert grammar_errors("(1 duty officers for the area)", 1)
    assert grammar_errors("given to 1 person(s)", 1)
    assert grammar_errors("2 question is still waiting", 2)
    assert grammar_errors("1 question are still waiting", 1)
    assert grammar_errors("1 of your emergency contacts has been told.", 1) == []
    assert grammar_errors("1 person alerted. 12 people", 1) == []


def test_no_other_english_message_puts_a_number_before_a_countable_noun():
    """A number before "days", "people"... needs plural forms: make it a counted message
    (msgid_plural, rendered with count=)."""
    counted = set(counted_keys())
    pattern = re.compile(rf"\{{(\w+)\}}{BETWEEN}(?:{SINGULAR}|{PLURAL})\b(?!-)")
    uncounted = {
        key: [m.group(0) for m in pattern.finditer(text) if m.group(1) not in NOT_NUMBERS]
        for key, text in catalog("en").items()
        if key not in counted
    }
    assert {key: found for key, found in uncounted.items() if found} == {}
