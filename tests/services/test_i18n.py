"""The catalogs: every key in both languages, the same placeholders, and every key the code
uses exists. A missing translation fails here, not in front of a cadre."""

import re
import string
from pathlib import Path

import pytest

from models import Role, Status
from services.i18n import LANGUAGES, catalog, normalize_language, t
from services.permissions import Denial

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p for d in ("handlers", "services", "bot", "scheduler") for p in (ROOT / d).rglob("*.py")
]
LITERAL_KEY = re.compile(r"""["']((?:[a-z_]+\.)+[a-z_0-9]+)["']""")
# Dotted names that are not catalog keys: an outbox renderer and an audit action.
NOT_KEYS = {"health.chart", "health.retention"}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys():
    zh, en = catalog("zh-Hans"), catalog("en")
    assert sorted(set(zh) ^ set(en)) == []


@pytest.mark.parametrize("key", sorted(catalog("en")))
def test_placeholders_match_across_languages(key):
    assert placeholders(catalog("zh-Hans")[key]) == placeholders(catalog("en")[key])


def keys_used_in_code() -> set[str]:
    known_prefixes = {k.split(".")[0] for k in catalog("en")}
    used = set()
    for path in SOURCES:
        for match in LITERAL_KEY.finditer(path.read_text(encoding="utf-8")):
            key = match.group(1)
            if key in NOT_KEYS:
                continue
            if key.split(".")[0] in known_prefixes and not key.endswith((".py", ".json", ".po")):
                used.add(key)
    return used


def test_every_key_the_code_names_exists_in_both_languages():
    missing = {key for key in keys_used_in_code() for lang in LANGUAGES if key not in catalog(lang)}
    assert sorted(missing) == []


def test_keys_built_from_enums_exist():
    keys = [f"deny.{d}" for d in Denial] + [f"role.{r}" for r in Role]
    keys += [f"help.role.{r}" for r in Role]
    keys += [f"deny.{s}" for s in Status if s != Status.ACTIVE]
    for lang in LANGUAGES:
        assert [k for k in keys if k not in catalog(lang)] == []


def test_values_are_escaped_but_catalog_markup_is_kept():
    text = t("en", "form.ask.county", prefecture="<b>A & B</b>")
    assert "&lt;b&gt;A &amp; B&lt;/b&gt;" in text


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("zh-hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("en-GB", "en"),
        ("en", "en"),
        ("ru", "zh-Hans"),
        (None, "zh-Hans"),
    ],
)
def test_telegram_language_codes_map_to_a_catalog(code, language):
    assert normalize_language(code) == language


def test_dynamic_keys_of_forms_and_menus_exist():
    from handlers import form, menus

    keys = [f"form.ask.{field}" for field in form.REGISTER_FIELDS if field != "county"]
    keys += ["form.ask.county", "form.ask.altitude_seat"]
    keys += [f"me.edit.{group}" for group in form.EDIT_GROUPS]
    keys += [f"form.end.{years}y" for years in (1, 2, 3)]
    keys += [label for label, _ in form.ALTITUDE_BANDS]
    commands = set(menus.GUEST_COMMANDS) | {c for cs in menus.ROLE_COMMANDS.values() for c in cs}
    keys += [f"cmd.{name}" for name in commands]
    for lang in LANGUAGES:
        assert [k for k in keys if k not in catalog(lang)] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_string_is_valid_telegram_html(lang):
    """Catalog strings are sent with parse_mode HTML: a bare '<' would make Telegram refuse
    the whole message. Checked with the emulator's copy of Telegram's HTML parser."""
    from emulator.formatting import EntityParseError, parse_html

    broken = {}
    for key, text in catalog(lang).items():
        filled = text.format(**{name: "x" for name in placeholders(text)})
        try:
            parse_html(filled)
        except EntityParseError as error:
            broken[key] = str(error)
    assert broken == {}


# Keys whose Chinese text may contain 你 because it is not said to the reader (a quoted
# example of what someone types, say), each with the reason. Empty: the bot says 您.
NOT_TO_THE_READER: dict[str, str] = {}


def test_chinese_addresses_the_reader_as_nin():
    """One voice: the Chinese texts say 您 to the reader, never 你 (every plural form, and
    the user guide the bot answers from)."""
    from services.i18n import message

    found = {
        key: form
        for key in catalog("zh-Hans")
        if key not in NOT_TO_THE_READER
        for form in message("zh-Hans", key).forms
        if "你" in form
    }
    assert found == {}
    guides = (ROOT / "services" / "knowledge_base").glob("*.zh-Hans.md")
    assert [g.name for g in guides if "你" in g.read_text(encoding="utf-8")] == []


PO_FILES = sorted((ROOT / "services" / "locales").glob("*/*.po"))


@pytest.mark.parametrize("path", PO_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_po_files_are_what_gettext_tools_accept(path):
    """`msgfmt -c` clean: a filled-in header that is not marked fuzzy (gettext tools skip
    a fuzzy header), and no text that starts or ends with a line break its key has not
    (msgfmt refuses those; a blank line belongs in the code that joins the texts)."""
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        po = read_po(handle)
    assert not po.fuzzy
    header = dict(po.mime_headers)
    for field in ("PO-Revision-Date", "Last-Translator", "Language-Team", "Plural-Forms"):
        assert field in header and "YEAR" not in header[field] and "FULL NAME" not in header[field]
    for message in po:
        if not message.id:
            continue
        for text in message.string if isinstance(message.string, tuple) else (message.string,):
            assert not text.startswith("\n") and not text.endswith("\n"), message.id
