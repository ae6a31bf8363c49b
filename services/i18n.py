"""Every user-facing string comes from the locale catalogs in services/locales/*.po.

Catalog ids are symbolic keys (``reg.consent.text``); each language's .po file holds the
text. Values substituted into a string are HTML-escaped unless wrapped in `Html`, so user
text can never break Telegram's HTML parse mode.

A message that names a number of things has gettext plural forms (``msgid_plural``, one
``msgstr[n]`` per form of the language: English "1 person" / "2 people", Chinese one form).
`t` picks the form for the value passed as ``count``, by the language's gettext plural rule
(what ``ngettext`` does): ``t(lang, "sos.help_called", count=n)``.
"""

from __future__ import annotations

import gettext
import html
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("zh-Hans", "en")
DEFAULT_LANGUAGE = "zh-Hans"
_CATALOG_DIRS = {"zh-Hans": "zh_Hans", "en": "en"}


class Html(str):
    """A string that is already safe HTML and must not be escaped again."""

    __slots__ = ()


@cache
def catalog(language: str) -> dict[str, str]:
    """All messages of one language: every .po file in services/locales/<language>/. A
    message with plural forms (``msgid_plural``) is here by its last form (so that keys and
    placeholders compare across languages); `t` picks the form for its ``count``."""
    return {key: message.forms[-1] for key, message in _messages(language).items()}


class Message(NamedTuple):
    """One catalog entry: its text, or its plural forms in the language's gettext order."""

    forms: tuple[str, ...]
    plural: bool


@cache
def _messages(language: str) -> dict[str, Message]:
    folder = resources.files("services") / "locales" / _CATALOG_DIRS[language]
    messages: dict[str, Message] = {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".po"):
            continue
        with path.open("rb") as handle:
            po = read_po(handle, locale=language.replace("-", "_"))
        for message in po:
            if message.id and message.string:
                key = str(message.id[0] if message.pluralizable else message.id)
                if key in messages:
                    raise ValueError(f"{path.name}: duplicate catalog key {key!r}")
                forms = message.string if message.pluralizable else (message.string,)
                messages[key] = Message(tuple(str(f) for f in forms), message.pluralizable)
    return messages


@cache
def _plural_rule(language: str) -> Callable[[int], int]:
    """The language's gettext plural rule (English: 1 person, 2 people; Chinese: one form)."""
    return gettext.c2py(get_plural(language.replace("-", "_")).plural_expr)


def normalize_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map Telegram's language_code (``zh-hans``, ``zh-CN``, ``en-GB``...) to a catalog."""
    if not code:
        return default
    lowered = code.lower()
    if lowered.startswith("zh"):
        return "zh-Hans"
    if lowered.startswith("en"):
        return "en"
    return default


def escape(value: Any) -> str:
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=False)


def plain_text(text: str) -> str:
    """Catalog (Telegram) HTML as plain text: tags removed, character references decoded.
    For what cannot carry markup: callback answers, spreadsheets, WeCom/DingTalk/SMS, the
    fallback when Telegram refuses a message's markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def t(language: str | None, key: str, **values: Any) -> str:
    """The text for `key` in `language`, with `values` substituted (HTML-escaped). A message
    with plural forms is given in the form for the integer `count` (gettext's ngettext)."""
    lang = language if language in _CATALOG_DIRS else DEFAULT_LANGUAGE
    if key not in _messages(lang):
        lang = DEFAULT_LANGUAGE
    forms = _messages(lang)[key].forms if key in _messages(lang) else (key,)
    count = values.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return _fill(forms[min(plural_form(lang, count), len(forms) - 1)], values)
    return _fill(forms[-1], values)


def message(language: str, key: str) -> Message:
    """A catalog entry with all its forms (the catalog tests check every form)."""
    return _messages(language)[key]


def counted_keys() -> list[str]:
    """The keys of the messages with plural forms (a count of something in them)."""
    return sorted(key for key, entry in _messages(DEFAULT_LANGUAGE).items() if entry.plural)


def plural_form(language: str, count: int) -> int:
    """Which of a language's plural forms `count` takes (its gettext ``plural=`` rule)."""
    return _plural_rule(language)(count)


class MissingExample(LookupError):
    """A text suggests example values (`{example_date}`...) that its caller did not pass:
    `t(lang, key, **examples.values(zone))` (services/examples.py)."""


_EXAMPLE = re.compile(r"\{(example_\w+)\}")


def _fill(text: str, values: dict[str, Any]) -> Html:
    if "{example_" in text:  # suggested values, computed from today by the caller
        missing = sorted({name for name in _EXAMPLE.findall(text) if name not in values})
        if missing:
            raise MissingExample(f"{', '.join(missing)}: pass **examples.values(zone) to t")
    if values:
        text = text.format(**{name: escape(value) for name, value in values.items()})
    return Html(text)


def has_key(key: str) -> bool:
    return all(key in catalog(lang) for lang in LANGUAGES)
